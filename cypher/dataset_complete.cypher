// Mark a load as complete. Parameters: $dataset, $data_hash.
MATCH (d:KgrankDataset {name: $dataset, data_hash: $data_hash})
SET d.status = 'complete', d.completed_at = datetime()
RETURN d.name AS name
