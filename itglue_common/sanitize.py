"""Section HTML reduced to a small allowlist (nh3): mail bodies and feed texts are
untrusted, IT Glue shows sections to every user, and exported HTML opens in a browser."""

from __future__ import annotations

import nh3

SAFE_TAGS: frozenset[str] = frozenset(
    {
        "a", "abbr", "b", "blockquote", "br", "caption", "code", "col", "colgroup", "dd",
        "del", "div", "dl", "dt", "em", "h1", "h2", "h3", "h4", "h5", "h6", "hr", "i",
        "ins", "kbd", "li", "mark", "ol", "p", "pre", "q", "s", "samp", "small", "span",
        "strike", "strong", "sub", "sup", "table", "tbody", "td", "tfoot", "th", "thead",
        "tr", "u", "ul",
    }
)  # fmt: skip
SAFE_ATTRIBUTES: dict[str, set[str]] = {
    "a": {"href", "title"},
    "abbr": {"title"},
    "td": {"colspan", "rowspan"},
    "th": {"colspan", "rowspan", "scope"},
    "col": {"span"},
    "colgroup": {"span"},
    "ol": {"start"},
}
IMAGE_ATTRIBUTES = {"src", "alt", "title", "width", "height"}
URL_SCHEMES = {"http", "https", "mailto"}


def sanitize_html(html: str, *, allow_images: bool = False) -> str:
    """``html`` reduced to the allowlist (scripts, styles, svg, handlers removed)."""
    tags = set(SAFE_TAGS)
    attributes = {k: set(v) for k, v in SAFE_ATTRIBUTES.items()}
    if allow_images:
        tags.add("img")
        attributes["img"] = set(IMAGE_ATTRIBUTES)
    return nh3.clean(
        html,
        tags=tags,
        attributes=attributes,
        url_schemes=set(URL_SCHEMES),
        link_rel="noopener noreferrer nofollow",
        strip_comments=True,
        clean_content_tags={"script", "style", "svg", "math", "noscript", "template", "title"},
    )
