"""Page images rendered from a known text, and the word score OCR output is judged by.

Shared by the OCR tests and bench/bench_ocr.py. Pages are drawn with Pillow in DejaVu
Sans (it has the German letters; scripts/bootstrap.sh installs it), at 300 dpi.
"""

from __future__ import annotations

import re
import textwrap
from collections import Counter
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

from tests.child_process import REPO_ROOT

DATA = REPO_ROOT / "tests" / "data" / "ocr"
REAL_SCAN = DATA / "linn.pdf"  # a real scan, no text layer (tests/data/SOURCES.md)
REAL_SCAN_TEXT = DATA / "linn.txt"
FONT = Path("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf")

ENGLISH = (
    "Quarterly maintenance report for the Riverside office network. "
    "The firewall firmware was updated to version 7.2 and the backup job now runs "
    "every night at two o'clock. Three workstations still need a new power supply; "
    "the parts were ordered on Monday and should arrive within a week. "
    "Please contact the service desk before changing the wireless password, "
    "because the printers and the door controller use the same network."
)
GERMAN = (
    "Wartungsbericht für das Büro in München. Die Größe der täglichen Sicherung "
    "ändert sich kaum; der Schlüssel für den Serverraum liegt bei Frau Müller. "
    "Übermorgen werden zwölf Geräte geprüft, außerdem die unterbrechungsfreie "
    "Stromversorgung im Erdgeschoß."
)


def words(text: str) -> Counter[str]:
    return Counter(re.findall(r"\w+", text.casefold()))


def word_score(reference: str, found: str) -> float:
    """The share of the reference's words (counted with repeats) that OCR found."""
    want = words(reference)
    return sum((want & words(found)).values()) / max(1, sum(want.values()))


def render_page(text: str, *, width: int = 2480, size: int = 42) -> Image.Image:
    """``text`` drawn black on white: 2480 px wide is an A4 page at 300 dpi, 42 px is
    10 pt text at 300 dpi. The page is as tall as the text needs (less to OCR)."""
    font = ImageFont.truetype(str(FONT), size)
    lines = textwrap.wrap(text, width=int(width / (size * 0.55)))
    line_height = int(size * 1.5)
    page = Image.new("L", (width, 200 + line_height * len(lines)), 255)
    draw = ImageDraw.Draw(page)
    for number, line in enumerate(lines):
        draw.text((150, 100 + number * line_height), line, font=font, fill=0)
    return page


def save_pages(pages: list[Image.Image], path: Path) -> Path:
    """Save ``pages`` as one file (multi-page TIFF or PDF by the suffix) at 300 dpi. A PDF
    made this way is a scanned PDF: images only, no text layer."""
    first, *rest = pages
    first.save(path, save_all=True, append_images=rest, resolution=300.0, dpi=(300, 300))
    return path
