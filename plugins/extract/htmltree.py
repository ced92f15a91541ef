"""Sanitized HTML as a shallow tree, to cut it between elements.

Section HTML must be split where one section would be too large, and top-level
``<h1>``-``<h6>`` become heading sections; both need the top-level elements of a
fragment and, for an element too large on its own (a long table or list), its children.
The input is the sanitizer's output (balanced, entities escaped), so the standard
library's ``html.parser`` is enough and the text round-trips unchanged.
"""

from __future__ import annotations

import html
from dataclasses import dataclass, field
from html.parser import HTMLParser

VOID = frozenset({"br", "hr", "img", "col", "wbr"})
HEADINGS = {f"h{n}": n for n in range(1, 7)}


@dataclass
class Element:
    tag: str
    start: str  # the start tag as written, e.g. '<ol start="3">'
    children: list[Element | str] = field(default_factory=list)

    def html(self) -> str:
        if self.tag in VOID:
            return self.start
        return self.start + "".join(to_html(c) for c in self.children) + f"</{self.tag}>"

    def text(self) -> str:
        return "".join(c if isinstance(c, str) else c.text() for c in self.children)


Node = Element | str  # a str is escaped text, as it appears in the HTML


def to_html(node: Node) -> str:
    return node if isinstance(node, str) else node.html()


def plain_text(node: Node) -> str:
    """The node's text, unescaped, whitespace collapsed."""
    raw = node if isinstance(node, str) else node.text()
    return " ".join(html.unescape(raw).split())


class _Builder(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=False)
        self.root = Element("", "")
        self.stack = [self.root]

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        el = Element(tag, self.get_starttag_text() or f"<{tag}>")
        self.stack[-1].children.append(el)
        if tag not in VOID:
            self.stack.append(el)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.stack[-1].children.append(Element(tag, self.get_starttag_text() or f"<{tag}>"))

    def handle_endtag(self, tag: str) -> None:
        for i in range(len(self.stack) - 1, 0, -1):
            if self.stack[i].tag == tag:
                del self.stack[i:]
                return

    def handle_data(self, data: str) -> None:
        self.stack[-1].children.append(html.escape(data, quote=False))

    def handle_entityref(self, name: str) -> None:
        self.stack[-1].children.append(f"&{name};")

    def handle_charref(self, name: str) -> None:
        self.stack[-1].children.append(f"&#{name};")


def parse(fragment: str) -> list[Node]:
    """The top-level nodes of a (sanitized) HTML fragment."""
    builder = _Builder()
    builder.feed(fragment)
    builder.close()
    return builder.root.children


def size(text: str) -> int:
    return len(text.encode("utf-8"))


def split_node(node: Node, limit: int) -> list[str]:
    """``node`` as HTML pieces of at most ``limit`` bytes where possible: an element too
    large is repeated around chunks of its children, long text is cut at spaces."""
    whole = to_html(node)
    if size(whole) <= limit:
        return [whole]
    if isinstance(node, str):
        return _split_text(node, limit)
    if not node.children:
        return [whole]  # a single tag cannot be cut
    wrapper = size(node.start) + size(f"</{node.tag}>")
    inner = max(limit - wrapper, limit // 2)
    return [node.start + chunk + f"</{node.tag}>" for chunk in pack(node.children, inner)]


def pack(nodes: list[Node], limit: int) -> list[str]:
    """Consecutive nodes packed into as few pieces of at most ``limit`` bytes as fit."""
    out: list[str] = []
    current = ""
    for node in nodes:
        for piece in split_node(node, limit):
            if current and size(current) + size(piece) > limit:
                out.append(current)
                current = ""
            current += piece
    if current:
        out.append(current)
    return out


def _split_text(text: str, limit: int) -> list[str]:
    out: list[str] = []
    while size(text) > limit:
        cut = text.encode("utf-8")[:limit].decode("utf-8", errors="ignore")
        space = cut.rfind(" ")
        if space > len(cut) // 2:
            cut = cut[: space + 1]
        amp = cut.rfind("&")  # never cut inside an entity
        if amp > cut.rfind(";"):
            cut = cut[:amp] or cut
        out.append(cut)
        text = text[len(cut) :]
    if text:
        out.append(text)
    return out
