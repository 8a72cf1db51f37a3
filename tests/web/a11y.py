"""A small accessibility check of one HTML page, with html.parser (no browser needed).

Checks what can be checked from markup alone (WCAG 2.2 AA, the parts that are structure): the page has a
language, exactly one h1, headings that never skip a level, a label for every form field, alt text on every
image, and a skip link to a main landmark.
"""

from __future__ import annotations

from html.parser import HTMLParser

FIELDS = {"input", "select", "textarea"}
UNLABELLED_TYPES = {"hidden", "submit", "button", "reset", "image"}


class _Collector(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.lang: str | None = None
        self.headings: list[int] = []
        self.fields: list[dict[str, str | None]] = []
        self.label_for: set[str] = set()
        self.label_depth = 0
        self.images: list[dict[str, str | None]] = []
        self.ids: list[str] = []
        self.main = 0
        self.skip_link = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if a.get("id"):
            self.ids.append(a["id"] or "")
        if tag == "html":
            self.lang = a.get("lang")
        elif len(tag) == 2 and tag[0] == "h" and tag[1] in "123456":
            self.headings.append(int(tag[1]))
        elif tag == "label":
            self.label_depth += 1
            if a.get("for"):
                self.label_for.add(a["for"] or "")
        elif tag in FIELDS and a.get("type") not in UNLABELLED_TYPES:
            self.fields.append({**a, "_wrapped": "1" if self.label_depth else None})
        elif tag == "img":
            self.images.append(a)
        elif tag == "main":
            self.main += 1
        elif tag == "a" and a.get("href") == "#main" and a.get("class") == "skip-link":
            self.skip_link = True

    def handle_endtag(self, tag: str) -> None:
        if tag == "label":
            self.label_depth -= 1


def problems(html: str) -> list[str]:
    """Everything wrong with ``html``; an empty list when the page passes."""
    c = _Collector()
    c.feed(html)
    out = []
    if not c.lang:
        out.append("<html> has no lang attribute")
    if c.headings.count(1) != 1:
        out.append(f"expected exactly one h1, found {c.headings.count(1)}")
    previous = 0
    for level in c.headings:
        if level > previous + 1:
            out.append(f"heading h{level} follows h{previous}: a level is skipped")
        previous = level
    for f in c.fields:
        labelled = (
            f.get("id") in c.label_for or f.get("aria-label") or f.get("aria-labelledby") or f.get("_wrapped")
        )
        if not labelled:
            out.append(f"form field {f.get('name') or f.get('id')!r} has no label")
    out += [f"image {i.get('src')!r} has no alt text" for i in c.images if i.get("alt") is None]
    if c.main != 1:
        out.append(f"expected one <main> landmark, found {c.main}")
    if not c.skip_link:
        out.append("no skip link to #main")
    duplicates = sorted({i for i in c.ids if c.ids.count(i) > 1})
    if duplicates:
        out.append(f"duplicate ids: {duplicates}")
    return out
