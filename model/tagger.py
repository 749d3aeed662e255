"""The tagger interface shared by every backend (n-gram, BERT, keyword baseline)."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from heichan.labels import Taxonomy, load_taxonomy

from .artifacts import ModelLoadError, read_manifest

DEFAULT_MODEL_DIR = Path(__file__).with_name("default")
MAX_EVIDENCE_SPANS = 3


@dataclass
class TagResult:
    """One paragraph's tags. `labels` may be empty: no black-market activity."""
    text: str
    labels: list[str]
    scores: dict[str, float]
    evidence: dict[str, list[list[int]]] = field(default_factory=dict)  # label -> [[start, end], ...]

    def to_dict(self) -> dict:
        return {"text": self.text, "labels": self.labels, "scores": self.scores, "evidence": self.evidence}


class Tagger:
    """Multi-label tagger. Backends implement `predict_proba` and `explain`.

    Attributes:
        labels: the label ids this model predicts, in score-column order.
        thresholds: per-label decision thresholds (tuned on dev at training time).
        manifest: the model directory's manifest (name, version, taxonomy_version, metrics, ...).
    """

    backend = "base"

    def __init__(self, labels: list[str], thresholds: np.ndarray, manifest: dict | None = None):
        self.labels = list(labels)
        self.thresholds = np.asarray(thresholds, dtype=np.float64)
        self.manifest = manifest or {}

    @property
    def name(self) -> str:
        return self.manifest.get("name", self.backend)

    @property
    def version(self) -> str:
        return str(self.manifest.get("version", "0"))

    @property
    def taxonomy_version(self) -> int:
        return int(self.manifest.get("taxonomy_version", 0))

    def predict_proba(self, texts: list[str]) -> np.ndarray:
        """(n_texts, n_labels) probabilities; sigmoid outputs, labels are independent."""
        raise NotImplementedError

    def explain(self, text: str, label_index: int) -> list[tuple[int, int, float]]:
        """Character spans (start, end, weight) of `text` that pushed label `label_index` up."""
        raise NotImplementedError

    def resolve_thresholds(self, override: float | dict[str, float] | None) -> np.ndarray:
        """The model's thresholds, replaced by one float for all labels or a per-label map."""
        if override is None:
            return self.thresholds
        if isinstance(override, (int, float)):
            return np.full(len(self.labels), float(override))
        unknown = sorted(set(override) - set(self.labels))
        if unknown:
            raise KeyError(f"unknown label(s) {unknown} in threshold map. Known labels: {self.labels}")
        return np.array([float(override.get(l, t)) for l, t in zip(self.labels, self.thresholds)])

    def tag(self, paragraphs: list[str], evidence: bool = True,
            thresholds: float | dict[str, float] | None = None) -> list[TagResult]:
        """Tag paragraphs: scores for every label, the predicted set, and evidence spans."""
        if not paragraphs:
            return []
        thr = self.resolve_thresholds(thresholds)
        probs = self.predict_proba(list(paragraphs))
        results = []
        for text, row in zip(paragraphs, probs):
            picked = [i for i in range(len(self.labels)) if row[i] >= thr[i]]
            ev = {}
            if evidence:
                for i in picked:
                    spans = sorted(self.explain(text, i), key=lambda s: -s[2])[:MAX_EVIDENCE_SPANS]
                    ev[self.labels[i]] = [[s, e] for s, e, _ in sorted(spans)]
            results.append(TagResult(text, [self.labels[i] for i in picked],
                                     {l: round(float(p), 4) for l, p in zip(self.labels, row)}, ev))
        return results

    def predict(self, texts: str | list[str]) -> list[str] | list[list[str]]:
        """Label ids only; one string in gives one list out."""
        single = isinstance(texts, str)
        results = self.tag([texts] if single else texts, evidence=False)
        return results[0].labels if single else [r.labels for r in results]


def merge_spans(spans: list[tuple[int, int, float]]) -> list[tuple[int, int, float]]:
    """Merge overlapping or touching spans, adding their weights."""
    merged: list[list] = []
    for start, end, weight in sorted(spans):
        if merged and start <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], end)
            merged[-1][2] += weight
        else:
            merged.append([start, end, weight])
    return [tuple(m) for m in merged]


def check_labels(model_labels: list[str], taxonomy: Taxonomy, where: str) -> None:
    """A model may know fewer labels than the taxonomy (older version), never unknown ones."""
    unknown = [l for l in model_labels if l not in taxonomy.ids]
    if unknown:
        raise ModelLoadError(f"{where}: model labels {unknown} are not in labels/taxonomy.yaml "
                             f"(version {taxonomy.version}); known labels: {taxonomy.ids}")


def load_tagger(model_dir: str | Path | None = None, taxonomy: Taxonomy | None = None, **options) -> Tagger:
    """Load a model directory (default: the shipped n-gram model), verifying its manifest.

    `options` go to the backend (e.g. ``quantize="int8"`` for BERT).
    """
    model_dir = Path(model_dir) if model_dir else DEFAULT_MODEL_DIR
    manifest = read_manifest(model_dir)
    check_labels(manifest["labels"], taxonomy or load_taxonomy(), str(model_dir))
    backend = manifest["backend"]
    if backend == "ngram":
        from .ngram import NgramTagger
        return NgramTagger.load(model_dir, manifest)
    if backend == "bert":
        from .bert import BertTagger
        return BertTagger.load(model_dir, manifest, **options)
    raise ModelLoadError(f"{model_dir}: unknown backend {backend!r}; expected 'ngram' or 'bert'")
