// What a whole database holds, checked before a bulk import replaces it (count-store lookups, no scan).
// Returns: nodes (all), live_records (API events and living-catalogue items, which exist nowhere else).
CALL () { MATCH (n) RETURN count(n) AS nodes }
CALL () { MATCH (e:KgrankEvent) RETURN count(e) AS events }
CALL () { MATCH (c:KgrankCatalogItem) RETURN count(c) AS items }
RETURN nodes, events + items AS live_records
