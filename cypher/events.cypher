// The live event log of a dataset, in event order. Parameters: $dataset.
MATCH (e:KgrankEvent {dataset: $dataset})
RETURN e.id AS event_id, e.user_id AS user_id, e.item_id AS item_id, e.rating AS rating, e.ts AS timestamp,
       e.recorded_at AS recorded_at
ORDER BY e.ts, e.recorded_at, e.id
