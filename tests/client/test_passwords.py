"""Password values: read only on request, and never in a repr, a dump, a log or the cache."""

from __future__ import annotations

import logging

import pytest

from core_client.cache.records import flatten
from core_client.redaction import Secret
from itglue_emulator import Emulator
from tests.client.conftest import ClientFactory, requests_seen
from tests.conftest import DatabaseFactory, everything_stored

VALUE = "correct-horse-battery-staple"


def test_the_value_is_read_only_when_asked_and_never_shown(
    itglue_emulator: Emulator,
    make_cached_client: ClientFactory,
    make_database: DatabaseFactory,
    caplog: pytest.LogCaptureFixture,
) -> None:
    emu = itglue_emulator
    emu.add_records({"organizations": [{"id": 5, "name": "Acme"}]})
    client = make_cached_client(emu)
    caplog.set_level(logging.DEBUG)
    created = client.passwords.create(
        organization="Acme", name="Router", username="admin", password=Secret(VALUE)
    )
    assert [r["password"] for r in emu.records("passwords")] == [VALUE]  # sent as given
    assert created.password is None  # a create does not echo it

    hidden = client.passwords.get(created.id)
    assert hidden.password is None  # show_password=false is sent explicitly
    listed = list(client.passwords.list(filter={"organization": "Acme"}))
    assert [p.password for p in listed] == [None]

    shown = client.passwords.get(created.id, show_password=True)
    assert shown.password is not None and shown.password.get_secret_value() == VALUE
    for text in (
        repr(shown),
        str(shown),
        str(shown.model_dump()),
        shown.model_dump_json(),
        str(shown.attributes()),
        str(flatten(shown)),  # what the metadata cache would store
        caplog.text,
    ):
        assert VALUE not in text
    assert requests_seen(emu, "GET", "/passwords/:id") == 2
    client.cache.close()  # its counters written: everything it keeps is in the database
    stored = everything_stored(make_database("inspect"))
    assert "Acme" in stored  # the cache holds what the client resolved
    assert VALUE not in stored  # and never the password

    # an update may carry a new value (a plain string or a Secret)
    client.passwords.update(created.id, password="n3w-" + VALUE)
    again = client.passwords.get(created.id, show_password=True)
    assert again.password is not None and again.password.get_secret_value() == "n3w-" + VALUE
    assert VALUE not in caplog.text
    client.passwords.delete(created.id)  # the API has a single DELETE for passwords
    assert emu.records("passwords") == []
    assert requests_seen(emu, "DELETE", "/passwords/:id") == 1
