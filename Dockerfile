# The kgrank image: the API (`kgrank serve`) and the one-shot loader of docker-compose.yml.
# BASE_IMAGE: any Debian-like image with Python 3.11 and its venv module. CI, which reaches no image registry,
# builds it on a local Debian bookworm base instead (deploy/images/build.sh).
ARG BASE_IMAGE=python:3.11-slim
FROM ${BASE_IMAGE}
ENV PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 PATH=/opt/kgrank/bin:$PATH
WORKDIR /app
COPY pyproject.toml README.md ./
COPY kgrank kgrank
COPY services services
COPY training training
COPY cypher cypher
# A virtual environment on PATH: Debian's own python3 refuses system-wide pip installs (PEP 668).
RUN python3 -m venv /opt/kgrank && pip install .
# The loader's script is no part of the package: copied after the install, a change to it reuses that layer.
COPY deploy/compose deploy/compose
EXPOSE 8080
CMD ["kgrank", "serve", "--host", "0.0.0.0", "--port", "8080"]
