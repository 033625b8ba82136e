// One living-catalogue entry per (dataset, item id).
CREATE CONSTRAINT kgrank_catalog_item IF NOT EXISTS
FOR (c:KgrankCatalogItem) REQUIRE (c.dataset, c.id) IS UNIQUE
