"""The metadata cache's tables, as ``migrate(conn, "cache", MIGRATIONS)`` scripts.

They live in the instance database next to the ledger's tables (component ``ledger``);
each component versions its own schema. Append new migrations, never edit old ones.

Every cached record keeps the attributes the API returned as JSON (``data``: kebab-case
keys, unknown ones included) plus the few columns lookups need, indexed. Names are
matched through ``name_key`` (Unicode case folding, see ``records.name_key``) rather
than ``COLLATE NOCASE``, which only folds ASCII: "ÄRZTE GmbH" must find "Ärzte GmbH".
``migrate`` splits a script into complete statements (a trigger body stays whole).
"""

# ruff: noqa: S608  -- SQL built from this module's fixed table and attribute names

from __future__ import annotations

COMPONENT = "cache"

_V1 = """
CREATE TABLE organizations (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    name_key TEXT NOT NULL,
    data TEXT NOT NULL,
    cached_at REAL NOT NULL
);
CREATE INDEX organizations_name ON organizations(name_key);

CREATE TABLE configurations (
    id TEXT PRIMARY KEY,
    organization_id TEXT,
    name TEXT NOT NULL,
    name_key TEXT NOT NULL,
    data TEXT NOT NULL,
    cached_at REAL NOT NULL
);
CREATE INDEX configurations_name ON configurations(name_key, organization_id);
CREATE INDEX configurations_org ON configurations(organization_id);

CREATE TABLE contacts (
    id TEXT PRIMARY KEY,
    organization_id TEXT,
    name TEXT NOT NULL,
    name_key TEXT NOT NULL,
    email TEXT,
    data TEXT NOT NULL,
    cached_at REAL NOT NULL
);
CREATE INDEX contacts_name ON contacts(name_key, organization_id);
CREATE INDEX contacts_email ON contacts(email);

CREATE TABLE documents (
    id TEXT PRIMARY KEY,
    organization_id TEXT,
    name TEXT NOT NULL,
    name_key TEXT NOT NULL,
    sha256 TEXT,
    size INTEGER,
    attachment_ids TEXT NOT NULL DEFAULT '[]',
    data TEXT NOT NULL,
    cached_at REAL NOT NULL,
    recorded_at REAL
);
CREATE INDEX documents_hash ON documents(sha256, organization_id);
CREATE INDEX documents_name ON documents(name_key, organization_id);
CREATE INDEX documents_org ON documents(organization_id);

CREATE TABLE relationships (
    source_type TEXT NOT NULL,
    source_id TEXT NOT NULL,
    target_type TEXT NOT NULL,
    target_id TEXT NOT NULL,
    data TEXT NOT NULL DEFAULT '{}',
    cached_at REAL NOT NULL,
    PRIMARY KEY (source_type, source_id, target_type, target_id)
);
CREATE INDEX relationships_target ON relationships(target_type, target_id);

CREATE TABLE cache_metadata (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL,
    updated_at REAL NOT NULL
)
"""


def _named_table(name: str, scope: str | None = None) -> str:
    scope_column = f"    {scope} TEXT,\n" if scope else ""
    index_columns = f"name_key, {scope}" if scope else "name_key"
    return (
        f"CREATE TABLE {name} (\n    id TEXT PRIMARY KEY,\n{scope_column}"
        "    name TEXT NOT NULL,\n    name_key TEXT NOT NULL,\n    data TEXT NOT NULL,\n"
        f"    cached_at REAL NOT NULL\n);\nCREATE INDEX {name}_name ON {name}({index_columns})"
    )


# v2: the tables names are resolved in (a frozen list: a later kind is a v3)
_V2 = ";\n".join(
    _named_table(name, scope)
    for name, scope in (
        ("organization_types", None),
        ("organization_statuses", None),
        ("configuration_types", None),
        ("configuration_statuses", None),
        ("contact_types", None),
        ("manufacturers", None),
        ("models", "manufacturer_id"),
        ("platforms", None),
        ("operating_systems", "platform_id"),
        ("password_categories", None),
        ("countries", None),
        ("regions", "country_id"),
        ("locations", "organization_id"),
    )
)


def _joined(*keys: str) -> str:
    """Attributes of the row's JSON as one space-separated text (absent ones left out)."""
    parts = " || ".join(
        f"coalesce(' ' || json_extract(new.data, '$.\"{key}\"'), '')" for key in keys
    )
    return f"ltrim({parts})"


# what full-text search reads of each kind: (code, org column, identifying fields, notes);
# the code makes the index row id: source rowid * 8 + code (upserts keep the rowid)
SEARCHED: dict[str, tuple[int, str, str, str]] = {
    "organizations": (1, "new.id", _joined("short-name"), _joined("description", "quick-notes")),
    "configurations": (
        2,
        "new.organization_id",
        _joined(
            "hostname",
            "serial-number",
            "primary-ip",
            "mac-address",
            "asset-tag",
            "configuration-type-name",
            "operating-system-name",
            "manufacturer-name",
            "model-name",
            "location-name",
        ),
        _joined("notes", "operating-system-notes"),
    ),
    "contacts": (
        3,
        "new.organization_id",
        "ltrim(coalesce(new.email, '') || ' ' || "
        + _joined("title", "contact-type-name", "location-name")
        + ")",
        _joined("notes"),
    ),
    "documents": (4, "new.organization_id", "''", "''"),
    "locations": (
        5,
        "new.organization_id",
        _joined("address-1", "address-2", "city", "postal-code", "region-name", "country-name"),
        _joined("notes"),
    ),
}


def _search_triggers(table: str) -> str:
    code, org, fields, notes = SEARCHED[table]
    body = (
        "(SELECT text FROM document_text WHERE document_id = new.id)"
        if table == "documents"
        else "''"
    )
    insert = (
        "INSERT INTO search_index(rowid, kind, record_id, organization_id, name, fields,"
        f" notes, body) VALUES (new.rowid * 8 + {code}, '{table}', new.id, {org}, new.name,"
        f" {fields}, {notes}, coalesce({body}, ''))"
    )
    delete = f"DELETE FROM search_index WHERE rowid = old.rowid * 8 + {code}"
    cleanup = (
        " DELETE FROM document_text WHERE document_id = old.id;" if table == "documents" else ""
    )
    return (
        f"CREATE TRIGGER {table}_search_insert AFTER INSERT ON {table} BEGIN {insert}; END;\n"
        f"CREATE TRIGGER {table}_search_update AFTER UPDATE ON {table} BEGIN {delete};"
        f" {insert}; END;\n"
        f"CREATE TRIGGER {table}_search_delete AFTER DELETE ON {table} BEGIN {delete};{cleanup}"
        " END"
    )


# v3: full-text search (FTS5) over the searched kinds, kept current by triggers, and the
# extracted text of delivered documents; existing rows are indexed by the migration
_V3 = ";\n".join(
    (
        "CREATE TABLE document_text (document_id TEXT PRIMARY KEY, text TEXT NOT NULL,"
        " indexed_at REAL NOT NULL)",
        "CREATE VIRTUAL TABLE search_index USING fts5(kind UNINDEXED, record_id UNINDEXED,"
        " organization_id UNINDEXED, name, fields, notes, body,"
        " tokenize = 'unicode61 remove_diacritics 2')",
        *(_search_triggers(t) for t in SEARCHED),
        *(f"UPDATE {t} SET name = name" for t in SEARCHED),
    )
)


def _key_triggers(table: str) -> str:
    code, org, fields, _ = SEARCHED[table]
    insert = (
        "INSERT INTO search_keys(rowid, kind, organization_id, name, fields) VALUES"
        f" (new.rowid * 8 + {code}, '{table}', {org}, new.name, {fields})"
    )
    delete = f"DELETE FROM search_keys WHERE rowid = old.rowid * 8 + {code}"
    return (
        f"CREATE TRIGGER {table}_keys_insert AFTER INSERT ON {table} BEGIN {insert}; END;\n"
        f"CREATE TRIGGER {table}_keys_update AFTER UPDATE ON {table} BEGIN {delete};"
        f" {insert}; END;\n"
        f"CREATE TRIGGER {table}_keys_delete AFTER DELETE ON {table} BEGIN {delete}; END"
    )


# v4: the names and identifying fields again, in an index of their own (same rowids).
# A query matching too many records to rank them all ranks these first: a word common
# in notes and document texts is rarer here, so ranking its matches costs little.
_V4 = ";\n".join(
    (
        "CREATE VIRTUAL TABLE search_keys USING fts5(kind UNINDEXED, organization_id"
        " UNINDEXED, name, fields, tokenize = 'unicode61 remove_diacritics 2')",
        *(_key_triggers(t) for t in SEARCHED),
        "INSERT INTO search_keys(rowid, kind, organization_id, name, fields)"
        " SELECT rowid, kind, organization_id, name, fields FROM search_index",
    )
)

MIGRATIONS: list[str] = [_V1, _V2, _V3, _V4]
