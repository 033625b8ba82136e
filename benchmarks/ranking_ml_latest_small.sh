#!/usr/bin/env bash
# Reproduces benchmarks/results/ml-latest-small/ranking/: the ranking-stage ablations on the real
# ml-latest-small test split, over the candidates of the three LRURec seeds of
# benchmarks/retrievers_ml_latest_small.sh (run that first). About 1 hour on 2 cores.
#
# The paper's ablations, trained as the paper does (target + 19 random negatives, shuffled):
#   retriever order | preference module alone | LLM without relations (LlamaRec) |
#   LLM + shortest-path relations | LLM + trained preference | LLM + untrained preference (the paper's code)
# and kgrank's variant trained on what evaluation shows a ranker (the retriever's top 20, in order):
#   preference module alone | LLM without relations
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
common=(--data "$data" --retriever "$runs/seed-0" --train-examples "$examples")
paper=(--train-candidates random)

$kgrank graph load --data "$data" --split train
$kgrank train preference "${common[@]}" "${paper[@]}" --out "$models/preference"
$kgrank train preference "${common[@]}" "${paper[@]}" --out "$models/preference-untrained" --untrained
$kgrank train preference "${common[@]}" --out "$models/preference-retrieved" --train-candidates retrieved
for paths in none shortest preference untrained-preference; do
  module=()
  [[ $paths == preference ]] && module=(--preference "$models/preference")
  [[ $paths == untrained-preference ]] && module=(--preference "$models/preference-untrained")
  $kgrank train ranker "${common[@]}" "${paper[@]}" --out "$models/llm-$paths" --base-model tiny --paths "$paths" \
    "${module[@]}"
done
$kgrank train ranker "${common[@]}" --out "$models/llm-none-retrieved" --base-model tiny --paths none \
  --train-candidates retrieved
$kgrank evaluate --data "$data" --split test --out benchmarks/results/ml-latest-small/ranking \
  --model "retriever order=$runs" \
  --model "preference module=$runs@preference:$models/preference" \
  --model "LLM, no relations (LlamaRec)=$runs@llm:$models/llm-none" \
  --model "LLM + shortest paths=$runs@llm:$models/llm-shortest" \
  --model "LLM + trained preference=$runs@llm:$models/llm-preference" \
  --model "LLM + untrained preference=$runs@llm:$models/llm-untrained-preference" \
  --model "preference module, retrieved lists=$runs@preference:$models/preference-retrieved" \
  --model "LLM, no relations, retrieved lists=$runs@llm:$models/llm-none-retrieved"
.venv/bin/python -m benchmarks.scoring_speed --data "$data" --retriever "$runs/seed-0" --model "$models/llm-preference"
