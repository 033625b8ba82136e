#!/usr/bin/env bash
# Reproduces benchmarks/results/ml-latest-small/retrievers/: LRURec and SASRec (3 seeds each) and
# popularity on the real ml-latest-small, evaluated on test beside the paper's rows.
#   benchmarks/retrievers_ml_latest_small.sh            (about 40 minutes on 2 cores)
# LRURec: the best of benchmarks/retriever_sweep.py on val R@10 (tie broken by val N@10); SASRec: the
# paper's settings (not swept).
set -euo pipefail
cd "$(dirname "$0")/.."
raw=${KGRANK_DATA_DIR:-../shared/data}/ml-latest-small
work=${KGRANK_WORK_DIR:-.kgrank/results/ml-latest-small}
kgrank=.venv/bin/kgrank

$kgrank data prepare --dataset ml-latest-small --raw "$raw" --out "$work/data"
$kgrank train retriever --data "$work/data" --model lrurec --seeds 0,1,2 --out "$work/runs/lrurec" \
  --dropout "${LRUREC_DROPOUT:-0.5}" --weight-decay "${LRUREC_WEIGHT_DECAY:-0.01}"
$kgrank train retriever --data "$work/data" --model sasrec --seeds 0,1,2 --out "$work/runs/sasrec" \
  --dropout "${SASREC_DROPOUT:-0.2}" --weight-decay "${SASREC_WEIGHT_DECAY:-0.01}"
$kgrank train retriever --data "$work/data" --model pop --out "$work/runs/pop"
$kgrank train ensemble --data "$work/data" --runs "$work/runs/lrurec,$work/runs/sasrec" --out "$work/runs/ensemble"
$kgrank evaluate --data "$work/data" --split test --out benchmarks/results/ml-latest-small/retrievers \
  --model "lrurec=$work/runs/lrurec" --model "sasrec=$work/runs/sasrec" --model "pop=$work/runs/pop" \
  --model "ensemble (lrurec + sasrec, 6 runs)=$work/runs/ensemble"
