"""The engine with real (test) plugins: a folder source and a journaled SQLite sink."""

from __future__ import annotations

import io
import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal

import pytest

import pipeline
from pipeline import DocumentRecord, FileInput, PermanentError, RecordDraft, Source
from pipeline.runner import Engine
from pipeline.settings import ConfigError, Settings, parse_settings
from tests.pipeline.pipeline_engine_helpers import (
    DirSource,
    Recorder,
    plugin_manager,
    store_attachments,
    store_documents,
)
from tests.waiting import wait_for


@pytest.fixture(autouse=True)
def _reset_calls() -> Iterator[None]:
    DirSource.calls.clear()
    yield
    DirSource.calls.clear()


def make_settings(
    tmp_path: Path,
    *,
    sources: list[dict[str, Any]] | None = None,
    pipeline_opts: dict[str, Any] | None = None,
    sink: dict[str, Any] | None = None,
    transforms: dict[str, Any] | None = None,
) -> Settings:
    inbox = tmp_path / "inbox"
    inbox.mkdir(exist_ok=True)
    return parse_settings(
        {
            "state": {"dir": str(tmp_path / "state")},
            "pipeline": {
                "transforms": ["org"],
                "sink": "store",
                "retry_base": 0.02,
                "retry_max": 0.2,
                "workers": 3,
                "once_timeout": 60,
                **(pipeline_opts or {}),
            },
            "sinks": {"store": {"db": str(tmp_path / "store.db"), **(sink or {})}},
            "transforms": transforms or {},
            "sources": sources
            if sources is not None
            else [{"name": "inbox", "type": "dir", "path": str(inbox)}],
        }
    )


def write(folder: Path, name: str, content: str | bytes) -> Path:
    folder.mkdir(exist_ok=True)
    p = folder / name
    p.write_bytes(content.encode() if isinstance(content, str) else content)
    return p


def test_delivers_everything_once_then_acks_and_frees_the_spool(tmp_path: Path) -> None:
    s = make_settings(tmp_path)
    for i in range(12):
        write(tmp_path / "inbox", f"doc{i:02}.txt", f"content {i}")
    rec = Recorder()
    with Engine(s, plugin_manager(rec)) as engine:
        summary = engine.run_once()
        assert (summary.delivered, summary.duplicate, summary.failed, summary.pending) == (
            12,
            0,
            0,
            0,
        )
        assert summary.ok and summary.by_source == {
            "inbox": {"delivered": 12, "duplicate": 0, "failed": 0, "pending": 0}
        }
        assert engine.ledger.counts() == {"inbox": {"done": 12}}
        assert list(engine.spool.hashes()) == []  # freed after delivery
        entry = engine.ledger.find("inbox", "doc03.txt")
        assert (
            entry is not None and json.loads(entry.result or "{}")["resource_type"] == "documents"
        )
    docs = store_documents(tmp_path / "store.db")
    assert sorted(d[3] for d in docs) == [f"doc{i:02}.txt" for i in range(12)]
    atts = store_attachments(tmp_path / "store.db")
    assert sorted(a[3] for a in atts) == sorted(f"content {i}".encode() for i in range(12))
    assert sorted(rec.delivered) == [f"doc{i:02}.txt" for i in range(12)]
    assert sorted(c[1] for c in DirSource.calls if c[0] == "ack") == sorted(rec.delivered)
    assert sorted(p.name for p in (tmp_path / "inbox" / ".done").iterdir()) == sorted(rec.delivered)

    # a second run finds nothing new: every draft is already known
    write(tmp_path / "inbox", "late.txt", "late")
    with Engine(s, plugin_manager()) as engine:
        summary = engine.run_once()
    assert (summary.delivered, summary.duplicate) == (1, 0)
    assert len(store_documents(tmp_path / "store.db")) == 13


class CheckedDir(DirSource):
    """Asserts, at ack time, that the record is already in the store (ack after delivery)."""

    store: Path

    def ack(self, record: DocumentRecord, outcome: Literal["delivered", "duplicate"]) -> None:
        refs = {d[3] for d in store_documents(CheckedDir.store)}
        if outcome == "delivered" and record.source_ref not in refs:
            DirSource.calls.append(("EARLY-ACK", record.source_ref, outcome))
        super().ack(record, outcome)


class CheckedPlugin:
    @pipeline.hookimpl
    def ingest_register_sources(self, register: Any) -> None:
        register("checked-dir", CheckedDir)


def test_ack_only_after_delivery_and_transients_retried(tmp_path: Path) -> None:
    inbox = tmp_path / "inbox"
    s = make_settings(
        tmp_path,
        sources=[{"name": "inbox", "type": "checked-dir", "path": str(inbox)}],
        sink={"transient_failures": 2},
    )
    CheckedDir.store = tmp_path / "store.db"
    for i in range(5):
        write(inbox, f"f{i}.txt", f"c{i}")
    rec = Recorder()
    with Engine(s, plugin_manager(rec, CheckedPlugin())) as engine:
        summary = engine.run_once()
        assert summary.delivered == 5 and summary.ok
        entry = engine.ledger.find("inbox", "f0.txt")
        assert entry is not None and entry.attempts == 2  # two transient failures, then ok
    assert not [c for c in DirSource.calls if c[0] == "EARLY-ACK"]
    assert [c for c in DirSource.calls if c[0] == "ack"] and len(DirSource.calls) == 5
    transient = [f for f in rec.failed if not f[2]]
    assert len(transient) == 10 and all("503" in f[1] for f in transient)
    assert len(store_documents(tmp_path / "store.db")) == 5


def test_permanent_failure_nacks_and_a_raising_plugin_is_named(tmp_path: Path) -> None:
    s = make_settings(tmp_path, pipeline_opts={"transforms": ["org", "picky"]})
    inbox = tmp_path / "inbox"
    write(inbox, "good.txt", "good")
    write(inbox, "permanent.txt", "p")  # the sink says 422
    write(inbox, "boom.txt", "b")  # the transform has a bug
    write(inbox, "reject-me.txt", "r")  # the transform rejects it
    write(inbox, "crash.txt", "c")  # the sink has a bug
    rec = Recorder()
    with Engine(s, plugin_manager(rec)) as engine:
        summary = engine.run_once()
        assert (summary.delivered, summary.failed, summary.pending) == (1, 4, 0)
        reasons = {f["source_ref"]: f["reason"] for f in summary.failures}
        assert reasons == {
            "permanent.txt": "the store refuses this one (422)",
            "boom.txt": "transform picky raised KeyError: 'oops'",
            "reject-me.txt": "reject-me is not wanted here",
            "crash.txt": "sink store raised RuntimeError: sink bug",
        }
        assert engine.ledger.counts() == {"inbox": {"done": 1, "failed": 4}}
        # failed records keep their spooled bytes so that `retry` can process them again
        assert len(list(engine.spool.hashes())) == 4
    nacks = {c[1]: c[2] for c in DirSource.calls if c[0] == "nack"}
    assert nacks == reasons
    assert sorted(p.name for p in (inbox / ".failed").iterdir()) == sorted(reasons)
    assert {f[0] for f in rec.failed if f[2]} == set(reasons)
    assert [d[3] for d in store_documents(tmp_path / "store.db")] == ["good.txt"]


def test_transform_order_follows_the_configuration(tmp_path: Path) -> None:
    write(tmp_path / "inbox", "a.txt", "a")
    opts = {"tag1": {"tag": "first"}, "tag2": {"tag": "second"}}
    s = make_settings(
        tmp_path, pipeline_opts={"transforms": ["tag2", "org", "tag1"]}, transforms=opts
    )
    with Engine(s, plugin_manager()) as engine:
        engine.run_once()
        entry = engine.ledger.find("inbox", "a.txt")
        assert entry is not None
        assert entry.record().metadata["trail"] == ["second", "first"]


def org_sources(tmp_path: Path) -> list[dict[str, Any]]:
    return [
        {"name": "acme", "type": "dir", "path": str(tmp_path / "acme"), "organization_id": "1"},
        {"name": "beta", "type": "dir", "path": str(tmp_path / "beta"), "organization_id": "2"},
    ]


@pytest.mark.parametrize(("scope", "expected"), [("organization", (3, 1)), ("global", (2, 2))])
def test_duplicates_per_organization_or_global(
    tmp_path: Path, scope: str, expected: tuple[int, int]
) -> None:
    write(tmp_path / "acme", "invoice.pdf", "same bytes")
    write(tmp_path / "acme", "invoice-copy.pdf", "same bytes")  # same org, same content
    write(tmp_path / "acme", "other.pdf", "other bytes")
    write(tmp_path / "beta", "invoice.pdf", "same bytes")  # other org, same content
    s = make_settings(
        tmp_path, sources=org_sources(tmp_path), pipeline_opts={"dedupe_scope": scope}
    )
    rec = Recorder()
    with Engine(s, plugin_manager(rec)) as engine:
        summary = engine.run_once()
        assert (summary.delivered, summary.duplicate) == expected
        assert summary.ok
        assert list(engine.spool.hashes()) == []
    assert len(store_documents(tmp_path / "store.db")) == expected[0]
    assert len(rec.duplicate) == expected[1]
    assert all(existing.startswith("ledger:") for _, existing in rec.duplicate)
    dup_acks = [c for c in DirSource.calls if c[0] == "ack" and c[2] == "duplicate"]
    assert len(dup_acks) == expected[1]


class Weird(Source):
    """Emits what the test puts in ``drafts``; records each EmitResult."""

    drafts: list[RecordDraft] = []
    results: list[Any] = []

    def scan(self) -> None:
        for d in Weird.drafts:
            Weird.results.append(self.context.emit(d))


class WeirdPlugin:
    @pipeline.hookimpl
    def ingest_register_sources(self, register: Any) -> None:
        register("weird", Weird)


def test_unreadable_and_too_large_inputs_fail_with_reasons(tmp_path: Path) -> None:
    big = write(tmp_path, "big.bin", b"x" * 2048)

    def broken() -> io.BytesIO:
        raise PermissionError(13, "Permission denied")

    Weird.results = []
    Weird.drafts = [
        RecordDraft("gone", "gone", files=[FileInput("gone.pdf", path=tmp_path / "nope.pdf")]),
        RecordDraft("locked", "locked", files=[FileInput("locked.pdf", open=broken)]),
        RecordDraft("big", "big", files=[FileInput("big.bin", path=big)]),
        RecordDraft(
            "big-stream", "big", files=[FileInput("s.bin", open=lambda: io.BytesIO(b"y" * 4096))]
        ),
        RecordDraft("ok", "ok", files=[FileInput("ok.txt", open=lambda: io.BytesIO(b"fine"))]),
        RecordDraft("ok", "ok again"),  # same identity: known
        RecordDraft(  # the first file is fine, the second too large: nothing is kept
            "mixed",
            "mixed",
            files=[
                FileInput("small.txt", open=lambda: io.BytesIO(b"small and unique")),
                FileInput("big.bin", path=big),
            ],
        ),
    ]
    s = make_settings(
        tmp_path,
        sources=[{"name": "w", "type": "weird"}],
        pipeline_opts={"max_file_size": 1024},
    )
    with Engine(s, plugin_manager(WeirdPlugin())) as engine:
        summary = engine.run_once()
        status = [r.status for r in Weird.results]
        assert status == ["failed", "failed", "failed", "failed", "accepted", "known", "failed"]
        reasons = [r.reason for r in Weird.results[:4]]
        assert reasons[0].startswith("unreadable: gone.pdf: No such file")
        assert reasons[1] == "unreadable: locked.pdf: Permission denied"
        assert reasons[2] == (
            "too large: 2048 bytes > limit 1024; raise [pipeline] max_file_size or split"
            " the file (big.bin)"
        )
        assert reasons[3].startswith("too large: at least")
        assert (summary.delivered, summary.failed) == (1, 5)
        assert list(engine.spool.hashes()) == []
        assert list(engine.spool.tmp.iterdir()) == []
        assert engine.ledger.state_of("w", "ok") == "done"


class FlakyAck(DirSource):
    fail_acks = True

    def ack(self, record: DocumentRecord, outcome: Literal["delivered", "duplicate"]) -> None:
        if FlakyAck.fail_acks:
            raise OSError("the processed/ folder is read-only")
        super().ack(record, outcome)


class FlakyAckPlugin:
    @pipeline.hookimpl
    def ingest_register_sources(self, register: Any) -> None:
        register("flaky", FlakyAck)


def test_ack_errors_are_retried_and_acked_again_after_restart(tmp_path: Path) -> None:
    inbox = tmp_path / "inbox"
    write(inbox, "a.txt", "a")
    s = make_settings(
        tmp_path,
        sources=[{"name": "inbox", "type": "flaky", "path": str(inbox)}],
        pipeline_opts={"retry_base": 30, "retry_max": 60},
    )
    FlakyAck.fail_acks = True
    with Engine(s, plugin_manager(FlakyAckPlugin())) as engine:
        summary = engine.run_once()
        assert summary.delivered == 1 and summary.ok  # delivered; the ack waits
        assert engine.ledger.state_of("inbox", "a.txt") == "delivered"
        assert engine.ledger.delivered_unacked() != []
    FlakyAck.fail_acks = False
    with Engine(s, plugin_manager(FlakyAckPlugin())) as engine:
        engine.ledger.requeue(source="inbox")  # not failed: nothing to requeue ...
        rid = engine.ledger.delivered_unacked()[0]
        engine.ledger.postpone(rid, 0, count_attempt=False)  # ... the ack is due now
        engine.run_once()
        assert engine.ledger.state_of("inbox", "a.txt") == "done"
    assert len(store_documents(tmp_path / "store.db")) == 1  # delivered once, acked later
    assert (inbox / ".done" / "a.txt").exists()


def test_back_pressure_bounds_the_spool(tmp_path: Path) -> None:
    seen: list[int] = []

    class Counting(DirSource):
        def scan(self) -> None:
            for i in range(12):
                self.context.emit(
                    RecordDraft(
                        f"r{i}",
                        f"r{i}",
                        files=[FileInput("f", open=lambda i=i: io.BytesIO(b"%d" % i))],
                    )
                )
                seen.append(engine.ledger.spool_load()[0])

    class P:
        @pipeline.hookimpl
        def ingest_register_sources(self, register: Any) -> None:
            register("counting", Counting)

    s = make_settings(
        tmp_path,
        sources=[{"name": "c", "type": "counting", "path": str(tmp_path)}],
        sink={"step_delay": 0.05},
        pipeline_opts={"spool_max_records": 3, "workers": 1},
    )
    with Engine(s, plugin_manager(P())) as engine:
        summary = engine.run_once()
    assert summary.delivered == 12
    assert max(seen) <= 3


def test_configuration_errors_name_the_key(tmp_path: Path) -> None:
    bad_type = make_settings(tmp_path, sources=[{"name": "x", "type": "nope"}])
    with pytest.raises(ConfigError, match=r"sources\[0\]\.type: unknown source type 'nope'"):
        Engine(bad_type, plugin_manager())
    missing = make_settings(tmp_path, sources=[{"name": "x", "type": "dir"}])
    with pytest.raises(ConfigError, match=r"sources\[0\]\.path: Field required"):
        Engine(missing, plugin_manager())
    extra = make_settings(
        tmp_path, sources=[{"name": "x", "type": "dir", "path": "/tmp", "pathh": 1}]
    )
    with pytest.raises(ConfigError, match=r"sources\[0\]\.pathh: Extra inputs"):
        Engine(extra, plugin_manager())
    bad_transform = make_settings(tmp_path, pipeline_opts={"transforms": ["org", "ocr"]})
    with pytest.raises(ConfigError, match=r"pipeline\.transforms\[1\]: unknown transform 'ocr'"):
        Engine(bad_transform, plugin_manager())
    bad_sink_opt = make_settings(tmp_path, sink={"transient_failures": "many"})
    with pytest.raises(ConfigError, match=r"sinks\.store\.transient_failures"):
        Engine(bad_sink_opt, plugin_manager())
    # nothing was left locked or open: a good configuration works afterwards
    with Engine(make_settings(tmp_path), plugin_manager()) as engine:
        assert engine.run_once().ok


def test_one_engine_per_state_folder(tmp_path: Path) -> None:
    s = make_settings(tmp_path)
    with Engine(s, plugin_manager()), pytest.raises(ConfigError, match="another"):
        Engine(s, plugin_manager())


def test_source_secrets(
    tmp_path: Path, memory_keyring: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    with Engine(make_settings(tmp_path), plugin_manager()) as engine:
        ctx = engine.sources["inbox"].context
        monkeypatch.setenv("INBOX_PW", "from-env")
        assert ctx.secret("password", env="INBOX_PW") == "from-env"
        memory_keyring.set_password("itglue-ingest", "source:inbox:password", "from-keyring")
        monkeypatch.delenv("INBOX_PW")
        assert ctx.secret("password", env="INBOX_PW") == "from-keyring"
        with pytest.raises(PermanentError) as e:
            ctx.secret("token", env="INBOX_TOKEN")
        assert "INBOX_TOKEN" in e.value.reason
        assert "keyring set itglue-ingest source:inbox:token" in e.value.reason
        ctx.set_checkpoint("cursor", "42")
        assert ctx.get_checkpoint("cursor") == "42"
        assert ctx.known("nothing") is None


def test_daemon_shuts_down_promptly_and_resumes(tmp_path: Path) -> None:
    inbox = tmp_path / "inbox"
    for i in range(30):
        write(inbox, f"f{i:02}.txt", f"c{i}")
    s = make_settings(tmp_path, sink={"step_delay": 0.3}, pipeline_opts={"workers": 2})
    stop = threading.Event()
    with Engine(s, plugin_manager()) as engine:
        t = threading.Thread(target=engine.run, args=(stop,))
        t.start()
        # stopped in full flight: a few records delivered, others mid-delivery
        wait_for(
            lambda: len(store_documents(tmp_path / "store.db")) >= 2,
            timeout=30,
            message="two deliveries",
        )
        t0 = time.monotonic()
        stop.set()
        t.join(15)
        took = time.monotonic() - t0
        assert not t.is_alive()
        assert took < 10
        counts = engine.ledger.counts()["inbox"]
        assert counts.get("done", 0) < 30  # it really was cut short
    with Engine(s, plugin_manager()) as engine:
        summary = engine.run_once()
        assert summary.ok
        assert engine.ledger.counts() == {"inbox": {"done": 30}}
    refs = [d[3] for d in store_documents(tmp_path / "store.db")]
    assert sorted(refs) == sorted(f"f{i:02}.txt" for i in range(30))  # each exactly once
    assert len(store_attachments(tmp_path / "store.db")) == 30


def test_shared_spool_file_is_kept_while_any_record_needs_it(tmp_path: Path) -> None:
    write(tmp_path / "acme", "a.txt", "shared bytes")
    write(tmp_path / "beta", "permanent.txt", "shared bytes")  # same content, refused
    s = make_settings(tmp_path, sources=org_sources(tmp_path))
    with Engine(s, plugin_manager()) as engine:
        summary = engine.run_once()
        assert (summary.delivered, summary.failed) == (1, 1)
        acme = engine.ledger.find("acme", "a.txt")
        assert acme is not None and acme.state == "done"
        [blob] = acme.record().files
        assert list(engine.spool.hashes()) == [blob.sha256]  # the failed one still needs it
        assert blob.path.read_bytes() == b"shared bytes"
        # requeued and refused again: still kept; the content survives for another retry
        engine.ledger.requeue(source="beta")
        engine.run_once()
        assert list(engine.spool.hashes()) == [blob.sha256]


def test_progress_and_recovery_of_leftover_spool_files(tmp_path: Path) -> None:
    for i in range(6):
        write(tmp_path / "inbox", f"f{i}.txt", f"c{i}")
    s = make_settings(tmp_path)
    seen: list[Any] = []
    with Engine(s, plugin_manager()) as engine:
        # what a crash between spooling and the ledger insert leaves behind
        orphan = engine.spool.root / "ab" / ("ab" + "0" * 62)
        orphan.parent.mkdir()
        orphan.write_bytes(b"orphan")
        (engine.spool.tmp / "x.part").write_bytes(b"partial")
        summary = engine.run_once(on_progress=seen.append)
        assert summary.delivered == 6
        assert not orphan.exists() and list(engine.spool.tmp.iterdir()) == []
    last = seen[-1]
    assert (last.received, last.finished, last.delivered, last.failed) == (6, 6, 6, 0)
    assert all(p.finished <= p.received for p in seen)


def test_emit_of_unstorable_metadata_raises_and_keeps_nothing(tmp_path: Path) -> None:
    with Engine(make_settings(tmp_path), plugin_manager()) as engine:
        ctx = engine.sources["inbox"].context
        draft = RecordDraft(
            "odd",
            "odd",
            files=[FileInput("a.txt", open=lambda: io.BytesIO(b"a"))],
            metadata={"handle": object()},
        )
        with pytest.raises(Exception, match="serializ"):
            ctx.emit(draft)
        assert list(engine.spool.hashes()) == []
        assert ctx.known("odd") is None


def test_two_plugins_registering_one_name_is_a_config_error(tmp_path: Path) -> None:
    class Clash:
        @pipeline.hookimpl
        def ingest_register_sources(self, register: Any) -> None:
            register("dir", DirSource)

    with pytest.raises(ConfigError, match="plugins: source type 'dir' is registered twice"):
        Engine(make_settings(tmp_path), plugin_manager(Clash()))


def test_a_transient_error_while_reading_records_nothing(tmp_path: Path) -> None:
    class StillWriting(OSError, pipeline.TransientError):
        def __init__(self) -> None:
            pipeline.TransientError.__init__(self, "changed while reading; try later")

    class Flaky(io.BytesIO):
        def read(self, n: int | None = -1) -> bytes:
            raise StillWriting()

    with Engine(make_settings(tmp_path), plugin_manager()) as engine:
        ctx = engine.sources["inbox"].context
        draft = RecordDraft(
            "w",
            "w",
            files=[
                FileInput("ok.txt", open=lambda: io.BytesIO(b"first file")),
                FileInput("w.txt", open=lambda: Flaky(b"x")),
            ],
        )
        with pytest.raises(pipeline.TransientError):
            ctx.emit(draft)
        assert ctx.known("w") is None  # the source may emit it again later
        assert list(engine.spool.hashes()) == [] and list(engine.spool.tmp.iterdir()) == []


def test_an_unreadable_ledger_row_is_set_aside_not_retried_forever(tmp_path: Path) -> None:
    write(tmp_path / "inbox", "a.txt", "a")
    s = make_settings(tmp_path, pipeline_opts={"retry_base": 0.01, "retry_max": 0.02})
    with Engine(s, plugin_manager()) as engine:
        rid, _, _ = engine.ledger.insert(
            DocumentRecord(source="inbox", source_ref="corrupt", name="c")
        )
        with engine.ledger.transaction() as c:  # e.g. written by a newer, incompatible version
            c.execute("UPDATE ledger_records SET record='{not json' WHERE id=?", (rid,))
        summary = engine.run_once()
        assert summary.delivered == 1 and summary.failed == 1
        entry = engine.ledger.get(rid)
        assert entry is not None and entry.state == "failed" and entry.acked
        assert (entry.reason or "").startswith("engine error: ValidationError")


def test_access_token_comes_from_the_hook_and_is_redacted(tmp_path: Path) -> None:
    from pipeline.logs import redact

    class Tokens:
        @pipeline.hookimpl
        def ingest_access_token(self, source: str, account: str) -> str | None:
            return f"tok-{source}-{account}-secret" if account == "ops" else None

    with Engine(make_settings(tmp_path), plugin_manager(Tokens())) as engine:
        ctx = engine.sources["inbox"].context
        assert ctx.access_token("ops") == "tok-inbox-ops-secret"
        assert ctx.access_token("nobody") is None
        assert redact("token tok-inbox-ops-secret leaked") == "token *** leaked"


def test_same_content_to_different_attachment_targets_is_not_a_duplicate() -> None:
    from pipeline.records import Target
    from pipeline.runner import target_key

    base = DocumentRecord(source="s", source_ref="r", name="n", organization_id="1")
    doc = base.model_copy(update={"target": Target()})
    cfg_a = base.model_copy(
        update={
            "target": Target(kind="attachment", resource_type="configurations", resource_id="7")
        }
    )
    cfg_b = base.model_copy(
        update={
            "target": Target(kind="attachment", resource_type="configurations", resource_id="8")
        }
    )
    by_name = base.model_copy(
        update={"target": Target(kind="attachment", resource_type="contacts", resource_name="Ann")}
    )
    keys = {target_key(r) for r in (doc, cfg_a, cfg_b, by_name)}
    assert len(keys) == 4 and target_key(base) == target_key(doc) == ""
    same_name = by_name.model_copy(
        update={"target": Target(kind="attachment", resource_type="contacts", resource_name="ANN")}
    )
    assert target_key(same_name) == target_key(by_name)  # names match case-insensitively


class Unreachable(Source):
    """A source whose server cannot be reached: its scan raises after emitting one draft."""

    def scan(self) -> None:
        self.context.emit(
            RecordDraft("first", "first", files=[FileInput("a.txt", open=lambda: io.BytesIO(b"a"))])
        )
        raise pipeline.TransientError("server feed.example unreachable: connection refused")


class UnreachablePlugin:
    @pipeline.hookimpl
    def ingest_register_sources(self, register: Any) -> None:
        register("unreachable", Unreachable)


def test_a_source_that_cannot_scan_is_reported_and_the_rest_goes_on(tmp_path: Path) -> None:
    write(tmp_path / "inbox", "doc.txt", "fine")
    s = make_settings(
        tmp_path,
        sources=[
            {"name": "inbox", "type": "dir", "path": str(tmp_path / "inbox")},
            {"name": "feed", "type": "unreachable"},
        ],
    )
    with Engine(s, plugin_manager(UnreachablePlugin())) as engine:
        summary = engine.run_once()
    assert summary.delivered == 2  # what was emitted before the failure still lands
    assert summary.source_errors == {"feed": "server feed.example unreachable: connection refused"}
    assert not summary.ok
