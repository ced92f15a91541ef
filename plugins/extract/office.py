"""The built-in format extractors as one plugin: Word, Excel, CSV and PowerPoint.

Each format lives in its own module (:mod:`.word`, :mod:`.sheets`, :mod:`.slides`);
this module only registers them, through the same hook a third-party plugin uses.
PDFs are registered by :mod:`plugins.extract.ocr`, which calls the text-layer extractor
(:mod:`.pdf`) first; ``.eml`` files by :mod:`plugins.extract.eml`.
"""

from __future__ import annotations

from pipeline import RegisterExtractor, hookimpl

from .sheets import CSV_TYPES, XLSX_TYPES, extract_csv, extract_xlsx
from .slides import PPTX_TYPES, extract_pptx
from .word import DOCX_TYPES, extract_docx


@hookimpl
def ingest_register_extractors(register: RegisterExtractor) -> None:
    register(list(DOCX_TYPES), extract_docx, name="docx")
    register(list(XLSX_TYPES), extract_xlsx, name="xlsx")
    register(list(CSV_TYPES), extract_csv, name="csv")
    register(list(PPTX_TYPES), extract_pptx, name="pptx")
