"""Stand-in for ansible-test's pip bootstrap script (get-pip-<version>.py), which ansible-test
downloads from ci-files.testing.ansible.com; that host is unreachable here, while PyPI is.

ansible-test creates each sanity test's virtual environment without pip, then runs this script
with that environment's Python and get-pip's arguments (pip install options, the pinned
``pip==24.2``, ``--no-setuptools``, ``--no-wheel``). Like get-pip, it runs a pip that is not
installed (here the wheel the interpreter bundles for ensurepip) to install the pinned pip.
tests/test_sanity.py copies it to where ansible-test looks for a downloaded copy.
"""

from __future__ import annotations

import glob
import os
import sys

import ensurepip


def main() -> int:
    bundled = sorted(glob.glob(os.path.join(os.path.dirname(ensurepip.__file__), "_bundled", "pip-*.whl")))
    if not bundled:
        sys.stderr.write("get_pip.py: this Python has no bundled pip wheel (ensurepip); install the python3-venv package\n")
        return 1
    # A wheel is a zip of importable code: pip runs from it without being installed.
    sys.path.insert(0, bundled[-1])
    from pip._internal.cli.main import main as pip_main

    # get-pip's own flags; without them pip would not install setuptools or wheel either.
    args = [arg for arg in sys.argv[1:] if arg not in ("--no-setuptools", "--no-wheel")]
    return pip_main(["install", "--upgrade", "--force-reinstall", *args])


if __name__ == "__main__":
    sys.exit(main())
