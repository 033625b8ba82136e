"""Training jobs: retriever, path export, preference module, ranker fine-tuning, evaluation."""
