"""``[transforms.extract]``: the worker pool's budget and the extractors' limits."""

from __future__ import annotations

from pydantic import Field, field_validator

from pipeline import ExtractLimits, TransformOptions

from .pool import default_workers

# the share of the per-file timeout an extractor may spend before it stops on its own
BUDGET_SHARE = 0.75


class ExtractOptions(TransformOptions):
    """``[transforms.extract]``."""

    # seconds per file, then the worker is killed; extractors aim for 3/4 of it
    # (OCR of a ten-page scan needs about two minutes of one core)
    timeout: float = Field(default=180.0, gt=0)
    memory_mb: int = Field(default=2048, ge=64)  # address space cap of a worker (RLIMIT_AS)
    workers: int = Field(default_factory=default_workers, ge=1, le=32)
    attach_original: bool = True  # keep the file attached next to its content
    max_section_bytes: int = Field(default=60_000, ge=1_000)  # HTML per text section
    max_text_chars: int = Field(default=200_000, ge=0)  # plain text kept for routing
    max_pages: int = Field(default=500, ge=1)
    max_rows: int = Field(default=1000, ge=1)
    max_columns: int = Field(default=50, ge=1)
    max_output_bytes: int = Field(default=5_000_000, ge=10_000)
    max_unzipped_bytes: int = Field(default=200_000_000, ge=1_000_000)
    max_zip_ratio: int = Field(default=100, ge=2)
    ocr: bool = True
    ocr_languages: list[str] = Field(default_factory=lambda: ["eng"], min_length=1)
    searchable_pdf: bool = False

    @field_validator("ocr_languages")
    @classmethod
    def _languages(cls, values: list[str]) -> list[str]:
        for v in values:
            if not v.replace("_", "").isalnum():
                raise ValueError(f"{v!r} is not a Tesseract language code like 'eng' or 'deu'")
        return values

    def limits(self) -> ExtractLimits:
        return ExtractLimits(
            max_pages=self.max_pages,
            max_rows=self.max_rows,
            max_columns=self.max_columns,
            max_output_bytes=self.max_output_bytes,
            max_unzipped_bytes=self.max_unzipped_bytes,
            max_zip_ratio=self.max_zip_ratio,
            ocr_languages=tuple(self.ocr_languages),
            ocr=self.ocr,
            searchable_pdf=self.searchable_pdf,
            seconds=self.timeout * BUDGET_SHARE,
        )
