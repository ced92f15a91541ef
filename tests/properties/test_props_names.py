"""Properties of the file-name sanitizers and the title cleaner, on any text.

Mail attachments (``plugins.imap.parse.safe_file_name``), feed files
(``plugins.http_feed.values.safe_file_name``) and drop-folder names
(``plugins.filesystem.names.display_name``) become IT Glue attachment names and log
fields: never a path, a control or bidi character, an empty or an over-long name; a clean
name stays as it is, and cleaning twice changes nothing more.
"""

from __future__ import annotations

import os
import unicodedata

from hypothesis import example, given
from hypothesis import strategies as st

from itglue_common import escape_controls
from plugins.filesystem.names import display_name
from plugins.http_feed.values import safe_file_name as feed_safe_name
from plugins.imap.parse import mail_file_name as mail_safe_name
from plugins.title import clean_title
from tests.properties.props_helpers import name_problem

# any text, weighted towards what sanitizers get wrong
HOSTILE = st.sampled_from(
    [
        *"/\\.\x00\n\r\t\x1b\x07\x7f\x85\u2028\u2029\u202e\u2066\u200e\ufeff ?*<>:|\"'",
        *["..", "=?utf-8?q?a?=", "\udce9", "\u00fc", "\U0001d518", "e\u0301"],
    ]
)
names = st.one_of(
    st.text(max_size=400),
    st.lists(st.one_of(HOSTILE, st.text(max_size=5)), max_size=60).map("".join),
)
# names with nothing to clean: letters, digits, inner spaces, one extension
clean_names = st.builds(
    lambda stem, ext: f"{stem}.{ext}",
    st.text(st.characters(whitelist_categories=("Lu", "Ll", "Nd")), min_size=1, max_size=60).map(
        lambda s: unicodedata.normalize("NFC", s)
    ),
    st.sampled_from(["pdf", "docx", "txt", "eml"]),
)


@given(names, names)
@example("a\n2026-01-01 INFO delivered FORGED.pdf", "x")
@example("\x1b]0;pwned\x07\x1b[2J.pdf", "x")
@example("invoice\u202efdp.exe", "x")
@example("\u2028", "x")
def test_mail_attachment_names_are_safe(name: str, other: str) -> None:
    safe = mail_safe_name(name, "attachment-1.bin")
    assert name_problem(safe) is None, (safe, name_problem(safe))
    assert mail_safe_name(safe, "attachment-1.bin") == safe  # idempotent


@given(clean_names)
def test_clean_mail_names_stay_as_they_are(name: str) -> None:
    if len(name.encode()) <= 200:
        assert mail_safe_name(name, "x.bin") == name


@given(names, names)
@example("report.pdf", "../../etc/\n")  # the fallback (the item's id) is cleaned as well
@example("a" * 150 + "ü" * 150, "x")  # 450 bytes
@example("invoice\u202efdp.exe", "x")
@example("...", "\x1b")
def test_feed_file_names_are_safe(name: str, fallback: str) -> None:
    safe = feed_safe_name(name, fallback)
    assert name_problem(safe) is None, (safe, name_problem(safe))
    assert feed_safe_name(safe, fallback) == safe


@given(clean_names)
def test_clean_feed_names_stay_as_they_are(name: str) -> None:
    if len(name.encode()) <= 200:
        assert feed_safe_name(name, "x.bin") == name


@given(st.one_of(names, st.binary(max_size=300).map(os.fsdecode)))
@example(os.fsdecode(b"caf\xe9\n.pdf"))
@example("\u2028.pdf")
def test_drop_folder_display_names_are_printable(name: str) -> None:
    shown = display_name(name)
    assert shown and shown == shown.strip()
    assert escape_controls(shown) == shown, shown  # nothing left to escape
    assert display_name(shown) == shown


@given(names, st.booleans(), st.booleans(), st.integers(16, 300))
def test_titles_are_one_clean_line(
    raw: str, strip_ext: bool, underscores: bool, limit: int
) -> None:
    title = clean_title(raw, strip_extension=strip_ext, underscores=underscores, max_length=limit)
    assert len(title) <= limit
    assert title == title.strip()
    assert escape_controls(title) == title, title
    assert not any(unicodedata.category(ch) in ("Cc", "Cf", "Cs", "Co", "Cn") for ch in title)
    # cleaning again only strips a further extension, nothing else
    again = clean_title(title, strip_extension=False, underscores=underscores, max_length=limit)
    assert again == title
