"""Unit tests of the collection's Python code: no database, no Ansible run.

pytest.ini puts collections/ (this checkout as st44.db_deploy) and .collections/
(community.postgresql, from `make setup`) on the path, so tests import the code by
the names Ansible gives it: ansible_collections.st44.db_deploy.plugins.<type>.<name>.
"""

import pytest

from ansible_collections.st44.db_deploy.plugins.modules import postgresql_migrate


@pytest.fixture
def pm():
    """The postgresql_migrate module."""
    return postgresql_migrate
