// Parameters: $dataset, $rows [{id, idx}]; idx null (a user known only from live events) keeps the stored one.
UNWIND $rows AS row
MERGE (u:User {dataset: $dataset, id: row.id})
SET u.idx = coalesce(row.idx, u.idx)
