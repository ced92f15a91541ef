"""Related items: create, update the notes, delete in bulk (the routes the API has)."""

from __future__ import annotations

import pytest

from itglue_emulator import Emulator
from tests.client.conftest import ClientFactory, requests_seen


def test_related_item_update_and_delete(
    itglue_emulator: Emulator, make_client: ClientFactory
) -> None:
    emu = itglue_emulator
    emu.seed({"configurations": 3})
    a, b, c = (r["id"] for r in emu.records("configurations"))
    client = make_client(emu)
    first = client.create_related_item("configurations", a, "Configuration", b, notes="uplink")
    second = client.create_related_item("Configuration", a, "Configuration", c)
    changed = client.update_related_item("configurations", a, first.id, "primary uplink")
    assert changed.notes == "primary uplink" and changed.destination_id == b
    client.delete_related_items("configurations", a, [first.id, second.id])
    client.delete_related_items("configurations", a, [])  # nothing to send
    assert emu.records("related_items") == []
    assert requests_seen(emu, "POST") == 2
    assert requests_seen(emu, "PATCH") == 1
    assert requests_seen(emu, "DELETE") == 1
    with pytest.raises(ValueError, match="does not take related items"):
        client.update_related_item("organizations", a, first.id, "x")
