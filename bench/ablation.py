"""Which parts of the default model matter: each component alone, and the stack.

    python bench/ablation.py                 # the shipped default model
    python bench/ablation.py runs/ensemble   # another ensemble directory

For each variant the per-label thresholds are tuned on dev (as training does), then macro-F1,
macro recall and the label-free false-positive rate are reported on dev and on the challenge set.
Variants: the n-gram model on the whole paragraph; its best sentence window; the two n-gram
scores stacked; the encoder's heads alone; everything stacked without the cascade; the shipped
model (with the cascade).
"""

from __future__ import annotations

import argparse
from dataclasses import asdict

import numpy as np

from heichan.labels.corpus import load_split
from heichan.model import load_tagger
from heichan.model.ensemble import EPS, encoder_scores, window_scores
from heichan.training.data import to_labelled_set
from heichan.training.evaluate import compute_metrics
from heichan.training.thresholds import tune_thresholds


def components(tagger, texts: list[str]) -> dict[str, np.ndarray]:
    whole = tagger.ngram.whole_proba(texts)
    windows, spans, _ = window_scores(tagger.ngram, texts)
    enc, enc_windows = encoder_scores(tagger.encoder, texts, spans)
    keep = np.maximum(whole, windows).max(1, keepdims=True) >= tagger.gate
    return {
        "n-gram, whole paragraph": whole,
        "n-gram, best window": windows,
        "n-gram, max(whole, window)": np.maximum(whole, windows),
        "encoder heads, whole": enc,
        "encoder heads, best window": enc_windows,
        "stack, no cascade": tagger.combine(whole, windows, enc, enc_windows),
        "stack with cascade (shipped)": tagger.combine(
            whole, windows, np.where(keep, enc, EPS), np.where(keep, enc_windows, EPS)
        ),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("model", nargs="?", default="default")
    args = parser.parse_args()
    tagger = load_tagger(args.model)
    labels, taxonomy = tagger.labels, tagger.taxonomy
    sets = {s: to_labelled_set([asdict(r) for r in load_split(s)], labels, taxonomy) for s in ("dev", "challenge")}
    scores = {s: components(tagger, d.texts) for s, d in sets.items()}
    print(f"{'variant':<32}{'dev F1':>9}{'chal F1':>9}{'chal R':>9}{'chal FPR':>10}")
    for name in scores["dev"]:
        thr = tune_thresholds(scores["dev"][name], sets["dev"].Y, sets["dev"].mask)
        dev = compute_metrics(scores["dev"][name], sets["dev"], thr, labels)
        chal = compute_metrics(scores["challenge"][name], sets["challenge"], thr, labels)
        print(
            f"{name:<32}{dev['macro']['f1']:>9.3f}{chal['macro']['f1']:>9.3f}{chal['macro']['recall']:>9.3f}"
            f"{chal['label_free']['false_positive_rate']:>10.3f}"
        )


if __name__ == "__main__":
    main()
