"""Tag a whole article: segment it, tag each paragraph, derive article-level labels.

`ArticleResult` is the one result type: the CLI's `--json`, the service's responses and both
batch engines write `ArticleResult.to_record()`.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from .segment import segment
from .tagger import Tagger


@dataclass
class ParagraphResult:
    index: int
    start: int  # offsets into ArticleResult.text
    end: int
    text: str
    labels: list[str]
    scores: dict[str, float]
    evidence: dict[str, list[list[int]]]  # label -> [[start, end], ...] into ArticleResult.text


@dataclass
class ArticleResult:
    text: str  # the cleaned article text that offsets point into
    labels: list[str]
    scores: dict[str, float]
    paragraphs: list[ParagraphResult]

    def to_record(self) -> dict:
        """Plain JSON-ready data: text, labels, scores, paragraphs."""
        return asdict(self)


def tag_article(
    tagger: Tagger,
    text: str,
    evidence: bool = True,
    thresholds: float | dict[str, float] | None = None,
    fmt: str = "auto",
) -> ArticleResult:
    """Segment `text` (format 'auto', 'text', 'html' or 'markdown') and tag it.

    Offsets point into the cleaned article text, `ArticleResult.text`. Article-level rule: a
    label's article score is its highest paragraph score, and the article carries a label when
    at least one paragraph carries it. A case is often told in one paragraph of a long report;
    averaging would drown it."""
    article = segment(text, fmt)
    paragraphs = article.paragraphs
    results = tagger.tag([p.text for p in paragraphs], evidence=evidence, thresholds=thresholds)
    out = []
    for i, (p, r) in enumerate(zip(paragraphs, results)):
        ev = {label: [[p.start + s, p.start + e] for s, e in spans] for label, spans in r.evidence.items()}
        out.append(ParagraphResult(i, p.start, p.end, p.text, r.labels, r.scores, ev))
    scores = {l: max((r.scores[l] for r in results), default=0.0) for l in tagger.labels}
    labels = [l for l in tagger.labels if any(l in r.labels for r in results)]
    return ArticleResult(article.text, labels, scores, out)
