// Create or replace a living-catalogue entry (services/graph_loader/catalog.py). Runs in one transaction with
// load_items, item_attributes_clear and load_attributes, which write the entry into the graph.
// Parameters: $dataset, $item_id, $title, $attributes (a JSON object: label -> [name]), $recorded_at.
// Returns: created (false: an existing entry was replaced).
MERGE (c:KgrankCatalogItem {dataset: $dataset, id: $item_id})
  ON CREATE SET c.created_now = true
SET c.title = $title, c.attributes = $attributes, c.recorded_at = $recorded_at
WITH c, c.created_now IS NOT NULL AS created
REMOVE c.created_now
RETURN created
