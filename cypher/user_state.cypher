// What a ranking depends on in the graph, in one round trip: the dataset's load record, the living
// catalogue's state (its entries and their latest change) and the user's version (the count of their live
// events). Parameters: $dataset, $user_id.
// Returns: data_hash, split, status (null if never loaded), completed_at, catalog_items, catalog_changed, version.
OPTIONAL MATCH (d:KgrankDataset {name: $dataset})
CALL () {
  OPTIONAL MATCH (c:KgrankCatalogItem {dataset: $dataset})
  RETURN count(c) AS catalog_items, max(c.recorded_at) AS catalog_changed
}
RETURN d.data_hash AS data_hash, d.split AS split, d.status AS status, toString(d.completed_at) AS completed_at,
       catalog_items, catalog_changed, COUNT { MATCH (e:KgrankEvent {dataset: $dataset, user_id: $user_id}) } AS version
