"""`heichan eval --report DIR`: a small self-contained HTML report (inline SVG, no JavaScript)."""

from __future__ import annotations

import html
from pathlib import Path

import numpy as np
from sklearn.metrics import precision_recall_curve

from .evaluate import Evaluation

_MODEL, _BASE = "#c0392b", "#7f8c8d"


def _f1_bars(ev: Evaluation) -> str:
    model, base = ev.metrics["model"]["per_label"], ev.metrics["keyword_baseline"]["per_label"]
    row, left, width = 26, 190, 420
    h = row * len(ev.labels) + 40
    parts = [f'<svg width="{left + width + 80}" height="{h}" font-size="12" font-family="sans-serif">']
    for i, label in enumerate(ev.labels):
        y = 30 + i * row
        parts.append(
            f'<text x="{left - 8}" y="{y + 12}" text-anchor="end">{html.escape(label)} (n={model[label]["support"]})</text>'
        )
        for k, (value, colour) in enumerate(((model[label]["f1"], _MODEL), (base[label]["f1"], _BASE))):
            parts.append(f'<rect x="{left}" y="{y + k * 10}" width="{value * width:.1f}" height="9" fill="{colour}"/>')
            parts.append(
                f'<text x="{left + value * width + 4:.1f}" y="{y + k * 10 + 8}" font-size="9">{value:.2f}</text>'
            )
    parts.append(
        f'<rect x="{left}" y="6" width="10" height="10" fill="{_MODEL}"/><text x="{left + 14}" y="15">model F1</text>'
        f'<rect x="{left + 100}" y="6" width="10" height="10" fill="{_BASE}"/><text x="{left + 114}" y="15">keyword baseline F1</text>'
    )
    parts.append("</svg>")
    return "".join(parts)


def _pr_curve(ev: Evaluation, j: int) -> str:
    size, pad = 170, 24
    rows = ev.data.mask[:, j]
    gold, scores = ev.data.Y[rows, j] > 0.5, ev.P[rows, j]
    label = html.escape(ev.labels[j])
    svg = [
        f'<svg width="{size + 2 * pad}" height="{size + 2 * pad}" font-size="10" font-family="sans-serif">',
        f'<text x="{pad}" y="12">{label}</text>',
        f'<rect x="{pad}" y="{pad}" width="{size}" height="{size}" fill="none" stroke="#ccc"/>',
        f'<text x="{pad}" y="{size + pad + 14}">recall →</text><text x="2" y="{pad + 8}">P</text>',
    ]
    if gold.any() and (~gold).any():
        precision, recall, thr = precision_recall_curve(gold, scores)
        points = " ".join(f"{pad + r * size:.1f},{pad + (1 - p) * size:.1f}" for p, r in zip(precision, recall))
        svg.append(f'<polyline points="{points}" fill="none" stroke="{_MODEL}" stroke-width="1.5"/>')
        k = min(np.searchsorted(thr, ev.thresholds[j]), len(thr) - 1)
        x, y = pad + recall[k] * size, pad + (1 - precision[k]) * size
        svg.append(
            f'<circle cx="{x:.1f}" cy="{y:.1f}" r="4" fill="none" stroke="#000"/>'
            f'<text x="{x + 6:.1f}" y="{y - 4:.1f}">t={ev.thresholds[j]:.2f}</text>'
        )
    else:
        svg.append(f'<text x="{pad + 10}" y="{pad + size / 2}">no positives or no negatives</text>')
    svg.append("</svg>")
    return "".join(svg)


def _worst(ev: Evaluation, kind: str, limit: int = 15) -> str:
    gold, m = ev.data.Y > 0.5, ev.data.mask
    pred = ev.P >= ev.thresholds
    if kind == "fp":
        cells = np.argwhere(pred & ~gold & m)
        order = sorted(cells.tolist(), key=lambda c: -ev.P[c[0], c[1]])
    else:
        cells = np.argwhere(~pred & gold & m)
        order = sorted(cells.tolist(), key=lambda c: ev.P[c[0], c[1]])
    rows = "".join(
        f"<tr><td>{html.escape(ev.labels[j])}</td><td>{ev.P[i, j]:.3f}</td><td>{html.escape(ev.data.ids[i])}</td>"
        f"<td>{html.escape(ev.data.texts[i])}</td></tr>"
        for i, j in order[:limit]
    )
    return (
        f"<table><tr><th>label</th><th>score</th><th>id</th><th>text</th></tr>{rows}</table>" if rows else "<p>none</p>"
    )


def write_report(out_dir: Path, ev: Evaluation, title: str) -> Path:
    out_dir.mkdir(parents=True, exist_ok=True)
    model, base = ev.metrics["model"], ev.metrics["keyword_baseline"]
    curves = "".join(_pr_curve(ev, j) for j in range(len(ev.labels)))
    page = f"""<!doctype html><html lang="en"><meta charset="utf-8"><title>{html.escape(title)}</title>
<style>body{{font-family:sans-serif;max-width:1100px;margin:2em auto}}table{{border-collapse:collapse;font-size:13px}}
td,th{{border:1px solid #ddd;padding:4px;vertical-align:top}}.curves svg{{margin:4px}}</style>
<h1>{html.escape(title)}</h1>
<p>{model["n"]} paragraphs. Macro-F1 <b>{model["macro"]["f1"]:.3f}</b> (keyword baseline {base["macro"]["f1"]:.3f});
micro-F1 {model["micro"]["f1"]:.3f} (baseline {base["micro"]["f1"]:.3f}); false-positive rate on
{model["label_free"]["n"]} label-free paragraphs {model["label_free"]["false_positive_rate"]:.3f}
(baseline {base["label_free"]["false_positive_rate"]:.3f}).</p>
<h2>Per-label F1: model vs keyword baseline</h2>{_f1_bars(ev)}
<h2>Precision–recall curves (circle: the threshold in use)</h2><div class="curves">{curves}</div>
<h2>Worst false positives</h2>{_worst(ev, "fp")}
<h2>Worst false negatives</h2>{_worst(ev, "fn")}
</html>"""
    path = out_dir / "report.html"
    path.write_text(page, encoding="utf-8")
    return path
