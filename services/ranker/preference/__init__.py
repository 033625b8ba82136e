"""The preference module: scores relation paths per user, prunes prompts, ranks candidates on its own."""
