// Mark a load as started (status "loading" until dataset_complete runs).
// Parameters: $dataset, $data_hash, $split, $kgrank_version.
MERGE (d:KgrankDataset {name: $dataset})
SET d.status = 'loading', d.data_hash = $data_hash, d.split = $split,
    d.kgrank_version = $kgrank_version, d.started_at = datetime(), d.completed_at = null
