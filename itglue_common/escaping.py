"""Make untrusted text safe to print: file names, mail subjects, feed fields, reasons.

A name with a newline forges a log line ("delivered FORGED.pdf"), an escape sequence
retitles or clears the terminal, a bidi override shows ``fdp.exe`` as ``exe.pdf``. Every
place that prints such text (the text log formatter, ``status``, ``once``) passes it
through :func:`escape_controls`, which shows these characters visibly (``\\n``,
``\\x1b``, ``\\u202e``) instead of letting the terminal or a log reader act on them.
"""

from __future__ import annotations

import re

# C0 controls (newline, CR, ESC, BEL...), DEL, C1 controls (U+0085 NEL, U+009B CSI),
# the Unicode line/paragraph separators, the bidi marks, embeddings, overrides and
# isolates, and lone surrogates (undecodable file-name bytes; they would make the write
# to a UTF-8 stream raise).
UNSAFE = re.compile(
    "[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069\ud800-\udfff]"
)
_SHORT = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _visible(m: re.Match[str]) -> str:
    ch = m.group()
    short = _SHORT.get(ch)
    if short is not None:
        return short
    code = ord(ch)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def escape_controls(text: str) -> str:
    """``text`` on one line, with every control, separator and bidi character escaped."""
    return UNSAFE.sub(_visible, text)


def escape_markup(text: str) -> str:
    """:func:`escape_controls`, then rich's markup escaped: for text shown through rich
    (``[bold]`` in a file name is shown, and a stray ``[/]`` cannot raise)."""
    from rich.markup import escape

    return escape(escape_controls(text))


# what json.dumps(ensure_ascii=False) leaves raw: all of UNSAFE but C0 (escaped already;
# a raw newline in its output is indentation, not data)
_JSON_RAW = re.compile(
    "[\x7f-\x9f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069\ud800-\udfff]"
)


def _json_escape(m: re.Match[str]) -> str:
    return f"\\u{ord(m.group()):04x}"


def json_safe(dumped: str) -> str:
    """A ``json.dumps(..., ensure_ascii=False)`` result with the characters JSON leaves raw
    (DEL, C1, U+2028/2029, bidi, lone surrogates) written as ``\\uXXXX`` escapes.

    Still valid JSON decoding to the same values, but no line separator or terminal
    control reaches the log as such.
    """
    return _JSON_RAW.sub(_json_escape, dumped)
