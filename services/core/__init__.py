"""Pieces every layer shares: the error hierarchy, settings, the Cypher library, atomic writes."""
