// One live event per (dataset, event id): what makes a retried POST /interactions count once.
CREATE CONSTRAINT kgrank_event_id IF NOT EXISTS
FOR (e:KgrankEvent) REQUIRE (e.dataset, e.id) IS UNIQUE
