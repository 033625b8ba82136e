// Relation paths for a batch of (user, candidates) requests, in ONE round trip.
// Parameters: $dataset, $history_length, $sequence_length (0, or how many of the user's stored item ids
//   to return besides), $path_types (relationship types a path may use: never RATED),
//   $requests [{user_id, candidates: [item id], cutoff_ts: int|null, cutoff_item_idx: int,
//               history_ids: [item id]|null}]; history_ids (the last $history_length items the caller
//               knows, oldest first) replaces the user's RATED items.
// Slots: left_hops = ceil(max_hops / 2), right_bound = max(1, floor(max_hops / 2)) (a quantifier cannot be
//   {0,0}; $right_hops is the real bound), path_types (the same types as $path_types, for degree lookups).
// Parameters also: $max_hub_degree: a half never passes THROUGH an attribute node with more path relationships
//   than this (a hub, e.g. the Drama genre at scale); a hub can still be where the halves meet, so "both are
//   Dramas" stays. Items are never hubs.
// Returns one row per request: request (its index), known_user, history [{id, idx, title, rating, ts}]
//   (the stored history, newest first; empty when history_ids were given), sequence [item id] (the last
//   $sequence_length stored items, newest first; empty when history_ids were given), candidates [{id, title}]
//   (the ones found), paths [{nodes: [{label, key, title}], hops: [{type, forward}]}] (unordered;
//   callers sort them canonically).
// Each path of length L is found exactly once: as a history-side half of ceil(L/2) hops and a
// candidate-side half of floor(L/2) hops that meet at node m (a node hash join, not an expansion
// from m, so a popular genre costs nothing extra). The hub test is a degree lookup, pruning while expanding.
UNWIND range(0, size($requests) - 1) AS request
WITH request, $requests[request] AS req
OPTIONAL MATCH (u:User {dataset: $dataset, id: req.user_id})
CALL (u, req) {
  MATCH (u)-[r:RATED]->(h:Item)
  WHERE req.history_ids IS NULL
    AND (req.cutoff_ts IS NULL OR r.ts < req.cutoff_ts OR (r.ts = req.cutoff_ts AND h.idx < req.cutoff_item_idx))
  WITH h, r ORDER BY r.ts DESC, h.idx DESC
  LIMIT CASE WHEN $sequence_length > $history_length THEN $sequence_length ELSE $history_length END
  WITH collect(h.id) AS ids,
       collect({id: h.id, idx: h.idx, title: h.title, rating: r.rating, ts: r.ts}) AS rows
  RETURN ids[0..$history_length] AS stored_ids, rows[0..$history_length] AS history,
         ids[0..$sequence_length] AS sequence
}
WITH request, req, u, history, sequence,
     coalesce(req.history_ids, stored_ids) AS history_ids
CALL (req) {
  UNWIND req.candidates AS candidate_id
  MATCH (c:Item {dataset: $dataset, id: candidate_id})
  RETURN collect(c.id) AS candidate_ids, collect({id: c.id, title: c.title}) AS candidates
}
CALL (history_ids, candidate_ids) {
  MATCH left = (h:Item)((a)-[lr]-(b)
      WHERE type(lr) IN $path_types AND (a:Item OR COUNT { (a)-[:{{types path_types}}]-() } <= $max_hub_degree)
    ){1,{{int left_hops}}}(m)
  WHERE h.dataset = $dataset AND h.id IN history_ids
  MATCH right = (c:Item)((d)-[rr]-(e)
      WHERE type(rr) IN $path_types AND (d:Item OR COUNT { (d)-[:{{types path_types}}]-() } <= $max_hub_degree)
    ){0,{{int right_bound}}}(m)
  USING JOIN ON m
  WHERE c.dataset = $dataset AND c.id IN candidate_ids AND size(rr) <= $right_hops
    AND (size(lr) = size(rr) OR size(lr) = size(rr) + 1)
  WITH h, c, nodes(left) + reverse(nodes(right))[1..] AS ns,
       relationships(left) + reverse(relationships(right)) AS rs
  WHERE h <> c
    AND all(i IN range(0, size(ns) - 2) WHERE none(j IN range(i + 1, size(ns) - 1) WHERE ns[i] = ns[j]))
  RETURN collect({
    nodes: [n IN ns | {label: labels(n)[0], key: coalesce(n.id, n.name), title: n.title}],
    hops: [i IN range(0, size(rs) - 1) | {type: type(rs[i]), forward: startNode(rs[i]) = ns[i]}]
  }) AS paths
}
RETURN request, u IS NOT NULL AS known_user, history, sequence, candidates, paths
