// One bookkeeping node per loaded dataset.
CREATE CONSTRAINT kgrank_dataset_name IF NOT EXISTS
FOR (d:KgrankDataset) REQUIRE d.name IS UNIQUE
