"""Complaints: filing, following by reference, operators' actions, erasure."""
