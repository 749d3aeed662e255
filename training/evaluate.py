"""`heichan eval`: score a model against gold labels, side by side with the keyword baseline."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from heichan.labels import Taxonomy
from heichan.model.ngram import KeywordTagger
from heichan.model.tagger import Tagger
from heichan.model.text import is_traditional

from .data import LabelledSet, to_labelled_set


def _prf(tp: float, fp: float, fn: float) -> dict[str, float]:
    p = tp / (tp + fp) if tp + fp else 0.0
    r = tp / (tp + fn) if tp + fn else 0.0
    f = 2 * p * r / (p + r) if p + r else 0.0
    return {"precision": round(p, 4), "recall": round(r, 4), "f1": round(f, 4)}


def compute_metrics(P: np.ndarray, data: LabelledSet, thresholds: np.ndarray, labels: list[str]) -> dict:
    """Micro/macro P/R/F1, per-label P/R/F1 with support, and the false-positive rate on
    label-free paragraphs. Unjudged (masked) label cells are left out of every count; macro
    averages over labels with at least one positive in `data`."""
    pred = P >= thresholds
    gold = data.Y > 0.5
    m = data.mask
    tp = (pred & gold & m).sum(0)
    fp = (pred & ~gold & m).sum(0)
    fn = (~pred & gold & m).sum(0)
    per_label = {l: {**_prf(tp[j], fp[j], fn[j]), "support": int((gold & m)[:, j].sum())} for j, l in enumerate(labels)}
    scored = [l for l in labels if per_label[l]["support"] > 0]
    macro = {
        k: round(float(np.mean([per_label[l][k] for l in scored])), 4) if scored else 0.0
        for k in ("precision", "recall", "f1")
    }
    free = ~(gold & m).any(1)
    return {
        "n": len(data),
        "micro": _prf(tp.sum(), fp.sum(), fn.sum()),
        "macro": macro,
        "macro_over": len(scored),
        "per_label": per_label,
        "label_free": {
            "n": int(free.sum()),
            "false_positive_rate": round(float((pred & m)[free].any(1).mean()), 4) if free.any() else 0.0,
        },
        "exact_match": round(float(((pred == gold) | ~m).all(1).mean()), 4) if len(data) else 0.0,
    }


@dataclass
class Evaluation:
    data: LabelledSet
    labels: list[str]
    thresholds: np.ndarray
    P: np.ndarray  # model probabilities
    P_baseline: np.ndarray  # keyword baseline (0/1)
    metrics: dict  # {"model": ..., "keyword_baseline": ..., "traditional": {...}}


def evaluate(tagger: Tagger, rows: list[dict], taxonomy: Taxonomy) -> Evaluation:
    """Score `tagger` on rows with `text` and `labels` (and optionally `id`, `taxonomy_version`)."""
    labels = tagger.labels
    data = to_labelled_set(rows, labels, taxonomy)
    P = tagger.predict_proba(data.texts) if len(data) else np.zeros((0, len(labels)))
    baseline = KeywordTagger(taxonomy)
    cols = [baseline.labels.index(l) for l in labels]
    Pk = baseline.predict_proba(data.texts)[:, cols] if len(data) else np.zeros((0, len(labels)))
    metrics = {
        "model": compute_metrics(P, data, tagger.thresholds, labels),
        "keyword_baseline": compute_metrics(Pk, data, np.full(len(labels), 0.5), labels),
    }
    trad = np.flatnonzero([is_traditional(t) for t in data.texts])
    if len(trad):
        sub = data.subset(trad)
        metrics["traditional"] = {
            "model": compute_metrics(P[trad], sub, tagger.thresholds, labels),
            "keyword_baseline": compute_metrics(Pk[trad], sub, np.full(len(labels), 0.5), labels),
        }
    return Evaluation(data, labels, tagger.thresholds, P, Pk, metrics)


def summary(metrics: dict) -> dict:
    """The headline numbers of one metrics block (for manifests and model cards)."""
    return {
        "micro_f1": metrics["micro"]["f1"],
        "macro_f1": metrics["macro"]["f1"],
        "label_free_fpr": metrics["label_free"]["false_positive_rate"],
        "n": metrics["n"],
    }


def format_evaluation(ev: Evaluation, title: str = "") -> str:
    model, base = ev.metrics["model"], ev.metrics["keyword_baseline"]
    width = max(len(l) for l in ev.labels) + 2
    head = f"{'label':<{width}}{'P':>7}{'R':>7}{'F1':>7}{'n':>6}   |{'kw P':>7}{'kw R':>7}{'kw F1':>7}"
    lines = [title] if title else []
    lines += [head, "-" * len(head)]
    for l in ev.labels:
        a, b = model["per_label"][l], base["per_label"][l]
        lines.append(
            f"{l:<{width}}{a['precision']:>7.3f}{a['recall']:>7.3f}{a['f1']:>7.3f}{a['support']:>6}   |"
            f"{b['precision']:>7.3f}{b['recall']:>7.3f}{b['f1']:>7.3f}"
        )
    lines.append("-" * len(head))
    for avg in ("micro", "macro"):
        a, b = model[avg], base[avg]
        lines.append(
            f"{avg:<{width}}{a['precision']:>7.3f}{a['recall']:>7.3f}{a['f1']:>7.3f}{'':>6}   |"
            f"{b['precision']:>7.3f}{b['recall']:>7.3f}{b['f1']:>7.3f}"
        )
    lines.append(f"macro-F1 gain over the keyword baseline: {model['macro']['f1'] - base['macro']['f1']:+.3f}")
    lines.append(
        f"label-free paragraphs: {model['label_free']['n']}; false-positive rate: model "
        f"{model['label_free']['false_positive_rate']:.3f}, keyword baseline {base['label_free']['false_positive_rate']:.3f}"
    )
    lines.append(
        f"exact match (all labels right): model {model['exact_match']:.3f}, keyword baseline {base['exact_match']:.3f}"
    )
    trad = ev.metrics.get("traditional")
    if trad:
        t, tb = trad["model"], trad["keyword_baseline"]
        lines.append(
            f"Traditional subset (n={t['n']}): model micro-F1 {t['micro']['f1']:.3f} macro-F1 {t['macro']['f1']:.3f}; "
            f"keyword baseline micro-F1 {tb['micro']['f1']:.3f} macro-F1 {tb['macro']['f1']:.3f}"
        )
    else:
        lines.append("Traditional subset: no Traditional-character paragraphs in this data")
    return "\n".join(lines)


def write_predictions(path: Path, ev: Evaluation) -> None:
    """One JSON line per input: id, predicted labels, scores for every label."""
    with open(path, "w", encoding="utf-8") as fh:
        for i, rid in enumerate(ev.data.ids):
            picked = [l for j, l in enumerate(ev.labels) if ev.P[i, j] >= ev.thresholds[j]]
            scores = {l: round(float(ev.P[i, j]), 4) for j, l in enumerate(ev.labels)}
            fh.write(json.dumps({"id": rid, "labels": picked, "scores": scores}, ensure_ascii=False) + "\n")
