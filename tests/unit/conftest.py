"""Unit tests of library/postgresql_migrate.py: no database, no Ansible run.

The module imports ansible_collections.community.postgresql, which `make setup`
installs under <repo>/.collections; library/ holds the module itself. Both go on
sys.path, and the module is loaded once under its own name, postgresql_migrate,
so test files can simply `import postgresql_migrate`.
"""

import importlib.util
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
MODULE_PATH = REPO_ROOT / "library" / "postgresql_migrate.py"

for _path in (REPO_ROOT / "library", REPO_ROOT / ".collections"):
    if str(_path) not in sys.path:
        sys.path.insert(0, str(_path))

# The modules import plugins/module_utils/<name>.py as ansible.module_utils.<name>, where
# ansible.cfg's module_utils puts them for a run (AnsiballZ packs them there on the host).
import ansible.module_utils  # noqa: E402

if str(REPO_ROOT / "plugins" / "module_utils") not in ansible.module_utils.__path__:
    ansible.module_utils.__path__.append(str(REPO_ROOT / "plugins" / "module_utils"))


def _load_module():
    if "postgresql_migrate" in sys.modules:
        return sys.modules["postgresql_migrate"]
    spec = importlib.util.spec_from_file_location("postgresql_migrate", MODULE_PATH)
    module = importlib.util.module_from_spec(spec)
    sys.modules["postgresql_migrate"] = module
    spec.loader.exec_module(module)
    return module


postgresql_migrate = _load_module()


@pytest.fixture
def pm():
    """The postgresql_migrate module."""
    return postgresql_migrate
