"""Shared helpers for the benchmark harness (bench/run.py): spreads, the environment, fresh child
processes with their peak memory, the generated-data cache and Markdown rendering."""
