"""Split an article into case paragraphs, keeping character offsets into the text."""
from __future__ import annotations

import re
from dataclasses import dataclass

_BLOCK = re.compile(r"(?:[^\n]*\S[^\n]*(?:\n|\Z))+")  # a run of non-blank lines


@dataclass(frozen=True)
class Paragraph:
    start: int
    end: int
    text: str


def segment(text: str) -> list[Paragraph]:
    """Paragraphs separated by blank lines, stripped; `text[p.start:p.end] == p.text`."""
    out = []
    for m in _BLOCK.finditer(text):
        block = m.group()
        start = m.start() + len(block) - len(block.lstrip())
        end = m.end() - (len(block) - len(block.rstrip()))
        out.append(Paragraph(start, end, text[start:end]))
    return out
