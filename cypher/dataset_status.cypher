// What the graph holds for a dataset. Parameters: $dataset. Returns: data_hash, split, status (null if never loaded).
OPTIONAL MATCH (d:KgrankDataset {name: $dataset})
RETURN d.data_hash AS data_hash, d.split AS split, d.status AS status
