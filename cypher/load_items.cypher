// Parameters: $dataset, $rows [{id, idx, title, properties}].
UNWIND $rows AS row
MERGE (i:Item {dataset: $dataset, id: row.id})
SET i += row.properties, i.idx = row.idx, i.title = row.title
