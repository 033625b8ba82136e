"""Datasets to knowledge graph: readers, preprocessing, the processed dataset, Neo4j and embedded graphs."""
