// The living catalogue of a dataset, by item id. Parameters: $dataset.
MATCH (c:KgrankCatalogItem {dataset: $dataset})
RETURN c.id AS item_id, c.title AS title, c.attributes AS attributes, c.recorded_at AS recorded_at
ORDER BY c.id
