# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The attributes the collection's helper modules share (db_deploy_backups, db_deploy_wait):
full check mode, no diff. A module that differs writes its own attributes block."""

from __future__ import annotations


class ModuleDocFragment(object):
    DOCUMENTATION = r"""
attributes:
  check_mode:
    description: Can run in check mode and return the changed status it predicts without modifying the target.
    support: full
  diff_mode:
    description: Would return what changed (or would change, in check mode) when in diff mode.
    support: none
"""
