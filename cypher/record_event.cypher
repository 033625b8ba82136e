// Append a live event to the log (services/graph_loader/events.py); an id already there changes nothing.
// Runs in one transaction with load_users and load_ratings (the fold into the RATED edge) when created.
// Parameters: $dataset, $event_id, $user_id, $item_id, $rating (null when unrated), $ts, $recorded_at.
// Returns no row when the item is not in the graph; else created and the stored event's fields.
MATCH (i:Item {dataset: $dataset, id: $item_id})
MERGE (e:KgrankEvent {dataset: $dataset, id: $event_id})
  ON CREATE SET e.user_id = $user_id, e.item_id = $item_id, e.rating = $rating, e.ts = $ts,
                e.recorded_at = $recorded_at, e.created_now = true
WITH e, e.created_now IS NOT NULL AS created
REMOVE e.created_now
RETURN created, e.id AS event_id, e.user_id AS user_id, e.item_id AS item_id, e.rating AS rating, e.ts AS timestamp,
       e.recorded_at AS recorded_at
