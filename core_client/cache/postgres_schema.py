"""The metadata cache's tables on PostgreSQL: the SQLite schema (``schema.py``) in
PostgreSQL's types, version for version.

Timestamps are ``DOUBLE PRECISION`` (``REAL`` is float4 there), sizes ``BIGINT``; the
record attributes stay JSON text, read the same way on both backends. Full-text search
is a plain ``search_index`` table kept current by triggers (as FTS5's is on SQLite),
with two generated ``tsvector`` columns under GIN indexes: ``document`` (name,
identifying fields, notes, body: weights A-D) and ``keys`` (name and identifying fields
only: the matches ranked first, and cheap to find when a word is common in notes and
document texts but rare in names). Text is folded and
split the way FTS5's ``unicode61 remove_diacritics 2`` tokenizer does (case and
diacritics folded, every run of letters and digits a word: the database must be UTF-8,
as ``normalize()`` requires), so a hostname, an IP address or an e-mail address is found
by any of its parts on both backends.
``cache_stage`` (UNLOGGED: nothing to recover after a crash) stages full refreshes.
"""

# ruff: noqa: S608  -- SQL built from this module's fixed table and attribute names

from __future__ import annotations

from .records import NAMED_KINDS

# what full-text search reads of each kind, as SQLite's ``schema.SEARCHED`` does:
# (organization column, identifying columns, identifying attributes, notes attributes)
SEARCH_FIELDS: dict[str, tuple[str, tuple[str, ...], tuple[str, ...], tuple[str, ...]]] = {
    "organizations": ("id", (), ("short-name",), ("description", "quick-notes")),
    "configurations": (
        "organization_id",
        (),
        (
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
        ("notes", "operating-system-notes"),
    ),
    "contacts": (
        "organization_id",
        ("email",),
        ("title", "contact-type-name", "location-name"),
        ("notes",),
    ),
    "documents": ("organization_id", (), (), ()),
    "locations": (
        "organization_id",
        (),
        ("address-1", "address-2", "city", "postal-code", "region-name", "country-name"),
        ("notes",),
    ),
}


BODY_CHARS = 300_000  # a tsvector holds at most 1 MB: the indexed start of a document's text

_V1 = """
CREATE TABLE organizations (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    name_key TEXT NOT NULL,
    data TEXT NOT NULL,
    cached_at DOUBLE PRECISION NOT NULL
);
CREATE INDEX organizations_name ON organizations(name_key);

CREATE TABLE configurations (
    id TEXT PRIMARY KEY,
    organization_id TEXT,
    name TEXT NOT NULL,
    name_key TEXT NOT NULL,
    data TEXT NOT NULL,
    cached_at DOUBLE PRECISION NOT NULL
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
    cached_at DOUBLE PRECISION NOT NULL
);
CREATE INDEX contacts_name ON contacts(name_key, organization_id);
CREATE INDEX contacts_email ON contacts(email);

CREATE TABLE documents (
    id TEXT PRIMARY KEY,
    organization_id TEXT,
    name TEXT NOT NULL,
    name_key TEXT NOT NULL,
    sha256 TEXT,
    size BIGINT,
    attachment_ids TEXT NOT NULL DEFAULT '[]',
    data TEXT NOT NULL,
    cached_at DOUBLE PRECISION NOT NULL,
    recorded_at DOUBLE PRECISION
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
    cached_at DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (source_type, source_id, target_type, target_id)
);
CREATE INDEX relationships_target ON relationships(target_type, target_id);

CREATE TABLE cache_metadata (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL,
    updated_at DOUBLE PRECISION NOT NULL
);

CREATE UNLOGGED TABLE cache_stage (
    stage TEXT NOT NULL,
    id TEXT NOT NULL,
    c1 TEXT,
    c2 TEXT,
    c3 TEXT,
    c4 TEXT,
    data TEXT NOT NULL,
    staged_at DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (stage, id)
);
CREATE INDEX cache_stage_age ON cache_stage(staged_at)
"""


def _named_table(name: str, scope: str | None) -> str:
    scope_column = f"    {scope} TEXT,\n" if scope else ""
    index_columns = f"name_key, {scope}" if scope else "name_key"
    return (
        f"CREATE TABLE {name} (\n    id TEXT PRIMARY KEY,\n{scope_column}"
        "    name TEXT NOT NULL,\n    name_key TEXT NOT NULL,\n    data TEXT NOT NULL,\n"
        f"    cached_at DOUBLE PRECISION NOT NULL\n);\n"
        f"CREATE INDEX {name}_name ON {name}({index_columns})"
    )


# v2: the tables names are resolved in
_V2 = ";\n".join(_named_table(k.name, k.scope) for k in NAMED_KINDS)


def _joined(*keys: str) -> str:
    """Attributes of the row's JSON as one space-separated text (absent ones left out)."""
    parts = " || ".join(f"coalesce(' ' || (d ->> '{key}'), '')" for key in keys)
    return f"ltrim({parts})"


def _words(column: str) -> str:
    """``column`` as FTS5's tokenizer sees it: lower case, diacritics removed (NFD, then
    the combining marks dropped), every run of letters and digits a word."""
    folded = f"regexp_replace(normalize(lower({column}), NFD), '[\\u0300-\\u036f]+', '', 'g')"
    return f"to_tsvector('simple', regexp_replace({folded}, '[^[:alnum:]]+', ' ', 'g'))"


def _search_function(table: str) -> str:
    org, columns, keys, notes = SEARCH_FIELDS[table]
    parts = [*(f"coalesce(NEW.{c}, '')" for c in columns), *([_joined(*keys)] if keys else [])]
    fields_sql = f"ltrim({' || chr(32) || '.join(parts)})" if parts else "''"
    notes_sql = _joined(*notes) if notes else "''"
    body = (
        "coalesce((SELECT text FROM document_text WHERE document_id = NEW.id), '')"
        if table == "documents"
        else "''"
    )
    cleanup = (
        " DELETE FROM document_text WHERE document_id = OLD.id;" if table == "documents" else ""
    )
    return (
        f"CREATE FUNCTION cache_search_{table}() RETURNS trigger LANGUAGE plpgsql AS $$\n"
        "DECLARE d jsonb;\n"
        "BEGIN\n"
        "  IF TG_OP <> 'INSERT' THEN\n"
        f"    DELETE FROM search_index WHERE kind = '{table}' AND record_id = OLD.id;\n"
        "  END IF;\n"
        f"  IF TG_OP = 'DELETE' THEN{cleanup} RETURN NULL; END IF;\n"
        "  d := NEW.data::jsonb;\n"
        "  INSERT INTO search_index(kind, record_id, organization_id, name, fields, notes, body)"
        f" VALUES ('{table}', NEW.id, NEW.{org}, NEW.name, {fields_sql}, {notes_sql},"
        f" {body});\n"
        "  RETURN NULL;\n"
        "END $$;\n"
        f"CREATE TRIGGER {table}_search AFTER INSERT OR UPDATE OR DELETE ON {table}"
        f" FOR EACH ROW EXECUTE FUNCTION cache_search_{table}()"
    )


# v3: full-text search over the searched kinds, kept current by triggers, and the
# extracted text of delivered documents; existing rows are indexed by the migration
_V3 = ";\n".join(
    (
        "CREATE TABLE document_text (document_id TEXT PRIMARY KEY, text TEXT NOT NULL,"
        " indexed_at DOUBLE PRECISION NOT NULL)",
        "CREATE TABLE search_index (\n"
        "    seq BIGSERIAL UNIQUE,\n"
        "    kind TEXT NOT NULL,\n"
        "    record_id TEXT NOT NULL,\n"
        "    organization_id TEXT,\n"
        "    name TEXT NOT NULL DEFAULT '',\n"
        "    fields TEXT NOT NULL DEFAULT '',\n"
        "    notes TEXT NOT NULL DEFAULT '',\n"
        "    body TEXT NOT NULL DEFAULT '',\n"
        "    keys tsvector GENERATED ALWAYS AS (\n"
        f"        setweight({_words('name')}, 'A') || setweight({_words('fields')}, 'B')\n"
        "    ) STORED,\n"
        "    document tsvector GENERATED ALWAYS AS (\n"
        f"        setweight({_words('name')}, 'A') || setweight({_words('fields')}, 'B')\n"
        f"        || setweight({_words('notes')}, 'C')\n"
        f"        || setweight({_words(f'left(body, {BODY_CHARS})')}, 'D')\n"
        "    ) STORED,\n"
        "    PRIMARY KEY (kind, record_id)\n"
        ")",
        "CREATE INDEX search_index_document ON search_index USING GIN (document)",
        "CREATE INDEX search_index_keys ON search_index USING GIN (keys)",
        *(_search_function(t) for t in SEARCH_FIELDS),
        *(f"UPDATE {t} SET name = name" for t in SEARCH_FIELDS),
    )
)

# v4 (SQLite: the FTS5 index of names and identifying fields) is the ``keys`` column of v3
_V4 = "SELECT 1"

POSTGRES_MIGRATIONS: list[str] = [_V1, _V2, _V3, _V4]

# every table of the cache (what ``cache stats`` sizes and ``cache vacuum`` vacuums)
CACHE_TABLES: tuple[str, ...] = (
    "organizations",
    "configurations",
    "contacts",
    "documents",
    "relationships",
    "cache_metadata",
    "cache_stage",
    *(k.name for k in NAMED_KINDS),
    "document_text",
    "search_index",
)
