// Remove a dataset's bookkeeping node (after dataset_wipe removed its graph). Parameters: $dataset.
MATCH (d:KgrankDataset {name: $dataset})
DELETE d
