"""Serving orchestration: what POST /rank, /interactions, /items and /admin/reload do, around the one ranking
pipeline (cache, graph, scorer, breakers, degradation, hot reload). services/api is the HTTP layer over it."""
