// A live interaction from the API: User -[RATED {rating, ts}]-> Item, the user created if new.
// Parameters: $dataset, $user_id, $item_id, $rating (null when unrated), $ts. Returns: written (0 if no such item).
MATCH (i:Item {dataset: $dataset, id: $item_id})
MERGE (u:User {dataset: $dataset, id: $user_id})
MERGE (u)-[r:RATED]->(i)
SET r.rating = $rating, r.ts = $ts
RETURN count(r) AS written
