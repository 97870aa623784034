# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""File helpers the modules of library/ share."""

from __future__ import annotations

import hashlib


def sha256_of(path):
    """The SHA-256 of a file, read in 1 MiB pieces (a backup may be far larger than memory)."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()
