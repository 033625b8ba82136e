// What a ranking depends on in the graph, in one round trip: the dataset's load record and the user's
// version (the count of their live events). Parameters: $dataset, $user_id.
// Returns: data_hash, split, status (null if never loaded), completed_at, version.
OPTIONAL MATCH (d:KgrankDataset {name: $dataset})
RETURN d.data_hash AS data_hash, d.split AS split, d.status AS status, toString(d.completed_at) AS completed_at,
       COUNT { MATCH (e:KgrankEvent {dataset: $dataset, user_id: $user_id}) } AS version
