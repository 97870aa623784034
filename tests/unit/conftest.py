"""Unit tests of the collection's Python code, laid out by plugin path (tests/unit/plugins/<type>/):
no Ansible run, and a database only where a test asks for the db fixture.

pytest.ini puts collections/ (this checkout as st44.db_deploy) and .collections/
(community.postgresql, from `make setup`) on the path, so tests import the code by
the names Ansible gives it: ansible_collections.st44.db_deploy.plugins.<type>.<name>.
"""
