"""The source's configuration keys: defaults, and clear errors for what cannot work."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from plugins.imap.options import ImapOptions, effective_rules

BASE = {"host": "imap.example.com", "username": "docs@msp.example"}


def test_defaults_and_rule_inheritance():
    o = ImapOptions.model_validate(
        {**BASE, "rules": [{"name": "a"}, {"name": "b", "ingest": "eml", "on_success": []}]}
    )
    assert o.effective_port == 993 and o.security == "ssl" and o.folders == ["INBOX"]
    a, b = effective_rules(o)
    assert (a.ingest, a.on_success, a.success_keyword) == (
        "attachments",
        ("seen", "keyword"),
        "$Ingested",
    )
    assert (b.ingest, b.on_success) == ("eml", ())
    starttls = ImapOptions.model_validate({**BASE, "security": "starttls"})
    assert starttls.effective_port == 143


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ({"security": "plain"}, "allow_insecure_loopback"),
        ({"on_success": ["move"]}, "needs success_folder"),
        ({"on_failure": ["move"]}, "needs failure_folder"),
        ({"on_success": ["move", "delete"], "success_folder": "X"}, "both 'move' and 'delete'"),
        ({"success_folder": "INBOX"}, "must not be one of the watched folders"),
        ({"failure_folder": "INBOX"}, "must not be one of the watched folders"),
        ({"rules": [{"subject": "(unclosed"}]}, "not a valid regular expression"),
        ({"rules": [{"name": "x"}, {"name": "x"}]}, "rule names must be unique"),
        ({"success_keyword": "two words"}, "not a valid IMAP keyword"),
        ({"token_command": []}, "needs a program"),
        ({"on_success": ["archive"]}, "on_success"),
        ({"passwd": "x"}, "Extra inputs are not permitted"),
    ],
)
def test_invalid_options_are_clear(extra, message):
    with pytest.raises(ValidationError, match=message):
        ImapOptions.model_validate({**BASE, **extra})


def test_organization_map_keys_are_normalised():
    o = ImapOptions.model_validate(
        {**BASE, "rules": [{"organization_map": {"@Globex.COM ": "Globex"}}]}
    )
    assert o.rules[0].organization_map == {"globex.com": "Globex"}
