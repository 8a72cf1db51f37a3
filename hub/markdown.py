"""Guide bodies as safe HTML: CommonMark through markdown-it-py, with nothing a guide's author can inject.

A guide's body comes from any member hub, so it is untrusted text. Three rules make it inert:

- ``html=False``: raw HTML in the body (``<script>``, ``<img onerror=…>``, ``<iframe>``) is escaped and shown
  as text, never passed through;
- links and autolinks keep only ``http:``, ``https:`` and ``mailto:`` targets (:data:`ALLOWED_SCHEMES`); any
  other target (``javascript:``, ``data:``, ``vbscript:``, relative paths) leaves the text without a link;
- images are not rendered (the image rule is off): a guide cannot make a reader's browser fetch a tracking
  pixel, and the page's Content-Security-Policy would block a third-party image anyway.

:func:`plain_text` turns Markdown into the words a reader sees, for snippets and summaries in lists
(``**a week ahead**`` → ``a week ahead``); the page escapes it like any other text.

Headings are renumbered so that the body's outline nests under the page's own heading: the body's top level
becomes ``base_level`` and no heading skips a level (WCAG 2.2 SC 1.3.1, headings as structure).
"""

from __future__ import annotations

import re
from typing import Any

from markdown_it import MarkdownIt
from markdown_it.token import Token

__all__ = ["ALLOWED_SCHEMES", "plain_text", "render_markdown", "safe_link"]

#: URL schemes a guide may link to.
ALLOWED_SCHEMES = frozenset({"http", "https", "mailto"})
_SCHEME = re.compile(r"^([a-zA-Z][a-zA-Z0-9+.-]*):")
# Browsers drop ASCII tab/newline and leading control characters before reading a scheme ("java\tscript:"),
# so a link is judged after the same clean-up (WHATWG URL standard, "basic URL parser").
_IGNORED = re.compile(r"[\x00-\x20\x7f]")


def safe_link(url: str) -> bool:
    """Whether ``url`` may become an ``href``: an absolute http(s) or mailto URL."""
    match = _SCHEME.match(_IGNORED.sub("", url))
    return match is not None and match.group(1).lower() in ALLOWED_SCHEMES


def _parser() -> MarkdownIt:
    md = MarkdownIt("commonmark", {"html": False, "linkify": False, "typographer": False})
    md.enable(["table", "strikethrough"])
    md.disable("image")
    md.validateLink = safe_link  # type: ignore[method-assign]

    def link_open(renderer: Any, tokens: list[Token], idx: int, options: Any, env: Any) -> str:
        # Guides link out to other sites: don't pass the reader's session or referrer along.
        tokens[idx].attrSet("rel", "nofollow noopener noreferrer")
        return str(renderer.renderToken(tokens, idx, options, env))

    md.add_render_rule("link_open", link_open)
    return md


_MD = _parser()


def _renumber_headings(tokens: list[Token], base_level: int) -> None:
    levels = [int(t.tag[1]) for t in tokens if t.type == "heading_open"]
    if not levels:
        return
    top = min(levels)
    previous = base_level - 1
    opened: list[str] = []
    for token in tokens:
        if token.type == "heading_open":
            wanted = base_level + int(token.tag[1]) - top
            level = max(base_level, min(wanted, previous + 1, 6))
            previous = level
            token.tag = f"h{level}"
            opened.append(token.tag)
        elif token.type == "heading_close":
            token.tag = opened.pop()


def render_markdown(text: str, *, base_level: int = 2) -> str:
    """Render untrusted Markdown to HTML that is safe to insert into a page unescaped.

    ``base_level`` is the heading level the body's top-level headings get (2 under a page's ``h1``).
    """
    env: dict[str, Any] = {}
    tokens = _MD.parse(text, env)
    _renumber_headings(tokens, base_level)
    return str(_MD.renderer.render(tokens, _MD.options, env))


# Plain text keeps images' alt text and every construct's words; nothing it returns is HTML.
_PLAIN = MarkdownIt("commonmark", {"html": False}).enable(["table", "strikethrough"])
#: Emphasis and code markers left over where a snippet cut a span in two (``**a week`` of ``**a week ahead**``).
#: Only asterisks: underscores are as often part of a word (``snake_case``) as markup.
_STRAY = re.compile(r"(?<!\w)\*{1,3}(?=\w)|(?<=\w)\*{1,3}(?!\w)|`+|~~")
_BLOCK_ENDS = {"paragraph_close", "heading_close", "list_item_close", "blockquote_close", "tr_close",
               "th_close", "td_close", "code_block", "fence"}


def _words(tokens: list[Token]) -> list[str]:
    out: list[str] = []
    for token in tokens:
        if token.type == "inline" and token.children is not None:
            out += _words(token.children)
        elif token.type in ("text", "code_inline"):
            out.append(token.content)
        elif token.type == "image":
            out.append(token.content or "")
        elif token.type in ("softbreak", "hardbreak") or token.type in _BLOCK_ENDS:
            if token.type in ("code_block", "fence"):
                out.append(token.content)
            out.append(" ")
    return out


def plain_text(text: str, *, limit: int = 0) -> str:
    """The text of Markdown ``text`` on one line, without its markup; cut at a word to ``limit`` characters
    (with "…") when ``limit`` is set. For snippets and summaries, which may be fragments of a guide."""
    words = "".join(_words(_PLAIN.parse(text)))
    words = " ".join(_STRAY.sub("", words).split())
    if limit and len(words) > limit:
        cut = words[: limit - 1]
        words = (cut.rsplit(" ", 1)[0] if " " in cut else cut).rstrip(" ,;:.") + "…"
    return words
