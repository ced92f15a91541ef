"""Genuine small documents made with the standard library (PDF, PNG, DOCX, CSV).

They are what ``pipeline/samples/`` ships for the demo (``test_samples_are_generated``
checks the committed bytes still equal this code's output) and what the tests use to
make many distinct, real files: libmagic must recognise each by its content, so they are
complete files of their format, not magic numbers glued to zeros.
"""

from __future__ import annotations

import struct
import zipfile
import zlib
from io import BytesIO


def make_pdf(lines: list[str]) -> bytes:
    """A one-page PDF 1.4 showing ``lines`` in Helvetica, with a correct xref table."""

    def esc(text: str) -> str:
        return text.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")

    ops = ["BT", "/F1 14 Tf", "72 760 Td", "18 TL"]
    for line in lines:
        ops.append(f"({esc(line)}) Tj T*")
    ops.append("ET")
    stream = "\n".join(ops).encode("latin-1")
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] "
        b"/Resources << /Font << /F1 5 0 R >> >> /Contents 4 0 R >>",
        b"<< /Length %d >>\nstream\n" % len(stream) + stream + b"\nendstream",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    out = BytesIO()
    out.write(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(out.tell())
        out.write(b"%d 0 obj\n" % number + body + b"\nendobj\n")
    xref = out.tell()
    out.write(b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1))
    for offset in offsets:
        out.write(b"%010d 00000 n \n" % offset)
    out.write(
        b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref)
    )
    return out.getvalue()


def make_png(width: int, height: int, seed: int = 0) -> bytes:
    """An RGB PNG with a gradient (``seed`` shifts the colours: distinct bytes per seed)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data))
            + kind
            + data
            + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
        )

    rows = bytearray()
    for y in range(height):
        rows.append(0)  # filter: none
        for x in range(width):
            rows += bytes(
                (
                    (x * 255 // max(width - 1, 1) + seed) % 256,
                    (y * 255 // max(height - 1, 1) + seed * 7) % 256,
                    (128 + seed * 13) % 256,
                )
            )
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(bytes(rows), 9))
        + chunk(b"IEND", b"")
    )


_CONTENT_TYPES = (
    '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
    '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
    '<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.'
    'relationships+xml"/>'
    '<Default Extension="xml" ContentType="application/xml"/>'
    '<Override PartName="/word/document.xml" ContentType="application/vnd.openxmlformats-'
    'officedocument.wordprocessingml.document.main+xml"/>'
    "</Types>"
)
_RELS = (
    '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
    '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
    '<Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/'
    'relationships/officeDocument" Target="word/document.xml"/>'
    "</Relationships>"
)


def make_docx(paragraphs: list[str]) -> bytes:
    """A minimal valid Word document (OOXML): content types, package rels, one body."""
    from xml.sax.saxutils import escape

    body = "".join(f"<w:p><w:r><w:t>{escape(p)}</w:t></w:r></w:p>" for p in paragraphs)
    document = (
        '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
        '<w:document xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main">'
        f"<w:body>{body}</w:body></w:document>"
    )
    out = BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as z:
        for name, text in (
            ("[Content_Types].xml", _CONTENT_TYPES),
            ("_rels/.rels", _RELS),
            ("word/document.xml", document),
        ):
            info = zipfile.ZipInfo(name, date_time=(2026, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            z.writestr(info, text)
    return out.getvalue()


def make_csv(rows: list[list[str]]) -> bytes:
    return "".join(",".join(r) + "\r\n" for r in rows).encode()


# The demo's samples: file name -> bytes (pipeline/samples/ holds exactly these).
def demo_samples() -> dict[str, bytes]:
    return {
        "Quarterly network review.pdf": make_pdf(
            [
                "Quarterly network review",
                "",
                "Core switch firmware updated to 17.9.4.",
                "Firewall rules audited: 3 stale rules removed.",
                "Backup restore test passed (RTO 42 min).",
            ]
        ),
        "rack_diagram.png": make_png(96, 64, seed=3),
        "asset-inventory.csv": make_csv(
            [
                ["hostname", "type", "serial", "location"],
                ["fw-01", "firewall", "FG100F3G19000123", "Server room"],
                ["sw-core-01", "switch", "FOC2231X0AB", "Server room"],
                ["nas-01", "storage", "2040PQN123456", "Server room"],
                ["ap-lobby", "access point", "Q3AB-1234-5678", "Lobby"],
            ]
        ),
        "Onboarding checklist.docx": make_docx(
            [
                "Onboarding checklist",
                "1. Create the user in Entra ID and assign a licence.",
                "2. Enrol the laptop in Intune; check BitLocker.",
                "3. Add the user to the VPN group and the shared mailbox.",
            ]
        ),
    }
