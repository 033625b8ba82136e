// Delete every node in the database, in batches, after database_clear_relationships (benchmarks/scaling.py).
MATCH (n)
CALL (n) { DETACH DELETE n } IN TRANSACTIONS OF 20000 ROWS
