"""Full-text search of the cache (FTS5): what matches, in which order, and the
migration that indexes a cache written by the previous schema."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from core_client.cache import MetadataCache
from core_client.cache.postgres_search import tsquery
from core_client.cache.schema import MIGRATIONS
from core_client.cache.search import CANDIDATES, fts_query
from core_client.sqlite import connect, migrate
from pipeline.commands.client import cache as cache_command


def _fill(cache: MetadataCache) -> None:
    cache.put_many(
        "organizations",
        [
            {"id": "1", "name": "Acme Dental", "quick-notes": "backup tapes go offsite"},
            {"id": "2", "name": "Happy Frog"},
        ],
    )
    cache.put_many(
        "configurations",
        [
            {
                "id": "10",
                "organization-id": "1",
                "name": "DC01",
                "hostname": "dc01.acme.local",
                "primary-ip": "10.0.0.5",
                "serial-number": "SN-4711",
                "notes": "Domain controller",
            },
            {
                "id": "11",
                "organization-id": "1",
                "name": "NAS",
                "hostname": "nas.acme.local",
                "notes": "Veeam backup repository for dc01 and fs01",
            },
            {"id": "12", "organization-id": "2", "name": "DC01-Frog", "notes": "backup: none"},
        ],
    )
    cache.put_many(
        "contacts",
        [
            {
                "id": "20",
                "organization-id": "1",
                "first-name": "Ada",
                "last-name": "Lovelace",
                "title": "Backup operator",
                "contact-emails": [{"value": "ada@acme.test", "primary": True}],
            }
        ],
    )


def _filler(cache: MetadataCache, n: int = 300) -> None:
    """Unrelated records: ranking (bm25) weighs how rare a word is across the index."""
    cache.put_many(
        "configurations",
        [
            {"id": str(1000 + i), "organization-id": "2", "name": f"srv-{i}", "notes": "spare"}
            for i in range(n)
        ],
    )


def test_every_word_must_match_and_name_matches_rank_first(cache: MetadataCache) -> None:
    _fill(cache)
    _filler(cache)
    # both words in the record: the NAS (notes) and DC01-Frog (name + notes), not DC01
    assert [h.id for h in cache.search("dc01 backup")] == ["12", "11"]
    # a name match before a mention in the notes
    assert [h.id for h in cache.search("dc01")][-1] == "11"
    assert {h.id for h in cache.search("dc01")[:2]} == {"10", "12"}
    # an identifying field (the contact's title) before notes
    assert cache.search("backup")[0].kind == "contacts"
    ranked = cache.search("acme")
    assert ranked[0].kind == "organizations" and ranked[0].name == "Acme Dental"
    assert len(cache.search("spare", limit=5)) == 5


def test_serials_hostnames_ips_emails_and_prefixes(cache: MetadataCache) -> None:
    _fill(cache)
    assert [h.id for h in cache.search("10.0.0.5")] == ["10"]
    assert [h.id for h in cache.search("SN-4711")] == ["10"]
    assert [h.id for h in cache.search("sn-47")] == ["10"]  # prefix of the last token
    assert [h.id for h in cache.search("nas.acme.local")] == ["11"]
    assert [h.id for h in cache.search("ada@acme.test")] == ["20"]
    assert [h.id for h in cache.search("lovel")] == ["20"]
    assert [h.id for h in cache.search('"backup repository"')] == ["11"]
    assert cache.search('"repository backup"') == []


def test_results_say_what_and_where(cache: MetadataCache) -> None:
    _fill(cache)
    (hit,) = cache.search("veeam")
    assert (hit.kind, hit.id, hit.name) == ("configurations", "11", "NAS")
    assert (hit.organization_id, hit.organization) == ("1", "Acme Dental")
    assert "[Veeam]" in hit.snippet
    assert [h.id for h in cache.search("backup", kinds=["contacts"])] == ["20"]
    assert {h.id for h in cache.search("backup", organization_id="2")} == {"12"}
    assert cache.search("backup", kinds=[]) == []
    with pytest.raises(ValueError, match="not searched"):
        cache.search("x", kinds=["manufacturers"])


def test_the_index_follows_every_write(cache: MetadataCache) -> None:
    _fill(cache)
    cache.put("configurations", {"id": "10", "organization-id": "1", "name": "DC02"})
    assert cache.search("sn-4711") == []  # the update replaced the indexed text
    assert [h.id for h in cache.search("dc02")] == ["10"]
    cache.invalidate("configurations", "11")
    assert cache.search("veeam") == []
    cache.refresh("organizations", [{"id": "2", "name": "Happy Frog"}])  # Acme is gone
    assert cache.search("acme dental") == []
    # a delivered document: its name, then its text
    cache.record_document("30", sha256="a" * 64, size=1, organization_id="2", name="Scan 4")
    assert cache.index_document_text("30", "Tape rotation schedule for the Frog office")
    (doc,) = cache.search("rotation")
    assert (doc.kind, doc.id, doc.organization) == ("documents", "30", "Happy Frog")
    # text stored before the document is cached is indexed when it arrives
    assert not cache.index_document_text("31", "quarterly firewall review")
    cache.record_document("31", sha256="b" * 64, size=1, organization_id="2", name="Review")
    assert [h.id for h in cache.search("firewall")] == ["31"]


def test_queries_are_words_never_fts_syntax(cache: MetadataCache) -> None:
    _fill(cache)
    for hostile in ('"', "*", "NEAR(", "a OR", "-", "dc01 AND", "name:x", "^", "'; DROP"):
        cache.search(hostile)  # no FTS5 syntax error reaches the caller
    assert cache.search("   ") == [] and cache.search("--") == []
    assert fts_query('dc01 "back up"') == '"dc01"* AND "back up"'


def test_migration_from_v2_indexes_what_was_cached(db_path: Path) -> None:
    conn = connect(db_path)
    try:
        migrate(conn, "cache", MIGRATIONS[:2])  # the schema before search
        conn.execute(
            "INSERT INTO configurations(id, organization_id, name, name_key, data, cached_at)"
            " VALUES('7', '1', 'FW-01', 'fw-01', '{\"serial-number\": \"XYZ-99\"}', 0)"
        )
        conn.execute(
            "INSERT INTO organizations(id, name, name_key, data, cached_at)"
            " VALUES('1', 'Old Org', 'old org', '{}', 0)"
        )
    finally:
        conn.close()
    with MetadataCache(db_path) as cache:
        (hit,) = cache.search("xyz-99")
        assert (hit.id, hit.name, hit.organization) == ("7", "FW-01", "Old Org")
        assert cache.get_statistics()["search_entries"] == 2


def test_cache_search_command(cache: MetadataCache, state_config: Path) -> None:
    _fill(cache)
    config = state_config
    runner = CliRunner()
    out = runner.invoke(cache_command, ["search", "-c", str(config), "dc01 backup"])
    assert out.exit_code == 0, out.output
    assert out.output.splitlines()[0] == "configuration 12: DC01-Frog (Happy Frog)"
    out = runner.invoke(
        cache_command, ["search", "-c", str(config), "backup", "--organization", "acme dental"]
    )
    assert out.exit_code == 0 and "Happy Frog" not in out.output
    out = runner.invoke(cache_command, ["search", "-c", str(config), "backup", "--json"])
    assert out.exit_code == 0 and '"kind": "contacts"' in out.output
    out = runner.invoke(cache_command, ["search", "-c", str(config), "zzz"])
    assert out.exit_code == 0 and out.output == "nothing found\n"
    out = runner.invoke(cache_command, ["search", "-c", str(config), "dc01", "--limit", "1"])
    assert out.output.splitlines()[-1] == "1 of 3 matches; --limit shows more"
    _many_notes(cache)
    out = runner.invoke(cache_command, ["search", "-c", str(config), "backup"])
    assert out.exit_code == 0
    assert out.output.splitlines()[-1].startswith(
        f"first 20 of at least {CANDIDATES + 1} matches, names and identifying fields first"
    )
    out = runner.invoke(cache_command, ["search", "-c", str(config), "x", "--organization", "No"])
    assert out.exit_code != 0 and "no cached organization" in out.output


def _many_notes(cache: MetadataCache, n: int = CANDIDATES + 20) -> None:
    """More notes-only matches of "backup" than search ranks, all cached after the
    records the word names or identifies (so none of those is among the most recent)."""
    cache.put_many(
        "configurations",
        [
            {"id": str(5000 + i), "organization-id": "2", "name": f"ws-{i}", "notes": "backup"}
            for i in range(n)
        ],
    )


def test_a_query_matching_too_many_ranks_names_then_fields_and_says_it_was_capped(
    cache: MetadataCache,
) -> None:
    cache.put_many(
        "configurations",
        [
            {"id": "1", "organization-id": "1", "name": "Backup appliance 2"},
            {"id": "2", "organization-id": "1", "name": "fs01", "hostname": "backup.acme.local"},
            {"id": "3", "organization-id": "2", "name": "Backup"},
        ],
    )
    _many_notes(cache)
    hits = cache.search("backup", limit=5)
    # the exact name first, then the longer name, then the hostname, then notes
    assert [h.id for h in hits] == ["3", "1", "2", "5319", "5318"]
    assert not hits.complete and hits.total > CANDIDATES
    assert "[backup].acme.local" in hits[2].snippet
    # the filters hold in every tier
    assert [h.id for h in cache.search("backup", organization_id="1", limit=3)] == ["1", "2"]
    assert {h.kind for h in cache.search("backup", kinds=["contacts"])} == set()
    # a prefix ("back") and whole words take the same way
    assert [h.id for h in cache.search("back", limit=3)] == ["3", "1", "2"]


def test_a_query_ranked_in_full_says_how_many_matched(cache: MetadataCache) -> None:
    _fill(cache)
    _filler(cache, 30)
    hits = cache.search("spare", limit=5)
    assert (len(hits), hits.total, hits.complete) == (5, 30, True)
    assert cache.search("zzz").total == 0


def test_words_become_prefixes_except_one_character_and_ipv4_addresses() -> None:
    assert fts_query("sn-47 Müll") == '"sn-47"* AND "Müll"*'
    assert fts_query("s 10.0.0.12") == '"s" AND "10.0.0.12"'
    assert fts_query("10.0.0") == '"10.0.0"'  # its last part is one character
    assert fts_query("10.0.12") == '"10.0.12"*'  # the start of a subnet
    assert fts_query("dc01 backup", prefix=False) == '"dc01" AND "backup"'
    # the same on PostgreSQL: a term of several words is a phrase, words folded as indexed
    assert tsquery("sn-47 Müll") == "('sn' <-> '47':*) & 'mull':*"
    assert tsquery("s 10.0.0.12") == "'s' & ('10' <-> '0' <-> '0' <-> '12')"
    assert tsquery("10.0.12") == "('10' <-> '0' <-> '12':*)"
    assert tsquery('"dc01 backup" it\'s', prefix=False) == "('dc01' <-> 'backup') & ('it' <-> 's')"
    assert tsquery("-- !!") is None


def test_migration_from_v3_indexes_names_and_fields_again(db_path: Path) -> None:
    conn = connect(db_path)
    try:
        migrate(conn, "cache", MIGRATIONS[:3])  # search before its index of names and fields
        conn.executemany(
            "INSERT INTO configurations(id, organization_id, name, name_key, data, cached_at)"
            " VALUES(?, '1', ?, ?, ?, 0)",
            [("1", "Backup", "backup", "{}")]
            + [
                (str(10 + i), f"ws-{i}", f"ws-{i}", '{"notes": "backup"}')
                for i in range(CANDIDATES + 5)
            ],
        )
    finally:
        conn.close()
    with MetadataCache(db_path) as cache:
        hits = cache.search("backup", limit=2)
        assert [h.id for h in hits] == ["1", str(10 + CANDIDATES + 4)] and not hits.complete
        cache.put("configurations", {"id": "1", "organization-id": "1", "name": "Restore"})
        assert "1" not in {h.id for h in cache.search("backup", limit=400)}
