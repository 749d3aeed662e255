"""Text normalisation shared by every model, the corpus checks and the segmenter.

`normalize` never changes the length of a string: character i of the result corresponds to
character i of the input, so evidence offsets computed on normalised text point straight into
the text the user sent.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from pathlib import Path

_CJK = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]")


@functools.cache
def _dictionary(name: str) -> dict[str, str]:
    """One-to-one character mappings from an OpenCC dictionary file (first candidate wins)."""
    import opencc  # opencc-python-reimplemented ships the dictionaries as text files

    path = Path(opencc.__file__).with_name("dictionary") / name
    table = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        src, _, targets = line.partition("\t")
        target = targets.split(" ")[0]
        if len(src) == 1 and len(target) == 1 and src != target:
            table[src] = target
    return table


@functools.cache
def _translation() -> dict[int, str]:
    table = {ord(k): v for k, v in _dictionary("TSCharacters.txt").items()}
    for code in range(0xFF01, 0xFF5F):  # full-width ASCII → half-width
        table[code] = chr(code - 0xFEE0)
    table[0x3000] = " "  # ideographic space
    table[0x00A0] = " "
    return table


def normalize(text: str) -> str:
    """Traditional → Simplified, full-width ASCII → half-width, NFC; length-preserving.

    >>> normalize("貓池與接碼平臺")
    '猫池与接码平台'
    """
    text = text.translate(_translation())
    nfc = unicodedata.normalize("NFC", text)
    return nfc if len(nfc) == len(text) else text


@functools.cache
def _traditional_only() -> frozenset[str]:
    """Characters that Traditional text uses and Simplified text does not."""
    simplified_sources = set(_dictionary("STCharacters.txt"))
    return frozenset(c for c in _dictionary("TSCharacters.txt") if c not in simplified_sources)


def is_traditional(text: str) -> bool:
    """True when the text is written in Traditional characters (≥2 and ≥3% of its CJK chars)."""
    cjk = _CJK.findall(text)
    if not cjk:
        return False
    marked = sum(c in _traditional_only() for c in cjk)
    return marked >= 2 and marked / len(cjk) >= 0.03


_HAN = "\u3400-\u9fff\uf900-\ufaff"
_PINYIN = "a-zāáǎàēéěèīíǐìōóǒòūúǔùǖǘǚǜü"
_ARTEFACTS = re.compile(
    # a character followed by its reading or variant in parentheses: 網(wǎng), 帳(賬)
    rf"(?<=[{_HAN}])[(（](?:[{_PINYIN}]{{1,6}}[1-5]?|[{_HAN}])[)）]"
    # a stray question mark where a converter failed, between two characters
    rf"|(?<=[{_HAN}])\?+(?=[{_HAN}])"
    # doubled punctuation: the repeats
    r"|(?<=([，。！？、；：,.!?]))\1+"
    # HTML entities left in text
    r"|&(?:nbsp|quot|amp|lt|gt|ldquo|rdquo|lsquo|rsquo|hellip|mdash|middot|#\d{2,6});"
)
_ENTITIES = {
    "&nbsp;": " ",
    "&quot;": '"',
    "&amp;": "&",
    "&lt;": "<",
    "&gt;": ">",
    "&ldquo;": "“",
    "&rdquo;": "”",
    "&lsquo;": "‘",
    "&rsquo;": "’",
    "&hellip;": "…",
    "&mdash;": "—",
    "&middot;": "·",
}


def strip_artefacts(text: str) -> tuple[str, list[int]]:
    """Remove what page converters and scrapers leave in text (readings or variants in
    parentheses, stray `?`, doubled punctuation, HTML entities).

    Returns the cleaned text and, for each of its characters, the index of the character of
    `text` it came from, so offsets computed on the cleaned text map back to the original:
    a span [s, e) of the cleaned text is [offsets[s], offsets[e - 1] + 1) of `text`.
    """
    out: list[str] = []
    offsets: list[int] = []
    last = 0
    for m in _ARTEFACTS.finditer(text):
        out.append(text[last : m.start()])
        offsets.extend(range(last, m.start()))
        token = m.group(0)
        if token.startswith("&"):
            repl = _ENTITIES.get(token) or (
                chr(int(token[2:-1])) if token[2:-1].isdigit() and int(token[2:-1]) < 0x110000 else ""
            )
            out.append(repl)
            offsets.extend([m.start()] * len(repl))
        last = m.end()
    out.append(text[last:])
    offsets.extend(range(last, len(text)))
    return "".join(out), offsets
