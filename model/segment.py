"""Split an article into case paragraphs, dropping boilerplate.

One segmenter serves the CLI, the service and batch tagging. The result's `text` is the cleaned
article (paragraphs joined by blank lines); every offset points into it.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

from .markup import CHUNK, break_long_lines, chunks, to_plain

# Lines that WeChat, news sites and police accounts wrap around the article itself.
_BOILERPLATE = re.compile(
    r"^(?:微信扫一扫.*|关注该公众号|使用小程序|使用完整服务|继续滑动看下一个|向上滑动看下一个|轻触阅读原文|阅读原文|"
    r"预览时标签不可点|知道了|取消|允许|×|分析|视频|小程序|赞|点赞|在看|分享|转发|留言|收藏|听过|写留言|推荐|"
    r"[，,]?轻点两下取消(?:赞|在看)|←?扫码关注我们|扫码订阅.*|点击(?:下图|上方|蓝字).{0,12}|最新评论|举报/?反馈|"
    r"\**END\**|-+\s*END\s*-+|分享收藏点赞在看|好看你就分享.*|.*点个三连吧[！!]?|(?:编辑|责编|责任编辑|审核|来源|图片|"
    r"文字|作者|文字/编辑|图/文|校对|监制|出品)\s*[:：/｜|].{0,30}|[（(]来源[:：].{0,30}[）)]|.{0,16}(?:融媒体中心|公众号)出品|"
    r"征订热线.{0,20}|邮发代号.{0,12}|海量资讯.{0,20}APP)$"
)
_RELATED = re.compile(r"^(?:相关阅读|阅读推荐|推荐阅读|往期推荐|往期回顾|延伸阅读|相关新闻|热门推荐)[:：]?$")
_ONLY_PUNCT = re.compile(r"^[\W_]*$")
_SENTENCE_END = "。！？；!?;…”」』"
# A new case starts at a numbering marker after a sentence end: the match starts at that sentence
# end (a character the engine can skip to) and the case right after it.
_CASE_START = re.compile(
    r"[。！？；!?;]\s*(?=(?:\d{1,2}[、．.](?!\d)|[一二三四五六七八九十]{1,3}、|[（(][一二三四五六七八九十\d]{1,3}[）)]))"
)
_CASE_REACH = 64  # characters a case-start match looks at beyond where it starts
_HARD_WRAP = 40  # a line this long that does not end a sentence continues on the next line
# A paragraph longer than this is cut (at a sentence end when there is one in its second half), so
# that the work per paragraph (n-gram evidence, encoder windows) is bounded whatever the input.
MAX_PARAGRAPH_CHARS = 3000
_BLANK_RUN = re.compile(r"\n(?:[ \t\r\u3000\u00a0]*+\n)++")  # consecutive blank lines: one is enough
_SPACES = re.compile(r"[ \t\u3000\u00a0]+")
_BULLET = re.compile(r"[-*+]\s")
_BULLET_PREFIX = re.compile(r"^[-*+]\s+")
_CUT_AFTER = re.compile(r"[。！？；!?;…]+[”’」』\"']?")


@dataclass(frozen=True)
class Paragraph:
    start: int
    end: int
    text: str


@dataclass(frozen=True)
class Article:
    text: str  # the cleaned article
    paragraphs: list[Paragraph]


def is_boilerplate(line: str) -> bool:
    return bool(len(line) < 2 or _ONLY_PUNCT.match(line) or _BOILERPLATE.match(line))


def _raw_lines(text: str) -> Iterator[str]:
    """The lines of `text`, runs of blank lines as one, read a chunk at a time (long lines cut:
    see `break_long_lines`), so that no single step looks at the whole of a huge text."""
    for chunk in chunks(break_long_lines(text)):
        yield from _BLANK_RUN.sub("\n\n", chunk.removesuffix("\n")).split("\n")


def _lines(text: str) -> list[str]:
    """The article's lines, whitespace collapsed; boilerplate lines become "" (a paragraph break)."""
    lines = []
    for raw in _raw_lines(text):
        line = _SPACES.sub(" ", raw).strip()
        if len(line) < 2:
            lines.append("")  # blank or a lone character: a paragraph break, never content
            continue
        if len(line) <= 5 and _RELATED.match(line):
            break  # related-reading lists run to the end of the article
        if line[0] in "-*+" and _BULLET.match(raw.strip()):
            if len(line) <= 8:
                continue  # tag clouds and keyword lists under the article
            line = _BULLET_PREFIX.sub("", line, count=1)
        lines.append("" if is_boilerplate(line) else line)
    return lines


def _paragraphs(lines: list[str]) -> list[str]:
    """Each line is a paragraph, except that a long line that does not end a sentence is
    hard-wrapped text and continues on the next line."""
    out: list[str] = []
    current: list[str] = []
    for line in lines:
        if not line:
            if current:
                out.append("".join(current))
            current = []
            continue
        current.append(line)
        if len(line) < _HARD_WRAP or line[-1] in _SENTENCE_END:
            out.append("".join(current))
            current = []
    if current:
        out.append("".join(current))
    return out


def _cut_long(paragraph: str, limit: int = MAX_PARAGRAPH_CHARS) -> list[str]:
    """Pieces of at most `limit` characters, cut after the last sentence end of each window's
    second half when there is one, else at the limit."""
    pieces, start = [], 0
    while len(paragraph) - start > limit:
        cut = start + limit
        for m in _CUT_AFTER.finditer(paragraph, start + limit // 2, start + limit):
            cut = m.end()
        pieces.append(paragraph[start:cut].strip())
        start = cut
    pieces.append(paragraph[start:].strip())
    return [p for p in pieces if p]


def split_cases(paragraph: str) -> list[str]:
    """'1、…。2、…' → one paragraph per numbered case."""
    cuts = [
        m.start() + 1
        for window in range(0, len(paragraph), CHUNK)  # one window at a time: short regex calls
        for m in _CASE_START.finditer(paragraph, window, min(len(paragraph), window + CHUNK + _CASE_REACH))
        if m.start() < window + CHUNK
    ]
    if not cuts:
        stripped = paragraph.strip()
        return [stripped] if stripped else []
    pieces = [paragraph[a:b].strip() for a, b in zip([0] + cuts, cuts + [len(paragraph)])]
    return [p for p in pieces if p]


def segment(text: str, fmt: str = "auto") -> Article:
    """Clean an article ('auto', 'text', 'html' or 'markdown') and split it into paragraphs."""
    pieces: list[str] = []
    for para in _paragraphs(_lines(to_plain(text, fmt))):
        for case in split_cases(para):
            for piece in _cut_long(case) if len(case) > MAX_PARAGRAPH_CHARS else (case,):
                if not pieces or piece != pieces[-1]:  # pages often repeat the title
                    pieces.append(piece)
    paragraphs: list[Paragraph] = []
    position = 0
    for piece in pieces:
        paragraphs.append(Paragraph(position, position + len(piece), piece))
        position += len(piece) + 2
    return Article("\n\n".join(pieces), paragraphs)
