// Remove an item's attribute relationships (before its new ones are written), and attribute nodes no item
// uses any more. Parameters: $dataset, $item_id, $rel_types (the schema's attribute relationship types).
MATCH (i:Item {dataset: $dataset, id: $item_id})-[r]->(a)
WHERE type(r) IN $rel_types
DELETE r
WITH DISTINCT a
WHERE NOT EXISTS { (a)--() }
DELETE a
