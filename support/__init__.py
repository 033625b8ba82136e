"""Stand-ins that tests and benchmarks share: a vLLM that scores with a checkpoint, a TCP proxy that can be
cut, phased load with writers. Never imports the tests (an import-linter contract checks it)."""
