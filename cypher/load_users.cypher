// Parameters: $dataset, $rows [{id, idx}].
UNWIND $rows AS row
MERGE (u:User {dataset: $dataset, id: row.id})
SET u.idx = row.idx
