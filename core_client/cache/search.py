"""Full-text search of the cache: what a technician reaches for when IT Glue is slow or down.

An FTS5 index (schema v3) over organizations, configurations, contacts, locations and
documents: names, the identifying fields (hostname, serial number, IPs, MAC, e-mail,
type names), notes, and the text of documents the pipeline delivered; a second one
(v4) over the names and identifying fields alone. Triggers keep both current on every
write; on PostgreSQL the two are ``tsvector`` columns of one table
(:mod:`.postgres_search`). Results are ordered here, the same on both backends, by where
the query matches: all in the name (the shortest name first), then in the name or
identifying fields, then anywhere. Up to CANDIDATES matches are ordered in full; a query
matching more reads a bounded set (see ``_Ranker.tiered``) and says so in
``SearchResults.complete``.
"""

# ruff: noqa: S608  -- only placeholders are added to the SQL; values are bound

from __future__ import annotations

import re
import time
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple, Protocol

from core_client.database import Connection

from .base import CacheBase
from .records import kind
from .schema import SEARCHED

DEFAULT_LIMIT = 20
CANDIDATES = 300  # a query matching more is ranked in tiers (see _Ranker.tiered) ...
TIER = 50  # ... of this many candidates each
MAX_TEXT_CHARS = 1_000_000  # the indexed text of one document (extraction caps lower)
_TERM = re.compile(r'"([^"]*)"|(\S+)')
_WORD = re.compile(r"\w")
_WORD_RUN = re.compile(r"\w+")
_IPV4 = re.compile(r"\d{1,3}(?:\.\d{1,3}){3}")
SNIPPET_WORDS = 12


@dataclass(frozen=True)
class SearchHit:
    """One record found: where it lives and why it matched (``snippet``, matches in [ ])."""

    kind: str
    id: str
    name: str
    organization_id: str | None
    organization: str | None
    snippet: str
    score: float  # lower is better: 0.x matched in the name, 1.x in fields, 2.x elsewhere


def query_terms(text: str) -> list[tuple[str, bool]]:
    """The searchable terms of a query: (text, quoted as a phrase)."""
    terms = [(phrase, True) if phrase else (word, False) for phrase, word in _TERM.findall(text)]
    return [(t, quoted) for t, quoted in terms if _WORD.search(t)]  # punctuation: nothing


def prefixed_terms(text: str, *, prefix: bool = True) -> list[tuple[str, bool]]:
    """The terms of a query and whether each matches as a prefix: when its last part
    has two characters or more (one, as in "s", would match much of the index and say
    little) and it is not a whole IPv4 address (whose "10" would be a prefix of every
    "10.x" in the index); ``"quoted words"`` match as a phrase, whole. ``prefix=False``:
    every word whole."""
    out: list[tuple[str, bool]] = []
    for term, quoted in query_terms(text):
        last = _WORD_RUN.findall(term)[-1]
        whole = quoted or len(last) < 2 or _IPV4.fullmatch(term) is not None
        out.append((term, prefix and not whole))
    return out


def fts_query(text: str, *, prefix: bool = True) -> str | None:
    """The user's words as an FTS5 query: every word must match (as a prefix, see
    :func:`prefixed_terms`); ``"quoted words"`` match as a phrase. None when nothing
    searchable is left."""
    parts = [
        '"' + term.replace('"', '""') + '"' + ("*" if star else "")
        for term, star in prefixed_terms(text, prefix=prefix)
    ]
    return " AND ".join(parts) if parts else None


def _fold(text: str) -> str:
    """Case and diacritics folded, as the index's tokenizer compares words."""
    if text.isascii():
        return text.lower()
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    return "".join(c for c in decomposed if not unicodedata.combining(c))


def query_words(text: str) -> list[str]:
    """The folded words of a query (what a snippet marks)."""
    return [_fold(w) for w in _WORD_RUN.findall(text)]


def snippet(columns: Iterable[str | None], words: list[str], width: int = SNIPPET_WORDS) -> str:
    """Up to ``width`` words of the first column where a query word matches (as a
    prefix), around the first match, matches in [ ]; … where text was left out."""
    if not words:
        return ""
    starts = re.compile("|".join(re.escape(w) for w in sorted(words, key=len, reverse=True)))
    for text in columns:
        if not text:
            continue
        folded = _fold(text)
        if not any(w in folded for w in words):
            continue
        tokens = list(_WORD_RUN.finditer(text))
        if text.isascii():  # folding kept the offsets
            marked = [starts.match(folded, t.start()) is not None for t in tokens]
        else:
            marked = [starts.match(_fold(t[0])) is not None for t in tokens]
        hit = next((i for i, m in enumerate(marked) if m), None)
        if hit is None:
            continue
        first = max(0, min(hit - width // 3, len(tokens) - width))
        last = min(len(tokens), first + width)
        hits = {i for i in range(first, last) if marked[i]}
        out, pos = [], tokens[first].start()
        for i in range(first, last):
            t = tokens[i]
            out.append(text[pos : t.start()])
            out.append(f"[{t[0]}]" if i in hits else t[0])
            pos = t.end()
        if last == len(tokens):
            out.append(text[pos:])
        return ("…" if first else "") + "".join(out).strip() + ("…" if last < len(tokens) else "")
    return ""


class SearchResults(list[SearchHit]):
    """The hits, best first, and how many records matched: ``total`` exactly when
    ``complete``, else at least ``total`` (more than CANDIDATES matched: they were
    ordered among a bounded set, see ``_Ranker.tiered``)."""

    def __init__(self, hits: Iterable[SearchHit] = (), *, total: int = 0, complete: bool = True):
        super().__init__(hits)
        self.total = max(total, len(self))
        self.complete = complete


Rows = list[tuple[int, float]]  # (index rowid, score: lower is better) best first


class Ranking(NamedTuple):
    rows: Rows
    total: int  # matches: exactly when complete, else at least
    complete: bool


class SearchIndex(Protocol):
    """The two indexes of one engine, as the ranking reads them. A ``match`` is the
    engine's query text (FTS5's, or a tsquery); ids are the index's row ids."""

    def match(self, text: str, *, prefix: bool) -> str | None: ...

    def name_only(self, match: str) -> str:
        """``match`` restricted to the name column."""
        ...

    def rows(self, keys: bool, match: str, n: int) -> list[int]:
        """Up to ``n`` matches of the index (``keys``: of names and identifying fields
        only), most recently cached first."""
        ...

    def names_and_fields(self, ids: list[int]) -> dict[int, tuple[str, str]]: ...

    def found(self, ids: list[int]) -> dict[int, tuple[Any, ...]]:
        """(kind, record id, name, organization id, organization name, fields, notes,
        body) of each row."""
        ...


def _in(values: Sequence[object]) -> str:
    return f"({', '.join('?' * len(values))})"


class _Fts5:
    """The FTS5 tables (schema v3 and v4): ``search_index`` and ``search_keys``."""

    def __init__(self, conn: Connection, where: str, filters: list[object]) -> None:
        self.conn, self.where, self.filters = conn, where, filters

    def match(self, text: str, *, prefix: bool) -> str | None:
        return fts_query(text, prefix=prefix)

    def name_only(self, match: str) -> str:
        return f"{{name}} : ({match})"

    def rows(self, keys: bool, match: str, n: int) -> list[int]:
        # FTS5 stops reading at the limit
        table = "search_keys" if keys else "search_index"
        return [
            rowid
            for (rowid,) in self.conn.execute(
                f"SELECT rowid FROM {table} WHERE {table} MATCH ?{self.where}"
                " ORDER BY rowid DESC LIMIT ?",
                [match, *self.filters, n],
            ).fetchall()
        ]

    def names_and_fields(self, ids: list[int]) -> dict[int, tuple[str, str]]:
        # from search_keys (short rows, found by rowid), not search_index (documents' text)
        return {
            rowid: (name, fields)
            for rowid, name, fields in self.conn.execute(
                f"SELECT rowid, name, fields FROM search_keys WHERE rowid IN {_in(ids)}", ids
            ).fetchall()
        }

    def found(self, ids: list[int]) -> dict[int, tuple[Any, ...]]:
        return {
            row[0]: tuple(row[1:])
            for row in self.conn.execute(
                "SELECT s.rowid, s.kind, s.record_id, s.name, s.organization_id, o.name,"
                " s.fields, s.notes, s.body FROM search_index AS s LEFT JOIN organizations"
                f" AS o ON o.id = s.organization_id WHERE s.rowid IN {_in(ids)}",
                ids,
            ).fetchall()
        }


class _Ranker:
    """One search: a bounded set of matches read unranked, then ordered by where the
    query matches them.

    Ranking every match with FTS5's bm25 costs 75 ms for a word in a third of 100,000
    records (bench), and bm25 on even a few rows pays a pass over every match of each
    word to weigh its rarity (merging a prefix's lists again). The order here needs only
    the names and identifying fields of the rows read, at most CANDIDATES + 1, where
    the index stops reading.
    """

    def __init__(self, index: SearchIndex, terms: list[str]) -> None:
        self.index = index
        # a term matches a column where one of its words starts with it
        self.terms = [re.compile(r"(?<!\w)" + re.escape(_fold(t))) for t in terms]

    def ranked(self, rowids: list[int]) -> Rows:
        """``rowids`` by score."""
        keys = self.index.names_and_fields(rowids) if rowids else {}
        scored = [(rowid, self.score(*keys.get(rowid, (None, None)))) for rowid in rowids]
        # stable: equal scores stay most recently cached first, as the index returned them
        return sorted(scored, key=lambda row: row[1])

    def score(self, name: str | None, fields: str | None) -> float:
        """0 when every term is in the name (+ a little per character of it: an exact
        name first), 1 when in the name or identifying fields, 2 when notes or text
        were needed; fewer terms outside the name rank higher within each."""
        name_folded = _fold(name or "")
        missing = [p for p in self.terms if not p.search(name_folded)]
        if not missing:
            return min(len(name_folded), 999) / 100_000
        fields_folded = _fold(fields or "")
        elsewhere = sum(1 for p in missing if not p.search(fields_folded))
        # the share of terms found outside the name orders within a tier (< 0.1)
        return (2 if elsewhere else 1) + (len(missing) + elsewhere) / (20 * len(self.terms))

    def rank(self, prefixed: str, whole: str, *, words_only: bool, limit: int) -> Ranking:
        c = max(CANDIDATES, limit)
        rows: list[int] = []
        # whole words first: FTS5 reads them lazily, where a prefix of a common word
        # ("backup"*) merges its whole list before the first row
        if words_only:
            rows = self.index.rows(False, whole, c + 1)
            if len(rows) > c:
                return self.tiered(whole, rows[:c], c, limit)
        if not words_only or prefixed != whole:
            rows = self.index.rows(False, prefixed, c + 1)
            if len(rows) > c:
                return self.tiered(prefixed, rows[:c], c, limit)
        return Ranking(self.ranked(rows), len(rows), complete=True)

    def tiered(self, match: str, recent: list[int], c: int, limit: int) -> Ranking:
        """More than ``c`` matches: the TIER most recently cached, and when fewer than
        ``limit`` of them match in a name (then in a name or identifying field), up to
        TIER more such matches from the index of names and fields."""
        ranked = self.ranked(recent[: max(TIER, limit)])
        for tier, query in ((1, self.index.name_only(match)), (2, match)):
            if sum(1 for _, score in ranked if score < tier) >= limit:
                break
            seen = {rowid for rowid, _ in ranked}
            more = [r for r in self.index.rows(True, query, max(TIER, limit)) if r not in seen]
            ranked = sorted(ranked + self.ranked(more), key=lambda row: row[1])
        return Ranking(ranked, max(c + 1, len(ranked)), complete=False)


class SearchMixin(CacheBase):
    """search, index_document_text."""

    def search(
        self,
        query: str,
        *,
        kinds: Iterable[str] | None = None,
        organization_id: str | int | None = None,
        limit: int = DEFAULT_LIMIT,
    ) -> SearchResults:
        """The cached records matching every word of ``query``, best first.

        ``kinds``: only these (organizations, configurations, contacts, locations,
        documents); ``organization_id``: only that organization's records. Every word
        in the name first (the shortest name first), then in the name or identifying
        fields, then anywhere. Up to CANDIDATES matches are ordered in full; a query
        matching more is ordered among a bounded set and says so (``complete`` False,
        ``total`` a lower bound).
        """
        terms = query_terms(query)
        if not terms or limit < 1:
            return SearchResults()
        where = ""
        filters: list[object] = []
        if kinds is not None:
            names = [kind(k).name for k in kinds]
            if not names:
                return SearchResults()
            unknown = [n for n in names if n not in SEARCHED]
            if unknown:
                raise ValueError(
                    f"{', '.join(unknown)} are not searched (one of: {', '.join(SEARCHED)})"
                )
            where += f" AND kind IN {_in(names)}"
            filters += names
        if organization_id is not None:
            where += " AND organization_id = ?"
            filters.append(str(organization_id))
        with self._read() as conn:
            index: SearchIndex
            if self.db.dialect == "postgresql":
                from .postgres_search import Tsvector

                index = Tsvector(conn, where, filters)
            else:
                index = _Fts5(conn, where, filters)
            prefixed = index.match(query, prefix=True)
            whole = index.match(query, prefix=False)
            if prefixed is None or whole is None:
                return SearchResults()
            words_only = all(len(_WORD_RUN.findall(t)) < 2 for t, _ in terms)
            ranked = _Ranker(index, [t for t, _ in terms]).rank(
                prefixed, whole, words_only=words_only, limit=limit
            )
            # the rows kept, by id; snippets are cut here (FTS5's snippet() would read the
            # whole doclist of a common word again for every row)
            best = ranked.rows[:limit]
            rows = index.found([rowid for rowid, _ in best]) if best else {}
        words = query_words(query)
        hits = [
            SearchHit(k, i, n or "", o, on, snippet((n, *texts), words), score)
            for (k, i, n, o, on, *texts), score in ((rows[r], s) for r, s in best if r in rows)
        ]
        return SearchResults(hits, total=ranked.total, complete=ranked.complete)

    def index_document_texts(self, texts: Iterable[tuple[str | int, str]]) -> int:
        """:meth:`index_document_text` for many (imports, backfills): one transaction
        per 500; returns how many documents were indexed now."""
        indexed = 0
        batch: list[tuple[str, str]] = []
        for document_id, text in texts:
            batch.append((str(document_id), text))
            if len(batch) >= 500:
                indexed += self._index_texts(batch)
                batch = []
        return indexed + (self._index_texts(batch) if batch else 0)

    def _index_texts(self, batch: list[tuple[str, str]]) -> int:
        now = time.time()
        with self._write() as conn:
            conn.executemany(
                "INSERT INTO document_text(document_id, text, indexed_at) VALUES(?, ?, ?)"
                " ON CONFLICT(document_id) DO UPDATE SET text=excluded.text,"
                " indexed_at=excluded.indexed_at",
                [(i, t[:MAX_TEXT_CHARS], now) for i, t in batch],
            )
            # the documents' update trigger re-indexes each row with its text
            return sum(
                conn.execute("UPDATE documents SET name = name WHERE id=?", (i,)).rowcount
                for i, _ in batch
            )

    def index_document_text(self, document_id: str | int, text: str) -> bool:
        """Make a delivered document findable by its content (the extracted text).

        Kept with the document and indexed now if it is cached (else when it is);
        True when it was. Text beyond 1,000,000 characters is not indexed.
        """
        return self._index_texts([(str(document_id), text)]) > 0
