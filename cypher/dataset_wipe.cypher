// Delete every node of a dataset's load, in batches, after dataset_wipe_relationships removed their
// relationships (DETACH only for safety); run as an auto-commit query.
// The live event log (KgrankEvent) and the living catalogue (KgrankCatalogItem) stay: the next load replays
// them. Parameters: $dataset.
MATCH (n {dataset: $dataset})
WHERE NOT n:KgrankEvent AND NOT n:KgrankCatalogItem
CALL (n) { DETACH DELETE n } IN TRANSACTIONS OF 5000 ROWS
