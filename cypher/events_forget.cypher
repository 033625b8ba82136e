// Delete a dataset's live event log and living catalogue (only when the dataset itself is dropped); run as an
// auto-commit query. Parameters: $dataset.
MATCH (e {dataset: $dataset})
WHERE e:KgrankEvent OR e:KgrankCatalogItem
CALL (e) { DELETE e } IN TRANSACTIONS OF 5000 ROWS
