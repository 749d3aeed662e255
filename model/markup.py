"""HTML and Markdown → plain lines of text, before segmentation."""

from __future__ import annotations

import re
from html.parser import HTMLParser

_BLOCK_TAGS = {
    "p",
    "div",
    "section",
    "article",
    "li",
    "ul",
    "ol",
    "tr",
    "table",
    "h1",
    "h2",
    "h3",
    "h4",
    "h5",
    "h6",
    "blockquote",
    "header",
    "footer",
    "pre",
    "dd",
    "dt",
    "figure",
    "figcaption",
}
_SKIP_TAGS = {"script", "style", "noscript", "head", "title", "template", "iframe", "svg"}
_HTML_HINT = re.compile(r"</(?:p|div|span|font|section|td|li|a|strong|h\d)\s*>|<br\s*/?>|<p[\s>]|<div[\s>]", re.I)
_FRONT_MATTER = re.compile(r"\A\s*---\n.*?\n---[ \t]*(?:\n|\Z)", re.S)
_MD_HINT = re.compile(r"^(?:---\s*$|#{1,6}\s)|!\[[^\]]*\]\(|\]\([^)]*\)|\*\*[^*\n]+\*\*", re.M)


class _TextExtractor(HTMLParser):
    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.skipping = 0

    def handle_starttag(self, tag, attrs):
        if tag in _SKIP_TAGS:
            self.skipping += 1
        elif tag == "br":
            self.parts.append("\n")
        elif tag in _BLOCK_TAGS:
            self.parts.append("\n\n")

    def handle_startendtag(self, tag, attrs):
        if tag == "br":
            self.parts.append("\n")

    def handle_endtag(self, tag):
        if tag in _SKIP_TAGS:
            self.skipping = max(0, self.skipping - 1)
        elif tag in _BLOCK_TAGS:
            self.parts.append("\n\n")

    def handle_data(self, data):
        if not self.skipping:
            self.parts.append(data)


def detect_format(text: str) -> str:
    """'html', 'markdown' or 'text', from the markup the text contains."""
    if len(_HTML_HINT.findall(text)) >= 2:
        return "html"
    if _MD_HINT.search(text):
        return "markdown"
    return "text"


def html_to_text(text: str) -> str:
    text = re.sub(r"<!--.*?-->", "", text, flags=re.S)
    parser = _TextExtractor()
    parser.feed(text)
    parser.close()
    return "".join(parser.parts)


def markdown_to_text(text: str) -> str:
    text = re.sub(r"<!--.*?-->", "", text, flags=re.S)
    text = re.sub(r"!\[[^\]]*\]\([^)]*\)", "", text)  # images
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", text)  # links keep their text
    text = re.sub(r"^\s{0,3}#{1,6}\s*", "", text, flags=re.M)  # headings
    text = re.sub(r"^\s{0,3}>\s?", "", text, flags=re.M)  # quotes
    text = re.sub(r"\*\*|__|(?<![\w*])\*(?=\S)|(?<=\S)\*(?![\w*])", "", text)  # emphasis
    return text


def to_plain(text: str, fmt: str = "auto") -> str:
    """Plain text of an article in `fmt` ('auto', 'text', 'html' or 'markdown')."""
    text = _FRONT_MATTER.sub("", text)  # scrapers put YAML front matter before any format
    if fmt == "auto":
        fmt = detect_format(text)
    if fmt == "html":
        return html_to_text(text)
    if fmt == "markdown":
        return markdown_to_text(text)
    if fmt == "text":
        return text
    raise ValueError(f"unknown format {fmt!r}; expected auto, text, html or markdown")
