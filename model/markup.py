"""HTML and Markdown → plain lines of text, before segmentation.

Every step here runs in time linear in the input, whatever the input: the HTML tokenizer moves
forward only (a tag or comment left open at the end of the input runs to the end, as in a
browser), and every regular expression either consumes what it scans or scans a region that no
other match attempt scans again (no `[^]]*` that can run to the end of the text from every `[`).
"""

from __future__ import annotations

import html
import itertools
import re

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
_SKIP_TAGS = {"script", "style", "noscript", "head", "title", "template", "iframe", "svg", "noembed", "noframes"}
# Elements whose content is not markup: it runs to the matching end tag, whatever it contains.
_RAW_TEXT_TAGS = {"script", "style", "iframe", "noembed", "noframes", "title", "textarea", "xmp"}
_HTML_HINT = re.compile(r"</(?:p|div|span|font|section|td|li|a|strong|h\d)\s*+>|<br\s*+/?>|<p[\s>]|<div[\s>]", re.I)
_FRONT_MATTER = re.compile(r"\A\s*---\n.*?\n---[ \t]*(?:\n|\Z)", re.S)
# Link and image patterns: the bracketed text stops at the next bracket and the target allows one
# level of balanced parentheses, so the regions different match attempts scan never overlap.
_TARGET = r"\((?:[^()]++|\([^()]*+\))*+\)"
_IMAGE = re.compile(r"!\[[^\[\]]*+\]" + _TARGET)
_LINK = re.compile(r"\[([^\[\]]*+)\]" + _TARGET)
_MD_HINT = re.compile(r"^(?:---\s*$|#{1,6}\s)|!\[[^\[\]]*+\]\(|\]" + _TARGET + r"|\*\*[^*\n]++\*\*", re.M)

# One HTML token at a position: comment, declaration or processing instruction, end tag, start
# tag, text, or a lone "<". Possessive quantifiers: nothing is ever scanned twice.
_TOKEN = re.compile(
    r"""
      (?P<comment><!--(?:-?>|.*?(?:-->|\Z)))
    | (?P<bogus><[!?][^>]*+(?:>|\Z))
    | </(?P<end>[A-Za-z][^\s/>]*+)[^>]*+(?:>|\Z)
    | </[^>]*+(?:>|\Z)
    | <(?P<start>[A-Za-z][^\s/>]*+)
      (?P<attrs>(?:[^>=]++|=[ \t\r\n\f]*+(?:"[^"]*+(?:"|\Z)|'[^']*+(?:'|\Z))?+)*+)(?P<close>>|\Z)
    | (?P<text>[^<]++)
    | <
    """,
    re.S | re.X,
)


def detect_format(text: str) -> str:
    """'html', 'markdown' or 'text', from the markup the text contains."""
    if len(list(itertools.islice(_HTML_HINT.finditer(text), 2))) >= 2:
        return "html"
    if _MD_HINT.search(text):
        return "markdown"
    return "text"


def html_to_text(text: str) -> str:
    """Text content of an HTML document or fragment: block elements and <br> become line breaks,
    scripts, styles and other non-content elements are dropped, entities are decoded."""
    parts: list[str] = []
    skipping, pos, end = 0, 0, len(text)
    while pos < end:
        m = _TOKEN.match(text, pos)
        assert m is not None  # the last alternative matches any "<"
        pos = m.end()
        if m.group("text") is not None:
            if not skipping:
                parts.append(html.unescape(m.group("text")))
            continue
        tag = (m.group("start") or m.group("end") or "").lower()
        if not tag:
            if m.group(0) == "<" and not skipping:
                parts.append("<")
            continue  # comments, declarations, bogus end tags
        if m.group("end") is not None:
            if tag in _SKIP_TAGS:
                skipping = max(0, skipping - 1)
            elif tag in _BLOCK_TAGS:
                parts.append("\n\n")
            continue
        if m.group("close") != ">":
            continue  # a start tag cut off by the end of the input
        if m.group("attrs").endswith("/"):  # <br/>, <p/>: only a line break counts
            if tag == "br":
                parts.append("\n")
            continue
        if tag in _RAW_TEXT_TAGS:
            closing = re.compile(r"</" + re.escape(tag) + r"(?=[\s/>]|\Z)", re.I).search(text, pos)
            content_end = closing.start() if closing else end
            if tag not in _SKIP_TAGS and not skipping:
                parts.append(html.unescape(text[pos:content_end]))
            pos = content_end  # the end tag itself is the next token
            continue
        if tag in _SKIP_TAGS:
            skipping += 1
        elif tag == "br":
            parts.append("\n")
        elif tag in _BLOCK_TAGS:
            parts.append("\n\n")
    return "".join(parts)


def _strip_comments(text: str) -> str:
    """Remove closed <!-- … --> comments; an unclosed one stays as text. Linear: once no "-->"
    follows an opening, none follows any later opening either."""
    out, pos = [], 0
    while True:
        start = text.find("<!--", pos)
        if start < 0:
            break
        close = text.find("-->", start + 4)
        if close < 0:
            break
        out.append(text[pos:start])
        pos = close + 3
    out.append(text[pos:])
    return "".join(out)


def markdown_to_text(text: str) -> str:
    text = _strip_comments(text)
    text = _IMAGE.sub("", text)  # images
    text = _LINK.sub(r"\1", text)  # links keep their text
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
