"""Long paragraphs are scored where the activity is: every run of two consecutive sentences is a
window, and a label's window score is its best window's."""

from __future__ import annotations

import re
from collections.abc import Callable

import numpy as np

WINDOW_SENTENCES = 2
_SENTENCE_END = re.compile(r"[。！？!?；;…]+[”’」』\"']?|\n+")


def sentence_windows(text: str, size: int = WINDOW_SENTENCES) -> list[tuple[int, int]]:
    """(start, end) of every run of `size` consecutive sentences; one span for a short text."""
    bounds, start = [], 0
    for m in _SENTENCE_END.finditer(text):
        if m.end() > start:
            bounds.append((start, m.end()))
            start = m.end()
    if start < len(text):
        bounds.append((start, len(text)))
    if len(bounds) <= size:
        return [(0, len(text))]
    return [(bounds[i][0], bounds[i + size - 1][1]) for i in range(len(bounds) - size + 1)]


def best_windows(
    proba: Callable[[list[str]], np.ndarray], texts: list[str]
) -> tuple[np.ndarray, list[list[tuple[int, int]]], list[np.ndarray]]:
    """Each text's best window probability per label (n, n_labels), its windows, and for each
    text and label the index of the window that scored it."""
    spans = [sentence_windows(t) for t in texts]
    flat = [t[s:e] for t, sp in zip(texts, spans) for s, e in sp]
    probs = proba(flat) if flat else np.zeros((0, 0))
    out = np.zeros((len(texts), probs.shape[1] if len(flat) else 0))
    best: list[np.ndarray] = []
    k = 0
    for i, sp in enumerate(spans):
        block = probs[k : k + len(sp)]
        out[i] = block.max(0)
        best.append(block.argmax(0))
        k += len(sp)
    return out, spans, best
