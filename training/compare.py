"""Side-by-side scores of several models on several data sets (`heichan eval --compare`).

For each data set and model: macro and micro F1, macro recall, the false-positive rate on
label-free paragraphs, and the macro-F1 of the Traditional and the noisy subsets. Whole
articles (the challenge articles) are scored at article level: the article's label set against
the union of its paragraphs' gold labels.
"""

from __future__ import annotations

import numpy as np

from heichan.labels import Taxonomy
from heichan.labels.profile import noise_kinds
from heichan.model.article import tag_article
from heichan.model.ngram import KeywordTagger
from heichan.model.tagger import Tagger
from heichan.model.text import is_traditional

from .data import LabelledSet, to_labelled_set
from .evaluate import compute_metrics

COLUMNS = ("macro_f1", "micro_f1", "recall", "fpr", "trad_f1", "noisy_f1")


def _row(P: np.ndarray, thresholds: np.ndarray, rows: list[dict], data: LabelledSet, labels: list[str]) -> dict:
    """`rows` as given (their raw text decides the Traditional and noisy subsets), `data` as scored."""
    m = compute_metrics(P, data, thresholds, labels)
    out = {
        "macro_f1": m["macro"]["f1"],
        "micro_f1": m["micro"]["f1"],
        "recall": m["macro"]["recall"],
        "fpr": m["label_free"]["false_positive_rate"],
        "n": m["n"],
    }
    for name, keep in (
        ("trad_f1", [is_traditional(r["text"]) for r in rows]),
        ("noisy_f1", [bool(noise_kinds(r["text"])) for r in rows]),
    ):
        idx = np.flatnonzero(keep)
        out[name] = compute_metrics(P[idx], data.subset(idx), thresholds, labels)["macro"]["f1"] if len(idx) else None
    return out


def score_paragraphs(tagger: Tagger, rows: list[dict], taxonomy: Taxonomy) -> dict:
    data = to_labelled_set(rows, tagger.labels, taxonomy)  # artefacts stripped, as at inference
    return _row(tagger.predict_proba(data.texts), tagger.thresholds, rows, data, tagger.labels)


def score_articles(tagger: Tagger, articles: list[dict], taxonomy: Taxonomy) -> dict:
    """Article-level scores: segment and tag each raw article, compare its label set."""
    labels = tagger.labels
    P = np.zeros((len(articles), len(labels)))
    for i, a in enumerate(articles):
        result = tag_article(tagger, a["raw"], evidence=False, fmt=a["format"])
        P[i] = [1.0 if l in result.labels else 0.0 for l in labels]
    rows = [
        {"text": a["raw"], "labels": a["article_labels"], "taxonomy_version": a.get("taxonomy_version")}
        for a in articles
    ]
    return _row(P, np.full(len(labels), 0.5), rows, to_labelled_set(rows, labels, taxonomy), labels)


def compare(
    taggers: dict[str, Tagger], datasets: dict[str, list[dict]], taxonomy: Taxonomy, articles: list[dict] | None = None
) -> dict[str, dict[str, dict]]:
    """{dataset: {model: scores}}; the keyword baseline is always one of the models."""
    taggers = {**taggers, "keyword baseline": KeywordTagger(taxonomy)}
    table: dict[str, dict[str, dict]] = {}
    for name, rows in datasets.items():
        table[name] = {m: score_paragraphs(t, rows, taxonomy) for m, t in taggers.items()}
    if articles:
        table["challenge articles"] = {m: score_articles(t, articles, taxonomy) for m, t in taggers.items()}
    return table


def format_comparison(table: dict[str, dict[str, dict]]) -> str:
    head = f"{'data':<20}{'model':<18}{'n':>5}" + "".join(f"{c:>10}" for c in COLUMNS)
    lines = [head, "-" * len(head)]
    for data, models in table.items():
        for model, s in models.items():
            cells = "".join(f"{s[c]:>10.3f}" if s.get(c) is not None else f"{'–':>10}" for c in COLUMNS)
            lines.append(f"{data:<20}{model:<18}{s['n']:>5}{cells}")
    lines.append(
        "recall is macro recall; fpr is the share of label-free paragraphs (articles) given any label; "
        "trad_f1 and noisy_f1 are macro-F1 on the Traditional and the noisy subsets"
    )
    return "\n".join(lines)
