#!/usr/bin/env bash
# Reproduces benchmarks/results/ml-latest-small/ranking-smollm2/: the ranking-stage ablations with the real
# pretrained SmolLM2-135M (LoRA, merged), each with and without fusion, on the real ml-latest-small test
# split, re-ranking the top 20 of the ensemble of the retriever runs of benchmarks/retrievers_ml_latest_small.sh
# (run that first). Every choice below was made on val; test is read once, by the last command.
#
#   TRAIN_MINUTES=15 GEMMA_MINUTES=30 benchmarks/ranking_smollm2.sh   (the committed results: about 2.5 hours on 2 cores)
#   benchmarks/ranking_smollm2.sh                    (each LLM trains its full epoch: about 4 hours, estimated)
# TRAIN_MINUTES caps each LLM training (`train ranker --max-minutes`); the best val step so far is kept.
#
# Rows: retriever order (the ensemble) | preference module, trained and untrained |
#   SmolLM2: no relations (LlamaRec) | shortest paths | untrained preference (the paper's code) | trained preference
#   | Gemma 3 270M, no relations | the tiny from-scratch model, no relations (for comparison) — every ranker
#   also fused with the retriever.
set -euo pipefail
cd "$(dirname "$0")/.."
work=${KGRANK_WORK_DIR:-.kgrank/results/ml-latest-small}
data=$work/data
runs=$work/runs
ensemble=$runs/ensemble
models=$work/models-smollm2
out=benchmarks/results/ml-latest-small/ranking-smollm2
kgrank=.venv/bin/kgrank
log=$out/logs
mkdir -p "$log"

# The recipe (chosen on val, see the README's results section): each LLM sees the history's last
# HISTORY items within BUDGET tokens, is trained on EXAMPLES train prefixes whose candidates are
# CANDIDATES, for one epoch, and validated every EVAL_EVERY steps.
HISTORY=${HISTORY:-10}
BUDGET=${BUDGET:-768}
EXAMPLES=${EXAMPLES:-1200}
CANDIDATES=${CANDIDATES:-retrieved}
EVAL_EVERY=${EVAL_EVERY:-30}
LR=${LR:-5e-4}
TRAIN_MINUTES=${TRAIN_MINUTES:-60}

$kgrank base-model fetch smollm2
$kgrank graph load --data "$data" --split train   # no val/test interactions in the graph: no leakage
[[ -f $ensemble/checkpoint.pt ]] || $kgrank train ensemble --data "$data" --runs "$runs/lrurec,$runs/sasrec" --out "$ensemble"

common=(--data "$data" --retriever "$ensemble")
[[ -f $models/preference/preference.pt ]] ||
  $kgrank train preference "${common[@]}" --train-candidates "$CANDIDATES" --out "$models/preference" 2>&1 | tee "$log/preference.log"
[[ -f $models/preference-untrained/preference.pt ]] ||
  $kgrank train preference "${common[@]}" --untrained --out "$models/preference-untrained" 2>&1 | tee "$log/preference-untrained.log"

recipe=(--train-examples "$EXAMPLES" --train-candidates "$CANDIDATES" --history-items "$HISTORY"
        --budget-tokens "$BUDGET" --lr "$LR" --eval-every "$EVAL_EVERY" --max-minutes "$TRAIN_MINUTES")
llm=(--base-model smollm2 "${recipe[@]}")
for paths in none shortest untrained-preference preference; do
  module=()
  [[ $paths == preference ]] && module=(--preference "$models/preference")
  [[ $paths == untrained-preference ]] && module=(--preference "$models/preference-untrained")
  [[ -f $models/smollm2-$paths/kgrank_ranker.json ]] ||
    $kgrank train ranker "${common[@]}" "${llm[@]}" --paths "$paths" "${module[@]}" --out "$models/smollm2-$paths" \
      2>&1 | tee "$log/smollm2-$paths.log"
done
# The second real model, same recipe (GEMMA_MINUTES caps it: about twice SmolLM2's cost per step).
$kgrank base-model fetch gemma3
[[ -f $models/gemma3-none/kgrank_ranker.json ]] ||
  $kgrank train ranker "${common[@]}" --base-model gemma3 "${recipe[@]}" --max-minutes "${GEMMA_MINUTES:-$TRAIN_MINUTES}" \
    --paths none --out "$models/gemma3-none" 2>&1 | tee "$log/gemma3-none.log"
[[ -f $models/tiny-none/kgrank_ranker.json ]] ||
  $kgrank train ranker "${common[@]}" --base-model tiny --paths none --train-examples 3000 \
    --train-candidates "$CANDIDATES" --out "$models/tiny-none" 2>&1 | tee "$log/tiny-none.log"

ranked=()
for spec in "preference module (trained)=preference:$models/preference" \
            "preference module (untrained)=preference:$models/preference-untrained" \
            "smollm2, no relations (LlamaRec)=llm:$models/smollm2-none" \
            "smollm2 + shortest paths=llm:$models/smollm2-shortest" \
            "smollm2 + untrained preference (paper's code)=llm:$models/smollm2-untrained-preference" \
            "smollm2 + trained preference=llm:$models/smollm2-preference" \
            "gemma3, no relations=llm:$models/gemma3-none" \
            "tiny LLM, no relations=llm:$models/tiny-none"; do
  name=${spec%%=*} ranker=${spec#*=}
  ranked+=(--model "$name=$ensemble@$ranker" --model "$name, fused=$ensemble@${ranker%%:*}+fusion:${ranker#*:}")
done
$kgrank evaluate --data "$data" --split test --out "$out" --model "retriever order (ensemble)=$ensemble" "${ranked[@]}" \
  2>&1 | tee "$log/evaluate.log"
.venv/bin/python -m benchmarks.ranking_table --evaluation "$out"
