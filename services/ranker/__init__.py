"""Ranking: relation paths, preference pruning, prompts, scorers."""
