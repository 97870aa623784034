"""Unit tests of the output callback's message text (plugins/callback/db_deploy.py): no Ansible run."""

from __future__ import annotations

import pytest

from ansible_collections.st44.db_deploy.plugins.callback import db_deploy as callback_plugin


@pytest.mark.parametrize(
    "result, text",
    [
        ({"msg": "one line"}, "one line"),
        ({"msg": ["first", "second"]}, "first\nsecond"),
        ({"msg": "a\nb"}, "a\nb"),
        ({"some_var": 3, "_ansible_verbose_always": True, "changed": False}, "some_var: 3"),
    ],
)
def test_a_debug_result_is_shown_as_its_message(result, text):
    assert callback_plugin.debug_text(result) == text
