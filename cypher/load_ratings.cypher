// User -[RATED {rating, rated_ts, ts}]-> Item: dataset rows and live events folded alike
// (services/graph_loader/events.py): ts is the latest time seen, rating the one of the latest rated event.
// Each right-hand side reads r, so Neo4j write-locks r before reading: concurrent events never lose an update.
// Parameters: $dataset, $rows [{user, item, rating, ts}] (in event order).
UNWIND $rows AS row
MATCH (u:User {dataset: $dataset, id: row.user})
MATCH (i:Item {dataset: $dataset, id: row.item})
MERGE (u)-[r:RATED]->(i)
SET r.rating = CASE WHEN row.rating IS NOT NULL AND (r.rated_ts IS NULL OR row.ts >= r.rated_ts)
                    THEN row.rating ELSE r.rating END,
    r.rated_ts = CASE WHEN row.rating IS NOT NULL AND (r.rated_ts IS NULL OR row.ts >= r.rated_ts)
                      THEN row.ts ELSE r.rated_ts END,
    r.ts = CASE WHEN r.ts IS NULL OR row.ts > r.ts THEN row.ts ELSE r.ts END
