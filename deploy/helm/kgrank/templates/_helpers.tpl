{{/* Names: the release's objects are <fullname>-<component>. */}}
{{- define "kgrank.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 50 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 50 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{/* Selector labels of one component: (dict "root" $ "component" "api"). */}}
{{- define "kgrank.selectorLabels" -}}
app.kubernetes.io/name: {{ .root.Chart.Name }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{- define "kgrank.labels" -}}
{{ include "kgrank.selectorLabels" . }}
app.kubernetes.io/version: {{ .root.Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .root.Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .root.Chart.Name .root.Chart.Version }}
{{- end -}}

{{- define "kgrank.image" -}}
{{ .Values.image.repository }}:{{ .Values.image.tag | default .Chart.AppVersion }}
{{- end -}}

{{- define "kgrank.secretName" -}}
{{ .Values.secret.existingSecret | default (printf "%s-secret" (include "kgrank.fullname" .)) }}
{{- end -}}

{{- define "kgrank.neo4jUri" -}}
{{- if .Values.neo4j.deploy -}}
{{- if .Values.neo4j.externalUri -}}
{{- fail "neo4j.externalUri is set while neo4j.deploy is true: set neo4j.deploy to false to use it" -}}
{{- end -}}
{{- if ne .Values.neo4j.user "neo4j" -}}
{{- fail "neo4j.user: the bundled Neo4j's only user is neo4j (NEO4J_AUTH); other users need an external Neo4j" -}}
{{- end -}}
bolt://{{ include "kgrank.fullname" . }}-neo4j:7687
{{- else -}}
{{ required "neo4j.externalUri is required when neo4j.deploy is false" .Values.neo4j.externalUri }}
{{- end -}}
{{- end -}}

{{/* The Redis URL, or nothing: each API process then caches in memory. */}}
{{- define "kgrank.redisUrl" -}}
{{- if and .Values.redis.cluster (not .Values.redis.externalUrl) -}}
{{- fail "redis.cluster needs redis.externalUrl: the bundled Redis is a single node, not a cluster" -}}
{{- end -}}
{{- if .Values.redis.deploy -}}
{{- if .Values.redis.externalUrl -}}
{{- fail "redis.externalUrl is set while redis.deploy is true: set redis.deploy to false to use it" -}}
{{- end -}}
redis://{{ include "kgrank.fullname" . }}-redis:6379/0
{{- else -}}
{{ .Values.redis.externalUrl }}
{{- end -}}
{{- end -}}

{{/* KGRANK_VLLM_URL: the in-release Service, or the external servers, comma-separated; empty: no vLLM. */}}
{{- define "kgrank.vllmUrl" -}}
{{- if .Values.vllm.enabled -}}
{{- if .Values.vllm.externalUrls -}}
{{- fail "vllm.externalUrls is set while vllm.enabled is true: choose the in-release vLLM or the external ones" -}}
{{- end -}}
http://{{ include "kgrank.fullname" . }}-vllm:8000
{{- else -}}
{{ join "," .Values.vllm.externalUrls }}
{{- end -}}
{{- end -}}

{{/* Settings the API and the loader share: the graph and where the dataset and models are. */}}
{{- define "kgrank.graphEnv" -}}
- name: KGRANK_NEO4J_URI
  value: {{ include "kgrank.neo4jUri" . | quote }}
- name: KGRANK_NEO4J_USER
  value: {{ .Values.neo4j.user | quote }}
- name: KGRANK_NEO4J_DATABASE
  value: {{ .Values.neo4j.database | quote }}
- name: KGRANK_NEO4J_PASSWORD
  valueFrom:
    secretKeyRef:
      name: {{ include "kgrank.secretName" . }}
      key: KGRANK_NEO4J_PASSWORD
- name: KGRANK_DATASET_DIR
  value: /work/data
- name: KGRANK_MODEL_DIR
  value: /work/models/ranker
- name: KGRANK_RETRIEVER_DIR
  value: /work/models/retriever
{{- end -}}

{{/* Waits, like docker-compose's `service_completed_successfully`, until the loader has trained the ranker. */}}
{{- define "kgrank.waitForModels" -}}
- name: wait-for-models
  image: {{ include "kgrank.image" . }}
  imagePullPolicy: {{ .Values.image.pullPolicy }}
  command: ["bash", "-c", "until [[ -f /work/models/ranker/kgrank_ranker.json ]]; do echo waiting for the loader; sleep 10; done"]
  volumeMounts:
    - name: work
      mountPath: /work
      readOnly: true
{{- end -}}

{{- define "kgrank.workVolume" -}}
- name: work
  persistentVolumeClaim:
    claimName: {{ include "kgrank.fullname" . }}-work
{{- end -}}
