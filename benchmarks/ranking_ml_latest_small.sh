#!/usr/bin/env bash
# Reproduces benchmarks/results/ml-latest-small/ranking/: the ranking-stage ablations on the real
# ml-latest-small test split, over the candidates of the three LRURec seeds of
# benchmarks/retrievers_ml_latest_small.sh (run that first). About 1.5 hours on 2 cores.
#
#   retriever order | preference module alone | LLM without relations (LlamaRec) |
#   LLM + shortest-path relations | LLM + trained preference | LLM + untrained preference (the paper's code)
#
# The graph holds train interactions only (no leakage); prompts show each task's own history.
set -euo pipefail
cd "$(dirname "$0")/.."
work=${KGRANK_WORK_DIR:-.kgrank/results/ml-latest-small}
data=$work/data
runs=$work/runs/lrurec
models=$work/models
examples=${TRAIN_EXAMPLES:-3000}
kgrank=.venv/bin/kgrank

$kgrank graph load --data "$data" --split train
$kgrank train preference --data "$data" --retriever "$runs/seed-0" --out "$models/preference" \
  --train-examples "$examples"
$kgrank train preference --data "$data" --retriever "$runs/seed-0" --out "$models/preference-untrained" \
  --train-examples "$examples" --untrained
for paths in none shortest preference untrained-preference; do
  module=()
  [[ $paths == preference ]] && module=(--preference "$models/preference")
  [[ $paths == untrained-preference ]] && module=(--preference "$models/preference-untrained")
  $kgrank train ranker --data "$data" --retriever "$runs/seed-0" --out "$models/llm-$paths" --base-model tiny \
    --paths "$paths" "${module[@]}" --train-examples "$examples"
done
$kgrank evaluate --data "$data" --split test --out benchmarks/results/ml-latest-small/ranking \
  --model "retriever order=$runs" \
  --model "preference module=$runs@preference:$models/preference" \
  --model "LLM, no relations (LlamaRec)=$runs@llm:$models/llm-none" \
  --model "LLM + shortest paths=$runs@llm:$models/llm-shortest" \
  --model "LLM + trained preference=$runs@llm:$models/llm-preference" \
  --model "LLM + untrained preference=$runs@llm:$models/llm-untrained-preference"
.venv/bin/python -m benchmarks.scoring_speed --data "$data" --retriever "$runs/seed-0" --model "$models/llm-preference"
