"""hub/markdown.py: guide bodies render as CommonMark with nothing a guide's author can inject."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hub.markdown import render_markdown, safe_link


def test_commonmark_renders() -> None:
    html = render_markdown("Some **bold** and a [link](https://example.coop).\n\n- one\n- two\n")
    assert "<strong>bold</strong>" in html
    assert '<a href="https://example.coop" rel="nofollow noopener noreferrer">link</a>' in html
    assert "<ul>\n<li>one</li>" in html


@pytest.mark.parametrize(
    "raw",
    [
        "<script>alert(1)</script>",
        "<img src=x onerror=alert(1)>",
        "<iframe src=https://evil.example>",
        '<a href="javascript:alert(1)">x</a>',
        "<style>body{display:none}</style>",
        "<svg onload=alert(1)>",
    ],
)
def test_raw_html_is_escaped(raw: str) -> None:
    html = render_markdown(f"before\n\n{raw}\n\nafter {raw}")
    assert "<" + raw[1:] not in html
    assert "&lt;" in html


@pytest.mark.parametrize(
    "url",
    [
        "javascript:alert(1)",
        "JaVaScRiPt:alert(1)",
        "java\tscript:alert(1)",
        " javascript:alert(1)",
        "data:text/html,<script>alert(1)</script>",
        "vbscript:msgbox",
        "file:///etc/passwd",
        "/relative",
        "//evil.example",
    ],
)
def test_unsafe_link_targets_are_not_links(url: str) -> None:
    for text in (f"[x]({url})", f"<{url}>", f"[x][r]\n\n[r]: {url}"):
        assert "href" not in render_markdown(text), text
    assert not safe_link(url)


@pytest.mark.parametrize(
    "url", ["http://example.coop", "https://example.coop/a?b=c", "mailto:hi@example.coop"]
)
def test_safe_link_targets_are_links(url: str) -> None:
    assert safe_link(url)
    assert "href=" in render_markdown(f"[x]({url})")


def test_images_are_not_loaded() -> None:
    html = render_markdown("![a tracking pixel](https://tracker.example/p.png)")
    assert "<img" not in html


def test_headings_nest_under_the_page_and_never_skip() -> None:
    html = render_markdown("# A\n\n### B\n\n###### C\n\n## D\n", base_level=3)
    assert re.findall(r"<(h\d)>", html) == ["h3", "h4", "h5", "h4"]
    assert re.findall(r"</(h\d)>", html) == ["h3", "h4", "h5", "h4"]
    assert re.findall(r"<(h\d)>", render_markdown("### only\n", base_level=2)) == ["h2"]


@given(st.text(alphabet=st.sampled_from(list("<>\"'&=:/ ()[]!#*`\nascriptjvhrefonload")), max_size=200))
def test_no_input_produces_a_tag_or_attribute_it_should_not(text: str) -> None:
    html = render_markdown(text)
    tags = set(re.findall(r"<([a-zA-Z][a-zA-Z0-9]*)", html))
    assert tags <= {
        "p",
        "a",
        "h2",
        "h3",
        "h4",
        "h5",
        "h6",
        "em",
        "strong",
        "code",
        "pre",
        "ul",
        "ol",
        "li",
        "blockquote",
        "hr",
        "br",
        "table",
        "thead",
        "tbody",
        "tr",
        "th",
        "td",
        "s",
    }, tags
    for href in re.findall(r'href="([^"]*)"', html):
        assert safe_link(href), href
    assert not re.search(r"<[^>]*\son[a-z]+=", html)
