"""Load benchmarks for MigrantLine (not shipped; run from the repo root)."""
