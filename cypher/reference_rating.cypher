// BENCHMARK REFERENCE ONLY (benchmarks/graph_paths.py): the paper's code asks for each history item's
// rating in its own round trip. kgrank never runs this. Parameters: $dataset, $user_id, $item_id.
MATCH (u:User {dataset: $dataset, id: $user_id})-[r:RATED]->(h:Item {dataset: $dataset, id: $item_id})
RETURN r.rating AS rating
