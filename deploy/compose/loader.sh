#!/usr/bin/env bash
# docker-compose's one-shot loader: prepare ml-latest-small, load it into Neo4j (KGRANK_NEO4J_URI),
# train the tiny models once. Idempotent: a re-run reloads nothing that is already there.
set -euo pipefail
raw=/raw/ml-latest-small
[[ -f /raw/ratings.csv ]] && raw=/raw
kgrank data prepare --dataset ml-latest-small --raw "$raw" --out /work/data --download
kgrank graph load --data /work/data --split all
if [[ ! -f /work/models/ranker/kgrank_ranker.json ]]; then
  kgrank train bundle --data /work/data --out /work/models
fi
