"""Helpers of the IMAP tests: messages, a real APPEND, and a recording sink plugin.

The sink is a real plugin (registered through ``ingest_register_sinks``) for tests where
IT Glue is not the point: it appends every delivered record, with its files' bytes, to a
JSON-lines file (so a crashed subprocess's deliveries survive it) and fails records whose
name matches ``fail_pattern`` permanently.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import re
import ssl
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from pathlib import Path
from typing import Any

from imapclient import IMAPClient

import pipeline
from pipeline import (
    DeliveryResult,
    DocumentRecord,
    PermanentError,
    Sink,
    SinkOptions,
    StepJournal,
    Transform,
)

BUILTINS_BUT_IMAP = (
    "plugins.filesystem",
    "plugins.http_feed",
    "plugins.mime",
    "plugins.routing",
    "plugins.title",
    "plugins.itglue_sink",
)


class RecordingOptions(SinkOptions):
    path: str
    fail_pattern: str | None = None  # record names matching it fail permanently
    fail_file: str | None = None  # ... or the pattern in this file (changed by a test)


class RecordingSink(Sink):
    options_model = RecordingOptions
    _lock = threading.Lock()

    def _pattern(self) -> str | None:
        if self.options.fail_file and os.path.exists(self.options.fail_file):
            return Path(self.options.fail_file).read_text().strip() or None
        return self.options.fail_pattern

    def deliver(self, record: DocumentRecord, journal: StepJournal) -> DeliveryResult:
        pattern = self._pattern()
        if pattern and re.search(pattern, record.name):
            raise PermanentError(f"the recording sink refuses {record.name!r} (test)")
        entry = {
            "id": record.id,
            "source_ref": record.source_ref,
            "name": record.name,
            "organization": record.organization,
            "files": [
                {
                    "file_name": b.file_name,
                    "claimed_mime": b.claimed_mime,
                    "data": base64.b64encode(Path(b.path).read_bytes()).decode(),
                    "metadata": b.metadata,
                }
                for b in record.files
            ],
            "sections": [s.content for s in record.sections],
            "metadata": record.metadata,
            "at": time.time(),
        }
        with self._lock, open(self.options.path, "a", encoding="utf-8") as f:
            f.write(json.dumps(entry) + "\n")
            f.flush()
            os.fsync(f.fileno())
        return DeliveryResult(None, "documents", str(record.id))


class OrgAsIdTransform(Transform):
    """Stands in for routing: the organization name is the organization id."""

    def apply(self, record: DocumentRecord) -> DocumentRecord:
        return record.model_copy(update={"organization_id": record.organization or "none"})


class RecordingPlugin:
    @pipeline.hookimpl
    def ingest_register_sinks(self, register: Callable[[str, type[Sink]], None]) -> None:
        register("recording", RecordingSink)

    @pipeline.hookimpl
    def ingest_register_transforms(self, register: Callable[[str, type[Transform]], None]) -> None:
        register("org_as_id", OrgAsIdTransform)


def deliveries(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    out = []
    for line in path.read_text(encoding="utf-8").splitlines():
        entry = json.loads(line)
        for f in entry["files"]:
            f["data"] = base64.b64decode(f["data"])
        out.append(entry)
    return out


def make_message(
    subject: str = "Hello",
    *,
    sender: str = "Alice Vendor <alice@vendor.example>",
    to: str = "docs@msp.example",
    body: str | None = "Please find the document attached.",
    html: str | None = None,
    attachments: Sequence[tuple[str, bytes, str]] = (),
    inline: Sequence[tuple[str, bytes, str]] = (),
    message_id: str | bool | None = True,
    date: Any = None,
) -> bytes:
    """A real RFC 5322 message built with the stdlib (``message_id=False`` leaves it out)."""
    msg = EmailMessage()
    msg["Subject"] = subject
    msg["From"] = sender
    msg["To"] = to
    if date is not None:
        msg["Date"] = format_datetime(date)
    else:
        msg["Date"] = format_datetime(__import__("datetime").datetime.now().astimezone())
    if message_id is True:
        msg["Message-ID"] = make_msgid(domain="test.example")
    elif isinstance(message_id, str):
        msg["Message-ID"] = message_id
    if body is not None:
        msg.set_content(body)
    if html is not None:
        if body is None:
            msg.set_content(html, subtype="html")
        else:
            msg.add_alternative(html, subtype="html")
    for name, data, ctype in inline:
        maintype, subtype = ctype.split("/")
        if msg.get_content_type() == "text/plain" and not msg.is_multipart():
            msg.make_mixed()
        msg.add_attachment(
            data,
            maintype=maintype,
            subtype=subtype,
            filename=name,
            disposition="inline",
            cid=make_msgid(),
        )
    for name, data, ctype in attachments:
        maintype, subtype = ctype.split("/")
        msg.add_attachment(data, maintype=maintype, subtype=subtype, filename=name)
    return msg.as_bytes()


@contextlib.contextmanager
def imap_client(server: Any, user: str, password: str) -> Iterator[IMAPClient]:
    ctx = ssl.create_default_context(cafile=server.ca_file)
    client = IMAPClient(server.host, server.ssl_port, ssl=True, ssl_context=ctx, timeout=30)
    try:
        client.login(user, password)
        yield client
    finally:
        with contextlib.suppress(Exception):
            client.logout()


@contextlib.contextmanager
def running(engine: Any) -> Iterator[None]:
    """The engine's daemon (``Engine.run``) in a thread for the ``with`` block."""
    stop = threading.Event()
    t = threading.Thread(target=engine.run, args=(stop,), name="engine-run")
    t.start()
    try:
        yield
    finally:
        stop.set()
        t.join(15)
        assert not t.is_alive()
