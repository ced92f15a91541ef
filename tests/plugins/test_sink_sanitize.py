"""Section HTML sanitizing (nh3 with the sink's allowlist)."""

from __future__ import annotations

from pipeline import sanitize_html


def test_script_and_style_are_removed_with_their_content() -> None:
    out = sanitize_html("<p>hi</p><script>alert(1)</script><style>p{color:red}</style>")
    assert out == "<p>hi</p>"


def test_svg_is_removed_entirely() -> None:
    out = sanitize_html('<p>a</p><svg onload="alert(1)"><circle r="5"/><script>x()</script></svg>')
    assert "svg" not in out and "circle" not in out and "alert" not in out
    assert out == "<p>a</p>"


def test_event_handlers_and_styles_are_stripped() -> None:
    out = sanitize_html('<p onclick="steal()" style="background:url(x)">text</p>')
    assert out == "<p>text</p>"


def test_links_keep_safe_schemes_only() -> None:
    out = sanitize_html('<a href="javascript:alert(1)">x</a> <a href="https://example.org/">y</a>')
    assert "javascript" not in out
    assert '<a href="https://example.org/" rel="noopener noreferrer nofollow">y</a>' in out


def test_structure_is_kept() -> None:
    html = (
        "<h2>Title</h2><ul><li>one</li></ul>"
        '<table><tr><td colspan="2">cell</td></tr></table><pre>code</pre>'
    )
    out = sanitize_html(html)
    for tag in ("<h2>", "<li>one</li>", 'colspan="2"', "<pre>code</pre>", "<table>"):
        assert tag in out


def test_images_only_when_allowed() -> None:
    html = '<p>x<img src="https://tracker.example/p.gif" onerror="x()"></p>'
    assert sanitize_html(html) == "<p>x</p>"
    out = sanitize_html(html, allow_images=True)
    assert '<img src="https://tracker.example/p.gif">' in out and "onerror" not in out
    assert "data:" not in sanitize_html('<img src="data:image/png;base64,AAAA">', allow_images=True)


def test_iframes_forms_and_comments_go() -> None:
    out = sanitize_html('<iframe src="https://x"></iframe><form><input></form><!-- c --><b>k</b>')
    assert out == "<b>k</b>"
