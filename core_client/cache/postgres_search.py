"""Full-text search of the cache on PostgreSQL: ``search_index``'s two tsvectors.

``document`` (name, identifying fields, notes, body) and ``keys`` (name and identifying
fields), each under a GIN index, play FTS5's ``search_index`` and ``search_keys``; rows
are numbered by ``seq`` (renumbered on every change, like FTS5's rowids by the
triggers), so "most recently cached first" is ``ORDER BY seq DESC``. The order of the
results is computed by :mod:`.search`, the same on both backends. Queries are built of
the words of the user's terms only (letters and digits, folded as the index folds
them): no tsquery syntax of the user's reaches PostgreSQL.
"""

# ruff: noqa: S608  -- only placeholders and this module's fixed text are added to the SQL

from __future__ import annotations

import re
import unicodedata
from typing import Any

from core_client.database import Connection

from .search import prefixed_terms

_LEXEME = re.compile(r"[^\W_]+")  # the index's words: runs of letters and digits
_QUOTED = re.compile(r"'([^']*)'(:\*)?")


def _fold(text: str) -> str:
    """Case and diacritics folded, as the index's generated columns fold them."""
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    return "".join(c for c in decomposed if not unicodedata.combining(c))


def tsquery(text: str, *, prefix: bool = True) -> str | None:
    """``to_tsquery('simple', ...)`` text: every term must match; a term of several
    words is a phrase (``<->``), as FTS5 reads "10.0.0.5" or "dc01.acme"; a prefix
    term's last word matches as a prefix. None when nothing searchable is left."""
    parts: list[str] = []
    for term, star in prefixed_terms(text, prefix=prefix):
        lexemes = [f"'{w}'" for w in _LEXEME.findall(_fold(term))]
        if not lexemes:
            continue
        if star:
            lexemes[-1] += ":*"
        parts.append(lexemes[0] if len(lexemes) == 1 else "(" + " <-> ".join(lexemes) + ")")
    return " & ".join(parts) if parts else None


class Tsvector:
    """:class:`~.search.SearchIndex` on PostgreSQL."""

    def __init__(self, conn: Connection, where: str, filters: list[object]) -> None:
        self.conn, self.where, self.filters = conn, where, filters
        # the names and fields of the rows read so far: the ranking asks for them next,
        # and a round trip to the server costs more than reading them along
        self._keys: dict[int, tuple[str, str]] = {}

    def match(self, text: str, *, prefix: bool) -> str | None:
        return tsquery(text, prefix=prefix)

    def name_only(self, match: str) -> str:
        # weight A is the name (B: identifying fields)
        return _QUOTED.sub(lambda m: f"'{m[1]}':{'*' if m[2] else ''}A", match)

    def rows(self, keys: bool, match: str, n: int) -> list[int]:
        column = "keys" if keys else "document"
        matches = (
            f"SELECT seq, name, fields FROM search_index WHERE {column} @@"
            f" to_tsquery('simple', ?){self.where}"
        )
        if "':" in match:
            # The planner's estimate of a prefix (':*') or a weight (':A') is a guess,
            # and a guess of "many" makes it walk back through every row for the newest
            # matches: for a word whose matches are few or old that is the whole table.
            # These are read from the GIN index whole, then the newest kept.
            sql = f"WITH found AS MATERIALIZED ({matches}) SELECT * FROM found"
        else:  # a whole word's frequency is in the statistics: the planner chooses well
            sql = matches
        rows = self.conn.execute(
            f"{sql} ORDER BY seq DESC LIMIT ?", [match, *self.filters, n]
        ).fetchall()
        self._keys.update((seq, (name, fields)) for seq, name, fields in rows)
        return [seq for seq, _, _ in rows]

    def names_and_fields(self, ids: list[int]) -> dict[int, tuple[str, str]]:
        missing = [i for i in ids if i not in self._keys]
        if missing:
            self._keys.update(
                (seq, (name, fields))
                for seq, name, fields in self.conn.execute(
                    "SELECT seq, name, fields FROM search_index WHERE seq = ANY(?)", [missing]
                ).fetchall()
            )
        return {i: self._keys[i] for i in ids if i in self._keys}

    def found(self, ids: list[int]) -> dict[int, tuple[Any, ...]]:
        return {
            row[0]: tuple(row[1:])
            for row in self.conn.execute(
                "SELECT s.seq, s.kind, s.record_id, s.name, s.organization_id, o.name,"
                " s.fields, s.notes, s.body FROM search_index AS s LEFT JOIN organizations"
                " AS o ON o.id = s.organization_id WHERE s.seq = ANY(?)",
                [ids],
            ).fetchall()
        }
