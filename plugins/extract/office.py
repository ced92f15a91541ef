"""The built-in format extractors as one plugin: Word, Excel, CSV and PowerPoint.

Each format lives in its own module (:mod:`.word`, :mod:`.sheets`, :mod:`.slides`);
this module only registers them, through the same hook a third-party plugin uses.
PDFs are registered by :mod:`plugins.extract.ocr`, which calls the text-layer extractor
(:mod:`.pdf`) first; ``.eml`` files by :mod:`plugins.extract.eml`.

What it registers are small functions that import their format's module on first call:
every engine and CLI start loads this plugin, but only the extraction workers parse
files, so mammoth, openpyxl and python-pptx (half a second of imports) stay out of them.
"""

from __future__ import annotations

from pathlib import Path

from pipeline import Extracted, ExtractLimits, RegisterExtractor, hookimpl

DOCX_TYPES = ("application/vnd.openxmlformats-officedocument.wordprocessingml.document",)
XLSX_TYPES = (
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "application/vnd.ms-excel.sheet.macroEnabled.12",
)
CSV_TYPES = ("text/csv", "application/csv", "text/tab-separated-values")
PPTX_TYPES = (
    "application/vnd.openxmlformats-officedocument.presentationml.presentation",
    "application/vnd.ms-powerpoint.presentation.macroEnabled.12",
)


def extract_docx(path: Path, limits: ExtractLimits) -> Extracted:
    from .word import extract_docx

    return extract_docx(path, limits)


def extract_xlsx(path: Path, limits: ExtractLimits) -> Extracted:
    from .sheets import extract_xlsx

    return extract_xlsx(path, limits)


def extract_csv(path: Path, limits: ExtractLimits) -> Extracted:
    from .sheets import extract_csv

    return extract_csv(path, limits)


def extract_pptx(path: Path, limits: ExtractLimits) -> Extracted:
    from .slides import extract_pptx

    return extract_pptx(path, limits)


@hookimpl
def ingest_register_extractors(register: RegisterExtractor) -> None:
    register(list(DOCX_TYPES), extract_docx, name="docx")
    register(list(XLSX_TYPES), extract_xlsx, name="xlsx")
    register(list(CSV_TYPES), extract_csv, name="csv")
    register(list(PPTX_TYPES), extract_pptx, name="pptx")
