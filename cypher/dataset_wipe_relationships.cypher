// The first half of wiping a dataset's load: its relationships, in batches of a bounded size, so that no
// transaction holds a hub's (or a heavy user's) tens of thousands of relationships at once (a DETACH DELETE of
// 5,000 nodes at 10× ml-latest-small exceeded Neo4j's 1 GB transaction memory). Every kgrank relationship starts
// at a node of its dataset. Run as an auto-commit query, then dataset_wipe. Parameters: $dataset.
MATCH (n {dataset: $dataset})-[r]->()
WHERE NOT n:KgrankEvent AND NOT n:KgrankCatalogItem
CALL (r) { DELETE r } IN TRANSACTIONS OF 10000 ROWS
