"""HTML and Markdown → plain lines of text, before segmentation.

Every step here takes time linear in the input, whatever the input, and no single regular
expression call runs over more than about `CHUNK` characters (so a worker thread never holds the
interpreter for long: /healthz and other requests keep being served). The HTML tokenizer only
moves forward (a comment or tag left open at the end of the input runs to the end, as in a
browser); the patterns either consume what they scan or scan regions that no other match
attempt scans again (no `[^]]*` that can run from every `[` to the end of the text).
"""

from __future__ import annotations

import html
import itertools
import re
from collections.abc import Iterator

CHUNK = 1 << 16  # characters: the most any one regular expression call looks at (about 1-5 ms)
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
_RAW_TEXT_TAGS = {"script", "style", "iframe", "noembed", "noframes", "title"}
_HTML_HINT = re.compile(r"</(?:p|div|span|font|section|td|li|a|strong|h\d)\s*+>|<br\s*+/?>|<p[\s>]|<div[\s>]", re.I)
_FRONT_MATTER_OPEN = re.compile(r"\s*+---\n")
_FRONT_MATTER_CLOSE = re.compile(r"[ \t]*+(?:\n|\Z)")
# Link and image patterns: the bracketed text stops at the next bracket and the target allows one
# level of balanced parentheses, so the regions different match attempts scan never overlap.
_TARGET = r"\((?:[^()]++|\([^()]*+\))*+\)"
_IMAGE = re.compile(r"!\[[^\[\]]*+\]" + _TARGET)
_LINK = re.compile(r"\[([^\[\]]*+)\]" + _TARGET)
_HEADING = re.compile(r"^\s{0,3}#{1,6}\s*", re.M)
_QUOTE = re.compile(r"^\s{0,3}>\s?", re.M)
# **, __, and a single * that opens or closes emphasis; every alternative starts with the
# character it removes, so the engine skips straight to candidates
_EMPHASIS = re.compile(r"\*\*|__|\*(?<![\w*]\*)(?=\S)|\*(?<=\S\*)(?![\w*])")
_MD_HINT = re.compile(r"^(?:---\s*$|#{1,6}\s)|!\[[^\[\]]*+\]\(|\]" + _TARGET + r"|\*\*[^*\n]++\*\*", re.M)

# One HTML token at a position (comments are found with str.find, before this is tried):
# declaration or processing instruction, end tag, start tag, text, or a lone "<". Possessive
# quantifiers: nothing is scanned twice. Matched within a window of CHUNK characters; a token
# longer than that (only in garbage) ends at the window's edge.
_TOKEN = re.compile(
    r"""
      (?P<bogus><[!?][^>]*+(?:>|\Z))
    | </(?P<end>[A-Za-z][^\s/>]*+)[^>]*+(?:>|\Z)
    | </[^>]*+(?:>|\Z)
    | <(?P<start>[A-Za-z][^\s/>]*+)
      (?P<attrs>(?:[^>=]++|=[ \t\r\n\f]*+(?:"[^"]*+(?:"|\Z)|'[^']*+(?:'|\Z))?+)*+)(?P<close>>|\Z)
    | (?P<text>(?:[^<]++|<(?=[^A-Za-z/!?]))++)
    | <
    """,
    re.S | re.X,
)


def chunks(text: str, size: int = CHUNK) -> Iterator[str]:
    """Consecutive pieces of `text` of about `size` characters, each ending at a line end (a
    line longer than `size` is one piece; see `break_long_lines`)."""
    pos, end = 0, len(text)
    while pos < end:
        cut = text.find("\n", pos + size)
        cut = end if cut < 0 else cut + 1
        yield text[pos:cut]
        pos = cut


def break_long_lines(text: str, limit: int = CHUNK) -> str:
    """Cut every line longer than `limit` characters into lines of `limit` characters. No
    article has such lines; garbage does, and every later step then works line by line. Linear:
    it looks at one newline per `limit / 2` characters, and only cuts where a whole block of
    that size has none."""
    if len(text) <= limit:
        return text
    half, out, done, k = limit // 2, [], 0, 0
    while k < len(text):
        if text.find("\n", k, k + half) >= 0:
            k += half
            continue
        start = text.rfind("\n", 0, k) + 1  # the line that contains this block without a newline
        end = text.find("\n", k)
        end = len(text) if end < 0 else end
        if end - start > limit:
            out.append(text[done:start])
            out.append("\n".join(text[i : min(i + limit, end)] for i in range(start, end, limit)))
            done = end
        k = end + 1
    if not out:
        return text
    out.append(text[done:])
    return "".join(out)


def detect_format(text: str) -> str:
    """'html', 'markdown' or 'text', from the markup the text contains."""
    if len(list(itertools.islice(_HTML_HINT.finditer(text), 2))) >= 2:
        return "html"
    if any(_MD_HINT.search(chunk) for chunk in chunks(text)):
        return "markdown"
    return "text"


def html_to_text(text: str) -> str:
    """Text content of an HTML document or fragment: block elements and <br> become line breaks,
    scripts, styles and other non-content elements are dropped, entities are decoded."""
    parts: list[str] = []
    skipping, pos, end = 0, 0, len(text)
    while pos < end:
        if text.startswith("<!--", pos):  # a comment: to "-->" (or "<!-->", "<!--->"), else to the end
            if text.startswith(">", pos + 4) or text.startswith("->", pos + 4):
                pos = text.index(">", pos + 4) + 1
            else:
                close = text.find("-->", pos + 4)
                pos = end if close < 0 else close + 3
            continue
        m = _TOKEN.match(text, pos, min(end, pos + CHUNK))
        assert m is not None  # the last alternative matches any "<"
        pos = m.end()
        if m.group("text") is not None or m.group(0) == "<":
            if not skipping:
                parts.append(html.unescape(m.group(0)))
            continue
        tag = (m.group("start") or m.group("end") or "").lower()
        if not tag:
            continue  # declarations, processing instructions, bogus end tags
        if m.group("end") is not None:
            if tag in _SKIP_TAGS:
                skipping = max(0, skipping - 1)
            elif tag in _BLOCK_TAGS:
                parts.append("\n\n")
            continue
        if m.group("close") != ">":  # no ">" follows: not a tag but text ("x<y" at the end)
            if not skipping:
                parts.append(html.unescape(m.group(0)))
            continue
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


def _markdown_chunk(text: str) -> str:
    if "](" in text:
        text = _IMAGE.sub("", text)  # images
        text = _LINK.sub(r"\1", text)  # links keep their text
    if "#" in text:
        text = _HEADING.sub("", text)  # headings
    if ">" in text:
        text = _QUOTE.sub("", text)  # quotes
    if "*" in text or "_" in text:
        text = _EMPHASIS.sub("", text)  # emphasis
    return text


def markdown_to_text(text: str) -> str:
    text = break_long_lines(_strip_comments(text))
    return "".join(_markdown_chunk(chunk) for chunk in chunks(text))


def strip_front_matter(text: str) -> str:
    """Remove YAML front matter (`---` lines around it) at the start of the text."""
    opening = _FRONT_MATTER_OPEN.match(text)
    if not opening:
        return text
    pos = opening.end()
    while True:
        close = text.find("\n---", pos)
        if close < 0:
            return text
        rest = _FRONT_MATTER_CLOSE.match(text, close + 4)
        if rest:
            return text[rest.end() :]
        pos = close + 1


def to_plain(text: str, fmt: str = "auto") -> str:
    """Plain text of an article in `fmt` ('auto', 'text', 'html' or 'markdown')."""
    text = strip_front_matter(text)  # scrapers put YAML front matter before any format
    if fmt == "auto":
        fmt = detect_format(text)
    if fmt == "html":
        return html_to_text(text)
    if fmt == "markdown":
        return markdown_to_text(text)
    if fmt == "text":
        return text
    raise ValueError(f"unknown format {fmt!r}; expected auto, text, html or markdown")
