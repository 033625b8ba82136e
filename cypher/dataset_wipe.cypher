// Delete every node (and its relationships) of a dataset, in batches; run as an auto-commit query.
// Parameters: $dataset.
MATCH (n {dataset: $dataset})
CALL (n) { DETACH DELETE n } IN TRANSACTIONS OF 5000 ROWS
