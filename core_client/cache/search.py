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
import time
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass

from .base import CacheBase
from .records import kind
from .schema import SEARCHED

DEFAULT_LIMIT = 20
CANDIDATES = 300  # matches ranked at most (plus name matches) for an unselective query
MAX_TEXT_CHARS = 1_000_000  # the indexed text of one document (extraction caps lower)
# bm25 weights per column: kind, record_id, organization_id (not indexed), then
# name, fields, notes, body
WEIGHTS = "0.0, 0.0, 0.0, 10.0, 5.0, 1.0, 1.0"
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


def fts_query(text: str) -> str | None:
    """The user's words as an FTS5 query: every word must match (as a prefix);
    ``"quoted words"`` match as a phrase. None when nothing searchable is left."""
    parts: list[str] = []
    for phrase, word in _TERM.findall(text):
        term = phrase if phrase else word
        if not _WORD.search(term):
            continue  # punctuation alone matches nothing
        quoted = '"' + term.replace('"', '""') + '"'
        parts.append(quoted if phrase else quoted + "*")
    return " AND ".join(parts) if parts else None


def _fold(text: str) -> str:
    """Case and diacritics folded, as the index's tokenizer compares words."""
    if text.isascii():
        return text.lower()
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    return "".join(c for c in decomposed if not unicodedata.combining(c))


def _marked(token: str, words: list[str]) -> bool:
    folded = _fold(token)
    return any(folded.startswith(w) for w in words)


def query_words(text: str) -> list[str]:
    """The folded words of a query (what a snippet marks)."""
    return [_fold(w) for w in _WORD_RUN.findall(text)]


def snippet(columns: Iterable[str | None], words: list[str], width: int = SNIPPET_WORDS) -> str:
    """Up to ``width`` words of the first column where a query word matches (as a
    prefix), around the first match, matches in [ ]; … where text was left out."""
    for text in columns:
        if not text:
            continue
        folded = _fold(text)
        if not any(w in folded for w in words):
            continue
        tokens = list(_WORD_RUN.finditer(text))
        hit = next((i for i, t in enumerate(tokens) if _marked(t[0], words)), None)
        if hit is None:
            continue
        first = max(0, min(hit - width // 3, len(tokens) - width))
        last = min(len(tokens), first + width)
        hits = {i for i in range(first, last) if _marked(tokens[i][0], words)}
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


class SearchMixin(CacheBase):
    """search, index_document_text."""

    def search(
        self,
        query: str,
        *,
        kinds: Iterable[str] | None = None,
        organization_id: str | int | None = None,
        limit: int = DEFAULT_LIMIT,
    ) -> list[SearchHit]:
        """The cached records matching every word of ``query``, best first.

        ``kinds``: only these (organizations, configurations, contacts, locations,
        documents); ``organization_id``: only that organization's records.
        """
        match = fts_query(query)
        if match is None or limit < 1:
            return []
        where = "search_index MATCH ?"
        filters: list[object] = []
        if kinds is not None:
            names = [kind(k).name for k in kinds]
            if not names:
                return []
            unknown = [n for n in names if n not in SEARCHED]
            if unknown:
                raise ValueError(
                    f"{', '.join(unknown)} are not searched (one of: {', '.join(SEARCHED)})"
                )
            where += f" AND kind IN ({', '.join('?' * len(names))})"
            filters += names
        if organization_id is not None:
            where += " AND organization_id = ?"
            filters.append(str(organization_id))
        conn = self._conn()
        rank = (
            f"SELECT rowid, bm25(search_index, {WEIGHTS}) AS score FROM search_index"
            f" WHERE {where}{{extra}} ORDER BY score LIMIT ?"
        )
        # bm25 costs a little per match: a query matching most of the index ("server")
        # ranks the newest CANDIDATES matches (a rowid range, which FTS5 seeks to) plus
        # every record whose name matches; selective queries rank all their matches
        bound = conn.execute(
            f"SELECT rowid FROM search_index WHERE {where} ORDER BY rowid DESC LIMIT 1 OFFSET ?",
            [match, *filters, CANDIDATES - 1],
        ).fetchone()
        if bound is None:
            ranked = conn.execute(rank.format(extra=""), [match, *filters, limit]).fetchall()
        else:
            ranked = conn.execute(
                rank.format(extra=" AND rowid >= ?"), [match, *filters, bound[0], limit]
            ).fetchall()
            named = conn.execute(
                rank.format(extra=""), [f"{{name}} : ({match})", *filters, limit]
            ).fetchall()
            ranked = sorted(dict([*named, *ranked]).items(), key=lambda r: r[1])[:limit]
        # the rows kept, by rowid; snippets are cut here (FTS5's snippet() would read the
        # whole doclist of a common word again for every row)
        words = query_words(query)
        rows = []
        for rowid, score in ranked:
            row = conn.execute(
                "SELECT s.kind, s.record_id, s.name, s.organization_id, o.name, s.name,"
                " s.fields, s.notes, s.body FROM search_index AS s LEFT JOIN organizations"
                " AS o ON o.id = s.organization_id WHERE s.rowid = ?",
                (rowid,),
            ).fetchone()
            if row is not None:
                rows.append((*row[:5], snippet(row[5:], words), score))
        return [
            SearchHit(k, i, n or "", o, on, snip, score) for k, i, n, o, on, snip, score in rows
        ]

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
