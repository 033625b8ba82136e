"""Sequential retrievers (LRURec, SASRec, popularity): candidate generation for the ranker."""
