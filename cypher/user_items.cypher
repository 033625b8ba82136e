// Every item a user has interacted with (dataset rows and live events alike), oldest first: what a
// request without candidates retrieves from and leaves out. Parameters: $dataset, $user_id. Returns: id.
MATCH (:User {dataset: $dataset, id: $user_id})-[r:RATED]->(i:Item)
RETURN i.id AS id
ORDER BY r.ts, i.idx
