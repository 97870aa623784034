"""End-to-end tests of postgresql_migrate: the module through ansible-playbook against a real PostgreSQL."""
