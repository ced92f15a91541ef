"""XLSX and CSV as HTML tables: a heading per sheet, capped rows and columns.

XLSX: openpyxl in read-only mode (rows are streamed from the sheet XML, so memory stays
flat however large the sheet; it is the maintained reference reader of the format) with
``data_only`` (the values Excel last calculated, not the formulas). CSV: the stdlib
``csv`` module with ``csv.Sniffer`` for the delimiter (comma, semicolon as European Excel
writes it, tab, pipe), and charset-normalizer (maintained, already in the tree through
requests) for files without a byte order mark that are not UTF-8 (Windows-1252 exports).

Each table keeps at most ``max_rows`` rows and ``max_columns`` columns; trailing empty
rows and columns are dropped, and the note says where a table was cut.
"""

from __future__ import annotations

import codecs
import csv
import datetime
import html
import warnings
from collections.abc import Iterable, Sequence
from pathlib import Path

import charset_normalizer
import openpyxl
from openpyxl.utils.exceptions import InvalidFileException

from pipeline import Block, Extracted, ExtractionError, ExtractLimits, Heading, Html

from .blocks import blocks_text
from .titles import meaningful_title
from .zipguard import check_zip

_SNIFF_BYTES = 64 * 1024
_DETECT_BYTES = 1 << 20
_FEW_BYTES = 16
COUNT_ROWS = 1_000_000  # rows past the cap are only counted, and only this far
_BOMS = (
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)


class _Table:
    """Rows cut to the limits, trailing empty cells dropped; remembers what was cut."""

    def __init__(self, limits: ExtractLimits) -> None:
        self.limits = limits
        self.rows: list[list[str]] = []
        self.total_rows = 0
        self.widest = 0
        self.more = False  # stopped counting at COUNT_ROWS

    def add_rows(self, rows: Iterable[Sequence[object]]) -> None:
        for row in rows:
            width = len(row)
            while width and row[width - 1] in (None, ""):
                width -= 1
            if not width:
                continue  # blank rows say nothing in a table
            if self.total_rows >= COUNT_ROWS:
                self.more = True
                return
            self.total_rows += 1
            self.widest = max(self.widest, width)
            if len(self.rows) < self.limits.max_rows:  # past the cap rows are only counted
                self.rows.append([_cell(v) for v in row[: min(width, self.limits.max_columns)]])

    def html(self) -> str:
        if not self.rows:
            return ""
        width = max(len(r) for r in self.rows)
        head, *body = self.rows
        out = ["<table><thead><tr>"]
        out += [f"<th>{html.escape(c)}</th>" for c in _pad(head, width)]
        out.append("</tr></thead><tbody>")
        for row in body:
            out.append("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in _pad(row, width)))
            out.append("</tr>")
        out.append("</tbody></table>")
        return "".join(out)

    def cut(self, name: str) -> str | None:
        parts = []
        if self.total_rows > len(self.rows):
            more = "more than " if self.more else ""
            parts.append(f"{len(self.rows):,} of {more}{self.total_rows:,} rows")
        if self.widest > self.limits.max_columns:
            parts.append(f"{self.limits.max_columns:,} of {self.widest:,} columns")
        if not parts:
            return None
        return f"{name}: cut at {' and '.join(parts)} (max_rows/max_columns)"


def _pad(row: list[str], width: int) -> list[str]:
    return row + [""] * (width - len(row))


def _cell(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"  # as Excel shows them
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e15:
        return str(int(value))
    if isinstance(value, datetime.datetime) and value.time() == datetime.time():
        return value.date().isoformat()
    if isinstance(value, datetime.datetime | datetime.date | datetime.time):
        return (
            value.isoformat(sep=" ") if isinstance(value, datetime.datetime) else value.isoformat()
        )
    return " ".join(str(value).split())


def _extracted(tables: list[tuple[str | None, _Table]], title: str | None) -> Extracted:
    blocks: list[Block] = []
    notes: list[str] = []
    for name, table in tables:
        markup = table.html()
        if name is not None:
            blocks.append(Heading(name[:255], 2))
        if markup:
            blocks.append(Html(markup))
        cut = table.cut(name or "the table")
        if cut:
            notes.append(cut)
    note = "; ".join(notes) + "; the attached file has all of it" if notes else None
    return Extracted(blocks=tuple(blocks), text=blocks_text(blocks), title=title, note=note)


def extract_xlsx(path: Path, limits: ExtractLimits) -> Extracted:
    check_zip(path, limits)
    try:
        # a file object, not the path: openpyxl refuses a path without .xlsx, and the
        # spool's file names are not the dropped ones
        with path.open("rb") as stream, warnings.catch_warnings():
            # openpyxl warns about every extension it does not read (data validation,
            # conditional formatting): nothing the content needs
            warnings.simplefilter("ignore")
            book = openpyxl.load_workbook(stream, read_only=True, data_only=True)
            try:
                tables = []
                for sheet in book.worksheets:
                    # the sheet's declared size can be A1:XFD1048576 with three cells in it:
                    # read only the rows and cells that are there
                    sheet.reset_dimensions()
                    table = _Table(limits)
                    table.add_rows(sheet.iter_rows(values_only=True))
                    tables.append((sheet.title, table))
                title = meaningful_title(book.properties.title)
            finally:
                book.close()
    except (KeyError, ValueError, TypeError, OSError, InvalidFileException) as e:
        raise ExtractionError(f"not a readable Excel workbook ({type(e).__name__}: {e})") from e
    return _extracted(tables, title)


def extract_csv(path: Path, limits: ExtractLimits) -> Extracted:
    encoding = _encoding(path)
    table = _Table(limits)
    with path.open(encoding=encoding, errors="replace", newline="") as f:
        sample = f.read(_SNIFF_BYTES)
        try:
            dialect: type[csv.Dialect] = csv.Sniffer().sniff(sample, ",;\t|")
        except csv.Error:  # one column, or too irregular to tell: commas
            dialect = csv.excel
        f.seek(0)
        lines = (line.replace("\x00", "") for line in f)  # NUL bytes stop the csv module
        try:
            table.add_rows(csv.reader(lines, dialect))
        except csv.Error as e:
            raise ExtractionError(f"not a readable CSV file ({e})") from e
    return _extracted([(None, table)], None)


def _encoding(path: Path) -> str:
    """The file's encoding: its byte order mark, UTF-8 if the start decodes as UTF-8,
    else charset-normalizer's guess; Windows-1252 when that is one of its equals or the
    file has too few non-ASCII bytes to tell (one "©" reads as Shift-JIS otherwise)."""
    with path.open("rb") as f:
        head = f.read(_DETECT_BYTES)
    for bom, encoding in _BOMS:
        if head.startswith(bom):
            return encoding
    try:
        head.decode("utf-8")
        return "utf-8"
    except UnicodeDecodeError as e:
        if len(head) == _DETECT_BYTES and e.start >= len(head) - 3:  # cut at the end
            return "utf-8"
    if sum(b > 0x7F for b in head) < _FEW_BYTES:
        return "cp1252"  # too little to tell: Excel's export encoding in the West
    best = charset_normalizer.from_bytes(head).best()
    if best is None or "cp1252" in best.could_be_from_charset:
        return "cp1252"
    return best.encoding
