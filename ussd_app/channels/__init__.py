"""Thin adapters: provider request in, engine screen out, provider format back."""
