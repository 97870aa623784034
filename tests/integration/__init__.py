"""Integration tests: the deploy, restore and status playbooks against a real PostgreSQL."""
