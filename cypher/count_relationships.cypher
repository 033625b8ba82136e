// Relationship counts of a dataset by type. Parameters: $dataset. Returns: type, count.
MATCH (n {dataset: $dataset})-[r]->()
RETURN type(r) AS type, count(*) AS count
