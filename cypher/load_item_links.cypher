// Item -[rel_type]-> Item (co-purchase and similar links). Slot: rel_type. Parameters: $dataset, $rows [{src, dst}].
UNWIND $rows AS row
MATCH (s:Item {dataset: $dataset, id: row.src})
MATCH (d:Item {dataset: $dataset, id: row.dst})
MERGE (s)-[:{{ident rel_type}}]->(d)
