"""OCR: the text of images (PNG, JPEG, TIFF with all its pages, BMP, WebP) and scanned PDFs.

Tools, and why:

* Tesseract's own command, run directly (not through pytesseract, which wraps the same
  command): each call gets ``OMP_THREAD_LIMIT=1``, because Tesseract's OpenMP threads
  fight the extraction worker pool for the cores (one page took 33 s instead of 12 s on
  a 2-core machine), reads the page from stdin (no temp files) and dies with its worker
  when the pool kills a worker over its time budget.
* pypdfium2 renders PDF pages and tells which pages have a text layer (a wheel with
  PDFium inside: no system package, fast, permissive licence).
* ocrmypdf only for ``searchable_pdf``: it grafts the text layer onto the original pages
  instead of re-encoding the scan, and writes plain PDF without Ghostscript.

A PDF with a text layer is not OCR'd: the text-layer extractor
(:func:`plugins.extract.pdf.extract_pdf_text`) reads it, and only its pages without text
are OCR'd and added. Where Tesseract is missing, the plugin logs one warning when the
engine registers extractors and OCR is skipped with a note; nothing fails.
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import html
import io
import logging
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pipeline import (
    Block,
    Extracted,
    ExtractionError,
    ExtractLimits,
    Heading,
    Html,
    RegisterExtractor,
    hookimpl,
)

from .titles import meaningful_title

# The parsers (pypdfium2, Pillow, pdfminer through .pdf) are imported by the functions
# that use them: this module is loaded by every engine and CLI start to register the
# extractors, but only the extraction workers run them.
if TYPE_CHECKING:
    from PIL import Image

log = logging.getLogger("itglue_ingest.extract.ocr")

IMAGE_TYPES = ("image/png", "image/jpeg", "image/tiff", "image/bmp", "image/webp")
PDF_TYPES = ("application/pdf",)

#: Tesseract reads best at about 300 dpi (its documentation); rendered pages use this
RENDER_DPI = 300
#: a page image larger than this is scaled down before OCR (A4 at 600 dpi is 35 Mpx)
MAX_PIXELS = 40_000_000
#: a safety net per Tesseract call; the pool's per-file budget is the real limit
PAGE_TIMEOUT = 600.0


# --------------------------------------------------------------------------- tesseract


def tesseract_command() -> str | None:
    """The ``tesseract`` program on PATH, or None."""
    return shutil.which("tesseract")


@functools.cache
def installed_languages(command: str) -> frozenset[str]:
    """The language data Tesseract has (``tesseract --list-langs``)."""
    try:
        done = subprocess.run(
            [command, "--list-langs"], capture_output=True, text=True, timeout=30, check=False
        )
    except (OSError, subprocess.SubprocessError):
        return frozenset()
    # the first line is "List of available languages in ...:"
    return frozenset(line.strip() for line in done.stdout.splitlines()[1:] if line.strip())


def tesseract_problem(languages: tuple[str, ...] = ("eng",)) -> str | None:
    """Why OCR cannot run here (a sentence for a note or a warning), or None."""
    command = tesseract_command()
    if command is None:
        return (
            "OCR skipped: Tesseract is not installed (the 'tesseract' command is not on"
            " PATH; install the tesseract-ocr package, scripts/bootstrap.sh does)"
        )
    have = installed_languages(command)
    missing = [lang for lang in languages if lang not in have]
    if missing:
        return (
            f"OCR skipped: Tesseract has no language data for {', '.join(missing)}"
            f" (installed: {', '.join(sorted(have - {'osd'})) or 'none'}; install"
            f" {', '.join('tesseract-ocr-' + m for m in missing)} or change ocr_languages)"
        )
    return None


def _die_with_parent() -> None:
    """In the child, before exec: receive SIGKILL when the worker that started us dies,
    so a worker the pool kills over its time budget leaves no Tesseract running."""
    with contextlib.suppress(Exception):
        pr_set_pdeathsig = 1
        ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, signal.SIGKILL)


def _run(argv: list[str], *, data: bytes | None = None, timeout: float) -> bytes:
    env = {**os.environ, "OMP_THREAD_LIMIT": "1"}
    try:
        done = subprocess.run(
            argv,
            input=data,
            capture_output=True,
            timeout=timeout,
            env=env,
            check=False,
            preexec_fn=_die_with_parent if sys.platform == "linux" else None,
        )
    except subprocess.TimeoutExpired:
        raise ExtractionError(f"OCR took longer than {timeout:g} s for one page") from None
    except OSError as e:
        raise ExtractionError(f"OCR could not start {argv[0]}: {e.strerror or e}") from None
    if done.returncode != 0:
        detail = done.stderr.decode("utf-8", "replace").strip().splitlines()
        raise ExtractionError(f"OCR failed: {detail[-1] if detail else done.returncode}")
    return done.stdout


def ocr_image(image: Image.Image, languages: tuple[str, ...], dpi: int | None) -> str:
    """The text Tesseract reads in a PIL image (any mode)."""
    command = tesseract_command()
    if command is None:  # checked by the callers; the PATH may change under us
        raise ExtractionError(tesseract_problem() or "Tesseract is not installed")
    page = _grey(image)
    buffer = io.BytesIO()
    page.save(buffer, "PPM")  # uncompressed: the cheapest format Tesseract reads from stdin
    argv = [command, "stdin", "stdout", "-l", "+".join(languages)]
    if dpi:
        argv += ["--dpi", str(dpi)]
    return _run(argv, data=buffer.getvalue(), timeout=PAGE_TIMEOUT).decode("utf-8", "replace")


def _grey(image: Image.Image) -> Image.Image:
    """``image`` as 8-bit grey, transparency on white (a transparent PNG is otherwise
    black on black), scaled down past :data:`MAX_PIXELS`."""
    from PIL import Image

    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        image = Image.alpha_composite(white, rgba)
    grey = image.convert("L")
    pixels = grey.width * grey.height
    if pixels > MAX_PIXELS:
        factor = (MAX_PIXELS / pixels) ** 0.5
        grey = grey.resize((max(1, int(grey.width * factor)), max(1, int(grey.height * factor))))
    return grey


# --------------------------------------------------------------------------- text -> blocks

_BLANK_LINES = re.compile(r"\n\s*\n")


def paragraphs(text: str) -> list[str]:
    """Tesseract's output as paragraphs: blocks are separated by blank lines; the lines of
    one paragraph are joined (a word broken with a hyphen at a line end is joined whole)."""
    found = []
    for chunk in _BLANK_LINES.split(text.replace("\f", "\n\n")):
        lines = [line.strip() for line in chunk.splitlines() if line.strip()]
        if not lines:
            continue
        joined = lines[0]
        for line in lines[1:]:
            if joined.endswith("-") and joined[-2:-1].isalpha() and line[:1].islower():
                joined = joined[:-1] + line
            else:
                joined += " " + line
        found.append(joined)
    return found


def page_blocks(pages: list[str], *, first_page: int = 1, label: str = "Page") -> list[Block]:
    """Blocks for OCR'd pages: the paragraphs of each, under a "Page N" heading when there
    is more than one page (so a technician finds the page in the attachment)."""
    blocks: list[Block] = []
    numbered = len(pages) > 1 or first_page > 1
    for number, text in enumerate(pages, start=first_page):
        paras = paragraphs(text)
        if not paras:
            continue
        if numbered:
            blocks.append(Heading(f"{label} {number}", level=2))
        blocks.append(Html("".join(f"<p>{html.escape(p, quote=False)}</p>" for p in paras)))
    return blocks


def plain_text(pages: list[str]) -> str:
    return "\n\n".join("\n\n".join(paragraphs(p)) for p in pages if p.strip())


# --------------------------------------------------------------------------- images


def _frames(image: Image.Image, max_pages: int) -> Iterator[Image.Image]:
    from PIL import ImageSequence

    for number, frame in enumerate(ImageSequence.Iterator(image)):
        if number >= max_pages:
            return
        yield frame


def _image_dpi(image: Image.Image) -> int | None:
    """The image's resolution when it states a plausible one (cameras say 72)."""
    dpi = image.info.get("dpi")
    try:
        value = round(float(dpi[0])) if dpi else 0
    except (TypeError, ValueError, IndexError):
        return None
    return value if 100 <= value <= 1200 else None


def _image_title(image: Image.Image) -> str | None:
    """The title the image carries: PNG ``Title`` text, EXIF XPTitle or ImageDescription."""
    title = image.info.get("Title") or image.info.get("title")
    if not title:
        with contextlib.suppress(Exception):
            exif = image.getexif()
            raw = exif.get(0x9C9B)  # XPTitle, UTF-16LE bytes (Windows "Title")
            if isinstance(raw, bytes | tuple | list):
                title = bytes(raw).decode("utf-16-le", "ignore").rstrip("\x00")
            title = title or exif.get(0x010E)  # ImageDescription
    if isinstance(title, bytes):
        title = title.decode("utf-8", "replace")
    return meaningful_title(title)


def extract_image(path: Path, limits: ExtractLimits) -> Extracted:
    """OCR an image file, every page of a multi-page TIFF (up to ``max_pages``)."""
    from PIL import Image, UnidentifiedImageError

    try:
        image = Image.open(path)
    except (UnidentifiedImageError, OSError, ValueError) as e:
        raise ExtractionError(f"not a readable image: {e}") from None
    with image:
        frames = getattr(image, "n_frames", 1)
        title = _image_title(image)
        if image.width * image.height > 2 * MAX_PIXELS:
            raise ExtractionError(
                f"the image is too large to OCR ({image.width} x {image.height} pixels)"
            )
        skipped = _why_no_ocr(limits)
        if skipped is not None:
            return Extracted(blocks=(), text="", title=title, note=skipped or None, pages=frames)
        deadline = time.monotonic() + limits.seconds
        texts: list[str] = []
        try:
            for frame in _frames(image, limits.max_pages):
                if texts and time.monotonic() > deadline:
                    break
                texts.append(ocr_image(frame, limits.ocr_languages, _image_dpi(frame)))
        except (OSError, ValueError, Image.DecompressionBombError) as e:
            raise ExtractionError(f"the image cannot be decoded: {e}") from None
    note = _cut_note(frames, limits.max_pages)
    if len(texts) < min(frames, limits.max_pages):
        note = _out_of_time(len(texts), frames)
    return Extracted(
        blocks=tuple(page_blocks(texts)),
        text=plain_text(texts),
        title=title,
        note=note,
        pages=frames,
    )


def _why_no_ocr(limits: ExtractLimits) -> str | None:
    """None when OCR runs; else the note for the document: "" when the configuration
    turned OCR off (nothing to note), the reason when Tesseract or a language is missing
    (the engine warned once at start)."""
    if not limits.ocr:
        return ""
    return tesseract_problem(limits.ocr_languages)


def _out_of_time(done: int, pages: int) -> str:
    return (
        f"OCR stopped after {done:,} of {pages:,} pages: the time budget ran out"
        " ([transforms.extract] timeout)"
    )


def _cut_note(pages: int, max_pages: int) -> str | None:
    if pages > max_pages:
        return f"OCR stopped after {max_pages:,} of {pages:,} pages (max_pages)"
    return None


# --------------------------------------------------------------------------- PDFs


PageKind = Literal["text", "scan", "blank"]


def _page_kinds(path: Path, max_pages: int) -> tuple[int, list[PageKind]] | None:
    """(page count, what each of the first ``max_pages`` pages holds: a text layer, an
    image to OCR, or neither), or None when PDFium cannot open the file or a page (the text-layer
    extractor then says why). A page with neither is not OCR'd: nothing on it is a scan."""
    import pypdfium2 as pdfium
    import pypdfium2.raw as pdfium_c

    try:
        pdf = pdfium.PdfDocument(path)
    except pdfium.PdfiumError:
        return None
    try:
        kinds: list[PageKind] = []
        for index in range(min(len(pdf), max_pages)):
            page = pdf[index]
            textpage = page.get_textpage()
            if textpage.get_text_range().strip():
                kinds.append("text")
            elif next(page.get_objects(filter=[pdfium_c.FPDF_PAGEOBJ_IMAGE]), None):
                kinds.append("scan")
            else:
                kinds.append("blank")
            textpage.close()
            page.close()
        return len(pdf), kinds
    except pdfium.PdfiumError:  # a page it cannot load (a page tree pointing to itself)
        return None
    finally:
        pdf.close()


def _render_and_ocr(path: Path, indexes: list[int], limits: ExtractLimits) -> list[str]:
    """The OCR text of the pages at ``indexes``, in order; fewer when the time budget
    ran out (at least one page is always read)."""
    import pypdfium2 as pdfium

    deadline = time.monotonic() + limits.seconds
    languages = limits.ocr_languages
    pdf = pdfium.PdfDocument(path)
    try:
        texts: list[str] = []
        for index in indexes:
            if texts and time.monotonic() > deadline:
                break
            page = pdf[index]
            width, height = page.get_size()
            scale = RENDER_DPI / 72
            pixels = width * height * scale * scale
            if pixels > MAX_PIXELS:  # a poster-sized page: fewer dots per inch, same pixels
                scale *= (MAX_PIXELS / pixels) ** 0.5
            image = page.render(scale=scale, grayscale=True).to_pil()
            page.close()
            texts.append(ocr_image(image, languages, round(scale * 72)))
        return texts
    finally:
        pdf.close()


def _text_layer(path: Path, limits: ExtractLimits) -> Extracted:
    from .pdf import extract_pdf_text

    return extract_pdf_text(path, limits)


def _pdf_title(path: Path) -> str | None:
    import pypdfium2 as pdfium

    with contextlib.suppress(pdfium.PdfiumError):
        pdf = pdfium.PdfDocument(path)
        try:
            return meaningful_title(pdf.get_metadata_dict().get("Title"))
        finally:
            pdf.close()
    return None


def extract_pdf(path: Path, limits: ExtractLimits) -> Extracted:
    """A PDF's text: its text layer where it has one, OCR for the scanned pages."""
    found = _page_kinds(path, limits.max_pages)
    if found is None:
        return _text_layer(path, limits)  # encrypted, malformed: it raises with the reason
    pages, kinds = found
    scanned = [i for i, kind in enumerate(kinds) if kind == "scan"]
    if not scanned:
        return _text_layer(path, limits)
    if "text" in kinds:
        return _mixed(path, scanned, limits)
    return _scan(path, pages, kinds, limits)


def _mixed(path: Path, scanned: list[int], limits: ExtractLimits) -> Extracted:
    """Text-layer pages as the text-layer extractor reads them, then the scanned pages."""
    base = _text_layer(path, limits)
    skipped = _why_no_ocr(limits)
    if skipped is not None:
        return replace(base, note=base.note or skipped or None)
    texts = _render_and_ocr(path, scanned, limits)
    extra: list[Block] = []
    for index, text in zip(scanned, texts, strict=False):
        extra += page_blocks([text], first_page=index + 1, label="Scanned page")
    more = plain_text(texts)
    late = _out_of_time(len(texts), len(scanned)) if len(texts) < len(scanned) else None
    return replace(
        base,
        blocks=(*base.blocks, *extra),
        text=f"{base.text}\n\n{more}" if more else base.text,
        note=base.note or late,
    )


def _scan(path: Path, pages: int, kinds: list[PageKind], limits: ExtractLimits) -> Extracted:
    """A PDF without any text layer: every scanned page OCR'd (blank ones are skipped),
    with ``searchable_pdf`` through ocrmypdf, which also returns the searchable copy."""
    title = _pdf_title(path)
    skipped = _why_no_ocr(limits)
    if skipped is not None:
        return Extracted(blocks=(), text="", title=title, note=skipped or None, pages=pages)
    note = _cut_note(pages, limits.max_pages)
    searchable: bytes | None = None
    texts: list[str] | None = None
    if limits.searchable_pdf:
        try:
            texts, searchable = searchable_pdf(path, limits)
        except ExtractionError as e:  # the text is still worth having; the scan stays
            note = f"the searchable copy could not be made ({e}); the scan is attached as it was"
    if texts is None:
        scanned = [i for i, kind in enumerate(kinds) if kind == "scan"]
        done = _render_and_ocr(path, scanned, limits)
        if len(done) < len(scanned):
            note = _out_of_time(len(done), len(scanned))
            kinds = kinds[: scanned[len(done) - 1] + 1]  # up to the last page read
        read = dict(zip(scanned, done, strict=False))
        texts = [read.get(i, "") for i in range(len(kinds))]  # blank pages stay empty
    return Extracted(
        blocks=tuple(page_blocks(texts)),
        text=plain_text(texts),
        title=title,
        note=note,
        pages=pages,
        replacement=searchable,
    )


def searchable_pdf(path: Path, limits: ExtractLimits) -> tuple[list[str], bytes]:
    """OCR a scanned PDF with ocrmypdf: the text of its first ``max_pages`` pages and the
    whole PDF with a text layer on those pages (the others stay as they were)."""
    with tempfile.TemporaryDirectory(prefix="itglue-ocr-") as tmp:
        out, sidecar = Path(tmp, "ocr.pdf"), Path(tmp, "ocr.txt")
        argv = [
            sys.executable,
            "-m",
            "ocrmypdf",
            "--quiet",
            "--output-type",
            "pdf",  # no PDF/A: that needs Ghostscript and changes more than the text layer
            "--optimize",
            "0",
            "--jobs",
            "1",  # the extraction pool is the parallelism
            "--skip-text",
            "--pages",
            f"1-{limits.max_pages}",
            "--tesseract-timeout",
            f"{PAGE_TIMEOUT:g}",
            "--sidecar",
            str(sidecar),
            "-l",
            "+".join(limits.ocr_languages),
            str(path),
            str(out),
        ]
        _run(argv, timeout=PAGE_TIMEOUT * 2)
        # the sidecar has one text per page, separated by form feeds
        texts = sidecar.read_text("utf-8", "replace").split("\f")[: limits.max_pages]
        return texts, _same_bytes_every_time(path, out)


def _number_ocr_layers(pdf: Any, page: Any, number: int) -> None:
    """Rename ocrmypdf's ``/OCR-<random>`` form XObjects of ``page`` to ``/OCR-<page>-<n>``,
    in its resources and in its content stream."""
    xobjects = page.Resources.get("/XObject") if "/Resources" in page.obj else None
    if xobjects is None:
        return
    keys = xobjects.keys()  # a pikepdf Dictionary
    names = sorted(str(k) for k in keys if str(k).startswith("/OCR-"))
    if not names:
        return
    page.contents_coalesce()
    content = page.obj.Contents.read_bytes()
    for index, old in enumerate(names):
        new = f"/OCR-{number}-{index}"
        xobjects[new] = xobjects[old]
        del xobjects[old]
        content = content.replace(old.encode(), new.encode())
    page.obj.Contents = pdf.make_stream(content)


def _same_bytes_every_time(original: Path, ocred: Path) -> bytes:
    """The OCR'd PDF without the stamps of the run: ocrmypdf writes the time it ran
    (ModDate, XMP dates), a random name for each page's text layer and a random /ID, but
    a record retried after a crash must get the same bytes (the file is part of what makes
    it a duplicate). The dates become the original's creation date (or none), the names
    are numbered, the /ID is derived from the content."""
    import pikepdf  # ocrmypdf's own PDF library

    with pikepdf.open(original) as source:
        created = source.docinfo.get("/CreationDate")
    with pikepdf.open(ocred) as pdf:
        for key in ("/CreationDate", "/ModDate"):
            if created is not None:
                pdf.docinfo[key] = created
            elif key in pdf.docinfo:
                del pdf.docinfo[key]
        with pdf.open_metadata(set_pikepdf_as_editor=False, update_docinfo=False) as xmp:
            for key in ("xmp:CreateDate", "xmp:ModifyDate", "xmp:MetadataDate"):
                if key in xmp:
                    del xmp[key]
        for number, page in enumerate(pdf.pages):
            _number_ocr_layers(pdf, page, number)
        if "/ID" in pdf.trailer:  # its first half would survive a save
            del pdf.trailer["/ID"]
        buffer = io.BytesIO()
        pdf.save(buffer, deterministic_id=True)
        return buffer.getvalue()


# --------------------------------------------------------------------------- the plugin


@hookimpl
def ingest_register_extractors(register: RegisterExtractor) -> None:
    # checked here, once per engine start, so a machine without Tesseract gets ONE clear
    # warning and not one per file (the files then land with a note)
    problem = tesseract_problem()
    if problem is not None:
        log.warning("%s; images and scanned PDFs are delivered without their text", problem)
    register(list(IMAGE_TYPES), extract_image, name="ocr")
    register(list(PDF_TYPES), extract_pdf, name="pdf")
