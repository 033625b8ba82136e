"""The kgrank command line: the composition root above services and training."""
