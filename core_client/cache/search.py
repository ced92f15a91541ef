"""Full-text search of the cache: what a technician reaches for when IT Glue is slow or down.

An FTS5 index (schema v3) over organizations, configurations, contacts, locations and
documents: names, the identifying fields (hostname, serial number, IPs, MAC, e-mail,
type names), notes, and the text of documents the pipeline delivered. Triggers keep it
current on every write, so a refresh or a write-through needs no extra step. Results
are ranked with bm25, a name match weighing most.
"""

# ruff: noqa: S608  -- only placeholders are added to the SQL; values are bound

from __future__ import annotations

import re
import sqlite3
import time
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from typing import NamedTuple

from .base import CacheBase
from .records import kind
from .schema import SEARCHED

DEFAULT_LIMIT = 20
CANDIDATES = 300  # a query matching more is ranked in tiers (see _Ranker.tiered) ...
TIER = 100  # ... of this many candidates each
MAX_TEXT_CHARS = 1_000_000  # the indexed text of one document (extraction caps lower)
# bm25 weights per column: kind, record_id, organization_id (not indexed), then
# name, fields, notes, body; in search_keys: kind, organization_id, name, fields
WEIGHTS = {
    "search_index": "0.0, 0.0, 0.0, 10.0, 5.0, 1.0, 1.0",
    "search_keys": "0.0, 0.0, 10.0, 5.0",
}
_TERM = re.compile(r'"([^"]*)"|(\S+)')
_WORD = re.compile(r"\w")
_WORD_RUN = re.compile(r"\w+")
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
    score: float  # bm25: lower is better


def query_terms(text: str) -> list[tuple[str, bool]]:
    """The searchable terms of a query: (text, quoted as a phrase)."""
    terms = [(phrase, True) if phrase else (word, False) for phrase, word in _TERM.findall(text)]
    return [(t, quoted) for t, quoted in terms if _WORD.search(t)]  # punctuation: nothing


def fts_query(text: str, *, prefix: bool = True) -> str | None:
    """The user's words as an FTS5 query: every word must match, as a prefix when its
    last part has two characters or more (one, as in "s" or "10.0.0.5", would match much
    of the index and say little); ``"quoted words"`` match as a phrase. None when nothing
    searchable is left. ``prefix=False``: every word whole."""
    parts: list[str] = []
    for term, quoted in query_terms(text):
        last = _WORD_RUN.findall(term)[-1]
        star = "*" if prefix and not quoted and len(last) > 1 else ""
        parts.append('"' + term.replace('"', '""') + '"' + star)
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
    ``complete``, else at least ``total`` (the query matched more than could be ranked,
    or the best tier filled ``limit`` before the others were counted)."""

    def __init__(self, hits: Iterable[SearchHit] = (), *, total: int = 0, complete: bool = True):
        super().__init__(hits)
        self.total = max(total, len(self))
        self.complete = complete


Rows = list[tuple[int, float]]  # (index rowid, bm25: lower is better)


class Ranking(NamedTuple):
    rows: Rows  # best first
    total: int  # matches: exactly when complete, else at least
    complete: bool


def _best_first(rows: Iterable[tuple[int, float]]) -> Rows:
    # stable: equal scores stay most recently cached first, as FTS5 returned them
    return sorted(rows, key=lambda row: row[1])


class _Ranker:
    """One search: cheap probes that bound the work, then bm25 over a bounded set.

    bm25 costs a pass over every match of each word (how rare it is: 2 ms for a word in
    a third of 100,000 records) and a little per row ranked; a prefix merges the lists
    of every word it starts before the first row. So a query is probed unranked first,
    whole words before prefixes, reading at most CANDIDATES + 1 rows (FTS5 stops there).
    """

    def __init__(self, conn: sqlite3.Connection, where: str, params: dict[str, object]) -> None:
        self.conn, self.where, self.params = conn, where, params

    def rows(self, table: str, match: str, n: int, *, scored: bool = True) -> Rows:
        """Up to ``n`` matches, most recently cached first (FTS5 stops reading there)."""
        score = f"bm25({table}, {WEIGHTS[table]})" if scored else "0.0"
        return self.conn.execute(
            f"SELECT rowid, {score} FROM {table} WHERE {table} MATCH :match{self.where}"
            " ORDER BY rowid DESC LIMIT :n",
            {**self.params, "match": match, "n": n},
        ).fetchall()

    def rank(self, prefixed: str, whole: str, *, words_only: bool, limit: int) -> Ranking:
        c = max(CANDIDATES, limit)
        # a phrase ("10.0.4.210", "dc01.acme.local") is selective but costs a position
        # check per record holding all its words: one statement, no probes
        if words_only:
            if len(self.rows("search_index", whole, c + 1, scored=False)) > c:
                return self.tiered(whole, c, limit)
            if (
                prefixed != whole
                and len(self.rows("search_index", prefixed, c + 1, scored=False)) > c
            ):
                return self.tiered(prefixed, c, limit)
        rows = self.rows("search_index", prefixed, c + 1)
        if len(rows) > c:
            return self.tiered(prefixed, c, limit)
        return Ranking(_best_first(rows), len(rows), complete=True)

    def tiered(self, match: str, c: int, limit: int) -> Ranking:
        """More than ``c`` matches: those in names and identifying fields first, then the
        others, each tier the ``tier`` most recently cached of its matches (the name
        matches first when the names and fields match more)."""
        t = max(TIER, limit)
        keys = self.rows("search_keys", match, t + 1)
        ranked = _best_first(keys[:t])
        if len(keys) > t:
            named = _best_first(self.rows("search_keys", f"{{name}} : ({match})", t))
            seen = {rowid for rowid, _ in named}
            ranked = named + [row for row in ranked if row[0] not in seen]
        elif len(ranked) < limit:
            seen = {rowid for rowid, _ in ranked}
            others = self.rows("search_index", match, t + len(seen))
            ranked += _best_first(row for row in others if row[0] not in seen)
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
        documents); ``organization_id``: only that organization's records. Up to
        :data:`CANDIDATES` matches are ranked by bm25 (a name weighing most); a query
        matching more ranks its name and identifying-field matches first and says so in
        the results' ``total`` and ``complete``.
        """
        terms = query_terms(query)
        prefixed, whole = fts_query(query), fts_query(query, prefix=False)
        if prefixed is None or whole is None or limit < 1:
            return SearchResults()
        where = ""
        params: dict[str, object] = {}
        if kinds is not None:
            names = [kind(k).name for k in kinds]
            if not names:
                return SearchResults()
            unknown = [n for n in names if n not in SEARCHED]
            if unknown:
                raise ValueError(
                    f"{', '.join(unknown)} are not searched (one of: {', '.join(SEARCHED)})"
                )
            where += f" AND kind IN ({', '.join(f':k{i}' for i in range(len(names)))})"
            params.update({f"k{i}": n for i, n in enumerate(names)})
        if organization_id is not None:
            where += " AND organization_id = :org"
            params["org"] = str(organization_id)
        conn = self._conn()
        words_only = all(len(_WORD_RUN.findall(t)) < 2 for t, _ in terms)
        ranked = _Ranker(conn, where, params).rank(
            prefixed, whole, words_only=words_only, limit=limit
        )
        # the rows kept, by rowid; snippets are cut here (FTS5's snippet() would read the
        # whole doclist of a common word again for every row)
        words = query_words(query)
        best = ranked.rows[:limit]
        rowids = ", ".join("?" * len(best))
        rows = {
            row[0]: row[1:]
            for row in conn.execute(
                "SELECT s.rowid, s.kind, s.record_id, s.name, s.organization_id, o.name,"
                " s.fields, s.notes, s.body FROM search_index AS s LEFT JOIN organizations"
                f" AS o ON o.id = s.organization_id WHERE s.rowid IN ({rowids})",
                [rowid for rowid, _ in best],
            )
        }
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
