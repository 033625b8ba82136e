// Item -[rel_type]-> attribute node. Slots: label, rel_type (from the dataset schema).
// Parameters: $dataset, $rows [{item, name}].
UNWIND $rows AS row
MATCH (i:Item {dataset: $dataset, id: row.item})
MERGE (a:{{ident label}} {dataset: $dataset, name: row.name})
MERGE (i)-[:{{ident rel_type}}]->(a)
