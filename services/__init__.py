"""kgrank services: graph_loader (data and graph), ranker (paths, scoring), api (HTTP)."""
