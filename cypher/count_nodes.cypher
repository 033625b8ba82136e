// Node counts of a dataset by label. Parameters: $dataset. Returns: label, count.
MATCH (n {dataset: $dataset})
UNWIND labels(n) AS label
RETURN label, count(*) AS count
