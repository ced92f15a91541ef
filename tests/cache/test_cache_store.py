"""MetadataCache on both state backends (a real SQLite file, a real PostgreSQL):
schema, lookups, refresh, documents, stats; and what only the SQLite file has."""

from __future__ import annotations

import json
import sqlite3
import stat
import threading
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from core_client.cache import CachedDocument, MetadataCache
from core_client.cache.base import database_errors
from core_client.database import SQLiteDatabase
from core_client.models import Configuration, Contact, Document, Organization
from core_client.sqlite import connect, migrate
from tests.cache.conftest import CacheFactory
from tests.conftest import DatabaseFactory


def org(i: int, name: str | None = None, **attrs: object) -> dict[str, object]:
    """A JSON:API organization resource as IT Glue sends it."""
    return {
        "id": str(i),
        "type": "organizations",
        "attributes": {"name": name or f"Org {i}", "organization-type-name": "Customer", **attrs},
    }


def sha(n: int) -> str:
    return f"{n:064x}"


def test_the_sqlite_file_is_private_and_in_wal_mode(db_path: Path) -> None:
    with MetadataCache(db_path):  # a library user's cache: the path of its file
        pass
    assert stat.S_IMODE(db_path.stat().st_mode) == 0o600
    conn = sqlite3.connect(db_path)
    try:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    finally:
        conn.close()


def test_schema_is_versioned(cache: MetadataCache, make_database: DatabaseFactory) -> None:
    db = make_database("inspect")
    versions = dict(db.query("SELECT component, version FROM schema_version"))
    if db.dialect == "sqlite":
        query = "SELECT name FROM sqlite_master WHERE type='table'"
    else:
        query = "SELECT tablename FROM pg_tables WHERE schemaname = current_schema()"
    tables = {r[0] for r in db.query(query)}
    assert versions == {"cache": 4}  # v4: the index of names and identifying fields
    assert {
        "configuration_types",
        "models",
        "regions",
        "organizations",
        "configurations",
        "documents",
        "contacts",
        "relationships",
        "cache_metadata",
    } <= tables


def test_shares_the_file_with_the_ledger(db_path: Path) -> None:
    from pipeline.ledger import Ledger

    ledger = Ledger(db_path)
    try:
        with MetadataCache(db_path) as c:
            c.refresh_organizations([org(1)])
        with MetadataCache(db_path) as c:  # reopening applies nothing twice
            assert c.find_organization_by_name("org 1") is not None
    finally:
        ledger.close()
    conn = connect(db_path)
    try:
        versions = dict(conn.execute("SELECT component, version FROM schema_version"))
        migrate(conn, "cache", [])  # nothing to do
    finally:
        conn.close()
    assert versions["cache"] == 4 and versions["ledger"] >= 1


def test_a_failed_migration_closes_the_database(make_database: DatabaseFactory) -> None:
    with make_database("other").transaction() as conn:
        # something else already owns a table name the cache needs
        conn.execute("CREATE TABLE organizations (x TEXT)")
    db = make_database("cache")
    with pytest.raises(database_errors(), match="already exists"):
        MetadataCache(db)
    with pytest.raises(Exception, match="closed"):
        db.query("SELECT 1")


def test_lookup_by_name_is_case_insensitive_including_unicode(cache: MetadataCache) -> None:
    cache.refresh_organizations(
        [org(1, "Happy Frog"), org(2, "Ärzte GmbH"), org(3, "Straße AG", quirk="kept")]
    )
    found = cache.find_organization_by_name("HAPPY FROG")
    assert isinstance(found, Organization)
    assert (found.id, found.name, found.organization_type_name) == ("1", "Happy Frog", "Customer")
    assert cache.find_organization_by_name("ärzte gmbh").id == "2"  # type: ignore[union-attr]
    assert cache.find_organization_by_name("ÄRZTE GMBH").id == "2"  # type: ignore[union-attr]
    straße = cache.find_organization_by_name("STRASSE ag")
    assert straße is not None and straße.id == "3"
    assert straße.attr("quirk") == "kept"  # unknown attributes survive the round trip
    assert cache.find_organization_by_name("  happy frog ") is not None
    assert cache.find_organization_by_name("Happy") is None
    cache.put("organizations", {"id": "4", "name": None})
    assert cache.find_organization_by_name("") is None
    assert cache.find_organization_by_name("   ") is None


def test_duplicate_names_prefer_exact_spelling_then_lowest_id(cache: MetadataCache) -> None:
    cache.refresh_organizations([org(10, "acme"), org(9, "ACME"), org(11, "Acme")])
    assert cache.find_organization_by_name("Acme").id == "11"  # type: ignore[union-attr]
    assert cache.find_organization_by_name("aCmE").id == "9"  # type: ignore[union-attr]
    assert [o.id for o in cache.find_organizations_by_name("acme")] == ["10", "9", "11"]


def test_accepts_models_flat_dicts_and_jsonapi_resources(cache: MetadataCache) -> None:
    model = Organization.model_validate({"id": "5", "name": "From Model", "x-extra": 1})
    cache.refresh_organizations([model, {"id": 6, "name": "Flat"}, org(7, "Resource")])
    assert cache.find_organization_by_name("from model").attr("x-extra") == 1  # type: ignore[union-attr]
    assert cache.find_organization_by_name("flat").id == "6"  # type: ignore[union-attr]
    assert cache.get("organization", 7).name == "Resource"
    with pytest.raises(ValueError, match="needs an id"):
        cache.put("organizations", {"name": "no id"})
    with pytest.raises(ValueError, match="unknown cache kind"):
        cache.put("passwords", {"id": "1"})


def test_configurations_and_contacts_by_name_within_an_organization(
    cache: MetadataCache,
) -> None:
    cache.refresh_configurations(
        [
            {"id": "1", "attributes": {"name": "FW-01", "organization-id": 1}},
            {"id": "2", "attributes": {"name": "fw-01", "organization-id": 2}},
        ]
    )
    cache.refresh_contacts(
        [
            {
                "id": "7",
                "attributes": {
                    "first-name": "Ada",
                    "last-name": "Lovelace",
                    "organization-id": "2",
                    "contact-emails": [
                        {"value": "old@example.com", "primary": False},
                        {"value": "Ada@Example.com", "primary": True},
                    ],
                },
            }
        ]
    )
    c = cache.find_configuration_by_name("FW-01", organization_id=2)
    assert isinstance(c, Configuration) and c.id == "2" and c.organization_id == "2"
    assert cache.find_configuration_by_name("FW-01").id == "1"  # type: ignore[union-attr]
    assert cache.find_configuration_by_name("Fw-01").id == "1"  # type: ignore[union-attr]
    assert cache.find_configuration_by_name("fw-01", organization_id="3") is None
    person = cache.find_contact_by_name("ada lovelace")
    assert isinstance(person, Contact) and person.id == "7"
    assert cache.find_contact_by_email("ADA@example.com").id == "7"  # type: ignore[union-attr]
    assert cache.find_contact_by_email("ada@example.com", organization_id=1) is None
    assert cache.find_contact_by_name("Ada Lovelace", organization_id=1) is None


def test_refresh_replaces_the_kind_and_records_the_time(cache: MetadataCache) -> None:
    assert cache.is_stale("organizations")
    assert cache.refresh_organizations([org(i) for i in range(1, 6)]) == 5
    assert cache.refresh_organizations([org(i, f"Renamed {i}") for i in range(4, 8)]) == 4
    assert cache.ids("organizations") == ["4", "5", "6", "7"]
    assert cache.find_organization_by_name("org 1") is None
    assert cache.find_organization_by_name("renamed 5").id == "5"  # type: ignore[union-attr]
    assert not cache.is_stale("organizations", 3600)
    assert not cache.is_stale("organization", timedelta(hours=1))
    assert not cache.is_stale("organizations", max_age_hours=24)
    assert cache.is_stale("configurations", max_age_hours=24)  # never refreshed
    with pytest.raises(ValueError, match="not both"):
        cache.is_stale("organizations", 10, max_age_hours=1)


def test_staleness_follows_the_recorded_refresh_time(
    cache: MetadataCache, make_database: DatabaseFactory
) -> None:
    cache.refresh_organizations([org(1)])
    two_hours_ago = time.time() - 7200
    info = {**(cache.refresh_info("organizations") or {}), "at": two_hours_ago}
    with make_database("other").transaction() as conn:
        conn.execute(
            "UPDATE cache_metadata SET value=? WHERE key='refresh:organizations'",
            (json.dumps(info),),
        )
    assert cache.is_stale("organizations", max_age_hours=1)
    assert not cache.is_stale("organizations", max_age_hours=3)
    assert cache.last_refresh("organizations") == pytest.approx(two_hours_ago)


def test_refresh_streams_and_swaps_atomically(
    cache: MetadataCache, make_database: DatabaseFactory
) -> None:
    cache.refresh_organizations([org(i, f"Old {i}") for i in range(3)])
    seen_during: list[int] = []
    progress: list[int] = []

    def listing() -> Iterator[dict[str, object]]:
        for i in range(2000):
            if i == 1500:
                # half way through the listing, another connection still sees the old
                # data, untouched, and can write (no lock is held while pages arrive)
                other = make_database("cache")
                seen_during.append(other.query("SELECT count(*) FROM organizations")[0][0])
                with other.transaction() as conn:  # a writer of the cache's tables
                    conn.execute("UPDATE cache_metadata SET updated_at = updated_at")
                other.close()
                assert progress and progress[-1] >= 1000  # progress reported while streaming
            yield org(100 + i)

    assert cache.refresh_organizations(listing(), progress=progress.append) == 2000
    assert seen_during == [3]
    assert progress[-1] == 2000 and progress == sorted(progress)
    assert cache.get_statistics()["organization_count"] == 2000
    assert cache.find_organization_by_name("old 1") is None


def test_a_failing_listing_changes_nothing(cache: MetadataCache) -> None:
    cache.refresh_organizations([org(1), org(2)])
    before = cache.last_refresh("organizations")

    def broken() -> Iterator[dict[str, object]]:
        yield org(3)
        yield from (org(i) for i in range(4, 1200))
        raise ConnectionError("listing interrupted")

    with pytest.raises(ConnectionError):
        cache.refresh_organizations(broken())
    assert cache.ids("organizations") == ["1", "2"]
    assert cache.last_refresh("organizations") == before
    # and the staging table is gone: the next refresh works
    assert cache.refresh_organizations([org(9)]) == 1


def test_record_document_and_find_by_hash(cache: MetadataCache) -> None:
    doc = Document.model_validate(
        {"id": "501", "name": "Scan 1.pdf", "organization-id": "3", "sections": [{"content": "x"}]}
    )
    rec = cache.record_document(doc, sha256=sha(1).upper(), size=1234, attachment_ids=["9"])
    assert isinstance(rec, CachedDocument)
    assert (rec.id, rec.organization_id, rec.name, rec.sha256, rec.size, rec.attachment_ids) == (
        "501",
        "3",
        "Scan 1.pdf",
        sha(1),
        1234,
        ("9",),
    )
    assert "sections" not in rec.attributes  # content never cached
    cache.record_document("502", sha256=sha(1), size=1234, organization_id=4, name="Scan 1.pdf")
    assert [d.id for d in cache.find_documents_by_hash(sha(1))] == ["501", "502"]
    assert [d.id for d in cache.find_documents_by_hash(sha(1), organization_id="3")] == ["501"]
    assert [d.id for d in cache.find_documents_by_hash(sha(1).upper(), organization_id=4)] == [
        "502"
    ]
    assert cache.find_documents_by_hash(sha(2)) == []
    # a second upload to the same document merges its attachment ids
    again = cache.record_document("501", sha256=sha(1), size=1234, attachment_ids=[10, "9"])
    assert again.attachment_ids == ("9", "10") and again.organization_id == "3"
    assert again.name == "Scan 1.pdf"
    assert [d.id for d in cache.find_documents_by_name("SCAN 1.PDF", organization_id=3)] == ["501"]
    assert cache.get_cached_document(501).attachment_ids == ("9", "10")  # type: ignore[union-attr]
    assert cache.smart_get_document("501").name == "Scan 1.pdf"  # type: ignore[union-attr]
    with pytest.raises(ValueError, match="64 hexadecimal"):
        cache.record_document("503", sha256="abc", size=1)
    with pytest.raises(ValueError, match="negative"):
        cache.record_document("503", sha256=sha(3), size=-1)


def test_document_refresh_keeps_recorded_hashes(cache: MetadataCache) -> None:
    cache.record_document("1", sha256=sha(1), size=10, organization_id="7", name="a.pdf")
    cache.record_document("2", sha256=sha(2), size=20, organization_id="7", name="b.pdf")
    cache.record_document("3", sha256=sha(3), size=30, organization_id="8", name="c.pdf")
    time.sleep(0.01)  # deliberate: the listing below starts after these were recorded
    # organization 7 is listed: document 2 was deleted in IT Glue, 1 renamed, 4 is new
    listed = [
        {"id": "1", "attributes": {"name": "a (renamed).pdf"}},
        {"id": "4", "attributes": {"name": "d.pdf", "content": "<p>body</p>"}},
    ]
    assert cache.refresh_documents(listed, organization_id=7) == 2
    assert cache.ids("documents") == ["1", "3", "4"]  # organization 8 untouched
    one = cache.get_cached_document("1")
    assert one is not None and (one.sha256, one.size, one.name) == (sha(1), 10, "a (renamed).pdf")
    four = cache.get_cached_document("4")
    assert four is not None and four.organization_id == "7" and four.sha256 is None
    assert "content" not in four.attributes
    assert cache.find_documents_by_hash(sha(2)) == []
    assert not cache.is_stale("documents", 60, organization_id=7)
    assert cache.is_stale("documents", 60)  # only one organization was refreshed
    with pytest.raises(ValueError, match="per organization"):
        cache.refresh_organizations([], organization_id=1)


def test_refresh_keeps_records_cached_while_the_listing_ran(cache: MetadataCache) -> None:
    def listing() -> Iterator[dict[str, object]]:
        yield org(1)
        # the sink records a document / another thread caches an org mid-refresh
        cache.put("organizations", org(2))
        yield org(3)

    cache.refresh_organizations(listing())
    assert cache.ids("organizations") == ["1", "2", "3"]


def test_statistics_count_lookups_across_instances(open_cache: CacheFactory) -> None:
    with open_cache() as c:
        where = c.db.describe()
        c.refresh_organizations([org(1), org(2)])
        c.record_document("9", sha256=sha(9), size=1, organization_id="1", name="x")
        c.record_relationship("documents", "9", "configurations", "4", {"notes": "n"})
        assert c.find_organization_by_name("org 1") is not None  # hit
        assert c.find_organization_by_name("nobody") is None  # miss
        assert c.find_documents_by_hash(sha(9))  # hit
        stats = c.get_statistics()
    assert stats["hits"] == 2 and stats["misses"] == 1
    assert stats["cache_hit_rate"] == pytest.approx(2 / 3)
    assert stats["organization_count"] == 2 and stats["document_count"] == 1
    assert stats["documents_with_hash"] == 1 and stats["relationship_count"] == 1
    assert stats["configuration_count"] == 0 and stats["contact_count"] == 0
    assert stats["size_bytes"] > 0 and stats["database_path"] == where
    assert stats["last_refresh"]["organizations"] is not None
    assert stats["last_refresh"]["contacts"] is None
    with open_cache() as c:  # persisted, and accumulated by the next process
        assert c.get("organizations", "1") is not None
        c.close()
    with open_cache() as c:
        stats = c.get_statistics()
        json.dumps(stats)  # serialisable as is (the CLI prints it)
    assert (stats["hits"], stats["misses"]) == (3, 1)


def test_relationships(cache: MetadataCache) -> None:
    cache.record_relationship("documents", 1, "configurations", 2, {"notes": "scan"})
    cache.record_relationship("documents", 1, "contacts", "3")
    cache.record_relationship("documents", 1, "contacts", "3", {"notes": "updated"})
    assert cache.relationships_of("documents", "1") == [
        {"target_type": "configurations", "target_id": "2", "notes": "scan"},
        {"target_type": "contacts", "target_id": "3", "notes": "updated"},
    ]
    assert cache.forget_relationship("documents", "1", "contacts", 3)
    assert not cache.forget_relationship("documents", "1", "contacts", 3)
    assert len(cache.relationships_of("documents", 1)) == 1


def test_vacuum_compacts(cache: MetadataCache) -> None:
    cache.refresh_organizations(org(i, padding="x" * 500) for i in range(3000))
    cache.refresh_organizations([org(1)])
    result = cache.vacuum()
    assert result["size_after"] < result["size_before"]
    assert cache.get("organizations", 1) is not None


def test_vacuum_keeps_the_file_private(db_path: Path) -> None:
    with MetadataCache(db_path) as cache:
        cache.refresh_organizations([org(1)])
        cache.vacuum()
    assert stat.S_IMODE(db_path.stat().st_mode) == 0o600


def test_threads_share_the_cache(cache: MetadataCache) -> None:
    cache.refresh_organizations(org(i) for i in range(500))
    errors: list[BaseException] = []
    stop = threading.Event()

    def reader() -> None:
        try:
            while not stop.is_set():
                for i in range(0, 500, 7):
                    assert cache.find_organization_by_name(f"ORG {i}") is not None
        except BaseException as e:
            errors.append(e)

    def writer(n: int) -> None:
        try:
            for i in range(50):
                cache.record_document(f"{n}-{i}", sha256=sha(i), size=i, organization_id=n)
        except BaseException as e:
            errors.append(e)

    threads = [threading.Thread(target=reader) for _ in range(4)]
    threads += [threading.Thread(target=writer, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    cache.refresh_organizations(org(i) for i in range(500))  # meanwhile, on this thread
    for t in threads[4:]:
        t.join()
    stop.set()
    for t in threads[:4]:
        t.join()
    assert errors == []
    assert len(cache.find_documents_by_hash(sha(7))) == 4
    assert cache.get_statistics()["document_count"] == 200


def test_closed_cache_refuses_work(open_cache: CacheFactory) -> None:
    c = open_cache()
    c.close()
    c.close()  # idempotent
    with pytest.raises(RuntimeError, match="closed"):
        c.find_organization_by_name("x")
    assert c.db.describe() in repr(c)


def test_record_documents_in_batches(cache: MetadataCache) -> None:
    entries = (
        {"id": str(i), "sha256": sha(i % 700), "size": i, "organization_id": i % 3, "name": f"d{i}"}
        for i in range(1200)
    )
    assert cache.record_documents(entries) == 1200
    assert [d.id for d in cache.find_documents_by_hash(sha(5))] == ["5", "705"]
    assert [d.id for d in cache.find_documents_by_hash(sha(5), organization_id=0)] == ["705"]
    with pytest.raises(ValueError, match="hexadecimal"):  # a bad batch is rolled back whole
        cache.record_documents(
            [{"id": "x1", "sha256": sha(1), "size": 1}, {"id": "x2", "sha256": "z", "size": 1}]
        )
    assert cache.get_cached_document("x1") is None


def test_every_lookup_is_an_index_search(db_path: Path) -> None:
    """The statements the lookups really run (traced), planned by SQLite: no table scans."""
    cache = MetadataCache(db_path)
    assert isinstance(cache.db, SQLiteDatabase)
    conn = cache.db.conn  # the cache's connection, to trace what the lookups execute
    statements: list[str] = []
    conn.set_trace_callback(statements.append)
    try:
        cache.find_organization_by_name("Acme")
        cache.find_configuration_by_name("fw", organization_id=1)
        cache.find_configuration_by_name("fw")
        cache.find_contact_by_name("ada", organization_id=1)
        cache.find_contact_by_email("a@example.com")
        cache.find_documents_by_hash(sha(1))
        cache.find_documents_by_hash(sha(1), organization_id=2)
        cache.find_documents_by_name("scan.pdf")
        cache.find_documents_by_name("scan.pdf", organization_id=2)
        cache.get_cached_document("1")
        cache.smart_get_organization("1")
    finally:
        conn.set_trace_callback(None)
    selects = [s for s in statements if s.lstrip().upper().startswith("SELECT")]
    assert len(selects) == 11
    for sql in selects:
        plan = " | ".join(r[-1] for r in conn.execute("EXPLAIN QUERY PLAN " + sql))
        assert "USING INDEX" in plan or "USING COVERING INDEX" in plan or "PRIMARY KEY" in plan, (
            sql,
            plan,
        )
        assert "SCAN" not in plan.replace("SCAN CONSTANT", ""), (sql, plan)
    cache.close()


def test_each_instance_has_a_cache_of_its_own(
    state_backend: str, state_location: str, tmp_path: Path
) -> None:
    """Two IT Glue instances in one pipeline: the same tables, separate data (SQLite:
    a file each; PostgreSQL: the default instance's beside the ledger, the other's in a
    schema of its own)."""
    from pipeline.settings import parse_settings
    from pipeline.state_database import open_cache_database

    state: dict[str, object] = {"dir": str(tmp_path / "state")}
    if state_backend == "postgresql":
        state |= {"backend": "postgresql", "dsn": state_location}
    settings = parse_settings(
        {"itglue": {"instances": {"prod": {}, "sandbox": {}}}, "state": state}
    )
    with MetadataCache(open_cache_database(settings, "prod")) as prod:
        prod.put("organizations", org(1, "Production Org"))
    with MetadataCache(open_cache_database(settings, "sandbox")) as sandbox:
        sandbox.put("organizations", org(1, "Sandbox Org"))
        assert sandbox.find_organization_by_name("production org") is None
    with MetadataCache(open_cache_database(settings)) as default:  # prod: the first
        assert default.get("organizations", 1).name == "Production Org"  # type: ignore[union-attr]
    with MetadataCache(open_cache_database(settings, "sandbox")) as sandbox:  # reopened
        assert sandbox.get("organizations", 1).name == "Sandbox Org"  # type: ignore[union-attr]
        assert sandbox.search("sandbox")[0].id == "1"
