// Delete every relationship in the database, in bounded batches (benchmarks/scaling.py, after
// --replace-neo4j-database said so; then database_clear removes the nodes).
MATCH ()-[r]->()
CALL (r) { DELETE r } IN TRANSACTIONS OF 10000 ROWS
