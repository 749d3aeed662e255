"""The default backend: the n-gram model and the encoder model, stacked.

For each label a small logistic model combines four scores: the n-gram model on the whole
paragraph and on its best window of consecutive sentences, and the encoder's heads on the whole
paragraph and on its best window (a long paragraph is scored where the activity is). The
encoder reads the paragraph once; a window's vector is the mean of its tokens' states. The
stacker was fitted on out-of-fold scores, so it is calibrated. Evidence comes from the n-gram
model on the window that scored highest for the label.

A cascade keeps it fast: a paragraph whose n-gram scores are all below `gate` (set at training
so that 99.5% of the training paragraphs with a label pass) is an obvious negative and is not
encoded; the encoder's scores for it count as "no".
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from safetensors.numpy import load_file, save_file

from .artifacts import ModelLoadError
from .encoder import EncoderTagger
from .ngram import NgramTagger
from .tagger import Tagger
from .windows import best_windows

STACKER = "stacker.safetensors"
EPS = 1e-4


def logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(p, EPS, 1 - EPS)
    return np.log(p / (1 - p))


def window_scores(ngram: NgramTagger, texts: list[str]) -> tuple[np.ndarray, list[list[tuple[int, int]]], list]:
    """The n-gram model's best-window probabilities (whole-paragraph model on each window)."""
    return best_windows(ngram.whole_proba, texts)


N_FEATURES = 4


def stack_features(*scores: np.ndarray) -> np.ndarray:
    """(n, n_labels, 4) stacker inputs from the n-gram whole/window and encoder whole/window scores."""
    return np.stack([logit(s) for s in scores], axis=-1)


def encoder_scores(encoder: EncoderTagger, texts: list[str], spans: list[list[tuple[int, int]]]):
    """The encoder heads' probabilities on each whole text and the best of its windows."""
    emb, parts = encoder.encoder.encode(texts, spans)
    whole = encoder.proba_from_embeddings(emb)
    best = np.array([encoder.proba_from_embeddings(p).max(0) if len(p) else w for p, w in zip(parts, whole)])
    return whole, best.reshape(whole.shape)


class EnsembleTagger(Tagger):
    backend = "ensemble"

    def __init__(
        self,
        ngram: NgramTagger,
        encoder: EncoderTagger,
        weights: np.ndarray,
        bias: np.ndarray,
        labels: list[str],
        thresholds: np.ndarray,
        manifest: dict | None = None,
        gate: float = 0.0,
    ):
        super().__init__(labels, thresholds, manifest)
        self.ngram, self.encoder, self.gate = ngram, encoder, float(gate)
        self.weights = np.asarray(weights, dtype=np.float64)  # (n_labels, N_FEATURES)
        self.bias = np.asarray(bias, dtype=np.float64)  # (n_labels,)

    def component_scores(self, texts: list[str]) -> tuple[np.ndarray, ...]:
        """n-gram whole, n-gram best window, encoder whole, encoder best window."""
        whole = self.ngram.whole_proba(texts)
        windows, spans, _ = window_scores(self.ngram, texts)
        enc_whole, enc_windows = np.full_like(whole, EPS), np.full_like(whole, EPS)
        needed = np.flatnonzero(np.maximum(whole, windows).max(1, initial=0.0) >= self.gate)
        if len(needed):
            enc_whole[needed], enc_windows[needed] = encoder_scores(
                self.encoder, [texts[i] for i in needed], [spans[i] for i in needed]
            )
        return whole, windows, enc_whole, enc_windows

    def combine(self, *scores: np.ndarray) -> np.ndarray:
        z = (stack_features(*scores) * self.weights).sum(-1) + self.bias
        return 1.0 / (1.0 + np.exp(-z))

    def predict_proba(self, texts: list[str]) -> np.ndarray:
        return self.combine(*self.component_scores(texts))

    def explain(self, text: str, label_index: int) -> list[tuple[int, int, float]]:
        _, spans, best = window_scores(self.ngram, [text])
        start, end = spans[0][best[0][label_index]]
        return [(s + start, e + start, w) for s, e, w in self.ngram.explain(text[start:end], label_index)]

    def save_weights(self, model_dir: Path) -> None:
        model_dir.mkdir(parents=True, exist_ok=True)
        self.ngram.save_weights(model_dir / "ngram")
        self.encoder.save_weights(model_dir / "encoder")
        save_file(
            {
                "weights": self.weights.astype(np.float32),
                "bias": self.bias.astype(np.float32),
                "gate": np.array([self.gate], dtype=np.float32),
            },
            str(model_dir / STACKER),
        )

    @classmethod
    def load(cls, model_dir: Path, manifest: dict, threads: int | None = None) -> EnsembleTagger:
        labels = manifest["labels"]
        part = {**manifest, "thresholds": [0.5] * len(labels)}
        ngram = NgramTagger.load(model_dir / "ngram", part)
        encoder = EncoderTagger.load(model_dir / "encoder", part, threads)
        try:
            stacker = load_file(str(model_dir / STACKER))
        except (OSError, ValueError) as exc:
            raise ModelLoadError(f"{model_dir}: cannot read {STACKER}: {exc}") from exc
        if stacker["weights"].shape != (len(labels), N_FEATURES):
            raise ModelLoadError(
                f"{model_dir}: stacker shape {stacker['weights'].shape} does not match {len(labels)} labels"
            )
        gate = float(stacker["gate"][0]) if "gate" in stacker else 0.0
        return cls(
            ngram,
            encoder,
            stacker["weights"],
            stacker["bias"],
            labels,
            np.array(manifest["thresholds"]),
            manifest,
            gate,
        )
