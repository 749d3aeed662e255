"""The tagger interface shared by every backend (n-gram, BERT, keyword baseline)."""

from __future__ import annotations

import shutil
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from heichan.labels.taxonomy import Taxonomy

from .artifacts import write_manifest
from .text import strip_artefacts

TAXONOMY_FILE = "taxonomy.yaml"  # the taxonomy a model was trained with, inside its directory

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
        self.taxonomy: Taxonomy | None = None  # the taxonomy the model was trained with, set on loading

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

    def tag(
        self, paragraphs: list[str], evidence: bool = True, thresholds: float | dict[str, float] | None = None
    ) -> list[TagResult]:
        """Tag paragraphs: scores for every label, the predicted set, and evidence spans.

        The model sees the text with converter artefacts removed (`strip_artefacts`); evidence
        offsets point into the paragraphs as given."""
        if not paragraphs:
            return []
        thr = self.resolve_thresholds(thresholds)
        cleaned = [strip_artefacts(p) for p in paragraphs]
        probs = self.predict_proba([c for c, _ in cleaned])
        results = []
        for text, (clean, offsets), row in zip(paragraphs, cleaned, probs):
            picked = [i for i in range(len(self.labels)) if row[i] >= thr[i]]
            ev = {}
            if evidence:
                for i in picked:
                    spans = sorted(self.explain(clean, i), key=lambda s: -s[2])[:MAX_EVIDENCE_SPANS]
                    ev[self.labels[i]] = [[offsets[s], offsets[e - 1] + 1] for s, e, _ in sorted(spans) if e > s]
            results.append(
                TagResult(
                    text,
                    [self.labels[i] for i in picked],
                    {l: round(float(p), 4) for l, p in zip(self.labels, row)},
                    ev,
                )
            )
        return results

    def save_weights(self, model_dir: Path) -> None:
        """Write the backend's own files into `model_dir` (safetensors, JSON, ONNX: no pickles)."""
        raise NotImplementedError

    def save(
        self,
        model_dir: str | Path,
        *,
        name: str,
        version: str,
        taxonomy_file: str | Path,
        taxonomy_version: int,
        files: dict[str, str] | None = None,
        **fields,
    ) -> dict:
        """Write a complete model directory: the weights, the taxonomy it was trained with, extra
        text files (model card, metrics), then the manifest with every file's checksum. Load it
        back with `heichan.model.load_tagger(model_dir)`."""
        model_dir = Path(model_dir)
        model_dir.mkdir(parents=True, exist_ok=True)
        self.save_weights(model_dir)
        shutil.copyfile(taxonomy_file, model_dir / TAXONOMY_FILE)
        for file_name, text in (files or {}).items():
            (model_dir / file_name).write_text(text, encoding="utf-8")
        self.manifest = write_manifest(
            model_dir,
            backend=self.backend,
            name=name,
            version=version,
            labels=self.labels,
            taxonomy_version=taxonomy_version,
            thresholds=[round(float(t), 4) for t in self.thresholds],
            **fields,
        )
        return self.manifest

    def predict(self, texts: str | list[str]) -> list[str] | list[list[str]]:
        """Label ids only; one string in gives one list out."""
        if isinstance(texts, str):
            return self.tag([texts], evidence=False)[0].labels
        return [r.labels for r in self.tag(texts, evidence=False)]


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
