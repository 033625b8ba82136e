// User -[RATED {rating, ts}]-> Item. Parameters: $dataset, $rows [{user, item, rating, ts}].
UNWIND $rows AS row
MATCH (u:User {dataset: $dataset, id: row.user})
MATCH (i:Item {dataset: $dataset, id: row.item})
MERGE (u)-[r:RATED]->(i)
SET r.rating = row.rating, r.ts = row.ts
