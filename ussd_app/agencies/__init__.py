"""The recruitment-agency check: the registry file, its index, and what a caller is told."""
