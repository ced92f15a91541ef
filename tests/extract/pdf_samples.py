"""Text PDFs written byte by byte, for tests and the bench: any number of pages in
milliseconds (a 5,000-page file is ~1 MB), each page a list of (font size, line) drawn
top-down in Helvetica, with a correct cross-reference table."""

from __future__ import annotations

Page = list[tuple[float, str]]


def _escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")


def _content(page: Page) -> bytes:
    ops = ["BT"]
    y = 770.0
    for size, line in page:
        y -= size * 1.6
        ops.append(f"/F1 {size:g} Tf 1 0 0 1 60 {y:.1f} Tm ({_escape(line)}) Tj")
    ops.append("ET")
    return "\n".join(ops).encode("latin-1")


def text_pdf(pages: list[Page], title: str | None = None) -> bytes:
    """A PDF with one page per entry of ``pages``."""
    objects: list[bytes] = []  # object n is objects[n - 1]

    def add(body: bytes) -> int:
        objects.append(body)
        return len(objects)

    catalog = add(b"")  # filled in below
    tree = add(b"")
    font = add(b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>")
    kids = []
    for page in pages:
        data = _content(page)
        stream = add(b"<< /Length %d >>\nstream\n" % len(data) + data + b"\nendstream")
        kids.append(
            add(
                b"<< /Type /Page /Parent %d 0 R /MediaBox [0 0 612 792]"
                b" /Resources << /Font << /F1 %d 0 R >> >> /Contents %d 0 R >>"
                % (tree, font, stream)
            )
        )
    objects[catalog - 1] = b"<< /Type /Catalog /Pages %d 0 R >>" % tree
    objects[tree - 1] = b"<< /Type /Pages /Kids [%s] /Count %d >>" % (
        b" ".join(b"%d 0 R" % k for k in kids),
        len(kids),
    )
    info = add(b"<< /Title (%s) >>" % _escape(title).encode("latin-1")) if title else None
    out = bytearray(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % o for o in offsets)
    trailer = b"<< /Size %d /Root %d 0 R" % (len(objects) + 1, catalog)
    if info:
        trailer += b" /Info %d 0 R" % info
    out += b"trailer\n" + trailer + b" >>\nstartxref\n%d\n%%%%EOF\n" % xref
    return bytes(out)


def report_pages(n: int) -> list[Page]:
    """``n`` pages of a report: a chapter heading on every fifth page, then paragraphs."""
    pages: list[Page] = []
    for i in range(1, n + 1):
        page: Page = []
        if i % 5 == 1:
            page.append((20, f"Chapter {i // 5 + 1}: Network maintenance"))
        for j in range(1, 9):
            page.append((11, f"Page {i} paragraph {j}: the firewall at site {j} was patched."))
        pages.append(page)
    return pages
