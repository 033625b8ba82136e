// Delete a dataset's live event log (only when the dataset itself is dropped); run as an auto-commit query.
// Parameters: $dataset.
MATCH (e:KgrankEvent {dataset: $dataset})
CALL (e) { DELETE e } IN TRANSACTIONS OF 5000 ROWS
