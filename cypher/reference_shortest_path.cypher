// BENCHMARK REFERENCE ONLY (benchmarks/graph_paths.py): the paper's code runs one unbounded
// shortestPath per (history item, candidate) pair, each in its own round trip. kgrank never runs this.
// Parameters: $dataset, $history_id, $candidate_id, $path_types (never RATED, so never via a user).
MATCH (h:Item {dataset: $dataset, id: $history_id}), (c:Item {dataset: $dataset, id: $candidate_id})
WHERE h <> c
MATCH p = shortestPath((h)-[*]-(c))
WHERE all(r IN relationships(p) WHERE type(r) IN $path_types)
RETURN p
