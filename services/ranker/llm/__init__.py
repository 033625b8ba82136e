"""The LLM ranker: checkpoints with kgrank metadata, one-pass letter scoring in-process or via vLLM."""
