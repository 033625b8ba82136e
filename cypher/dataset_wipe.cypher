// Delete every node (and its relationships) of a dataset's load, in batches; run as an auto-commit query.
// The live event log (KgrankEvent) stays: the next load replays it. Parameters: $dataset.
MATCH (n {dataset: $dataset})
WHERE NOT n:KgrankEvent
CALL (n) { DETACH DELETE n } IN TRANSACTIONS OF 5000 ROWS
