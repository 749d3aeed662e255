"""Tag a whole article: segment it, tag each paragraph, derive article-level labels."""
from __future__ import annotations

from dataclasses import dataclass

from .segment import segment
from .tagger import Tagger


@dataclass
class ArticleResult:
    text: str                  # the text that offsets point into
    labels: list[str]
    scores: dict[str, float]
    paragraphs: list[dict]     # index, start, end, text, labels, scores, evidence

    def to_dict(self) -> dict:
        return {"text": self.text, "labels": self.labels, "scores": self.scores, "paragraphs": self.paragraphs}


def tag_article(tagger: Tagger, text: str, evidence: bool = True,
                thresholds: float | dict[str, float] | None = None, fmt: str = "auto") -> ArticleResult:
    """Segment `text` (format 'auto', 'text', 'html' or 'markdown') and tag it.

    Offsets point into the cleaned article text, `ArticleResult.text`. Article-level rule: a
    label's article score is its highest paragraph score, and the article carries a label when
    at least one paragraph carries it. A case is often told in
    one paragraph of a long report; averaging would drown it."""
    article = segment(text, fmt)
    paragraphs = article.paragraphs
    results = tagger.tag([p.text for p in paragraphs], evidence=evidence, thresholds=thresholds)
    out = []
    for i, (p, r) in enumerate(zip(paragraphs, results)):
        ev = {label: [[p.start + s, p.start + e] for s, e in spans] for label, spans in r.evidence.items()}
        out.append({"index": i, "start": p.start, "end": p.end, "text": p.text,
                    "labels": r.labels, "scores": r.scores, "evidence": ev})
    scores = {l: max((r.scores[l] for r in results), default=0.0) for l in tagger.labels}
    labels = [l for l in tagger.labels if any(l in r.labels for r in results)]
    return ArticleResult(article.text, labels, scores, out)
