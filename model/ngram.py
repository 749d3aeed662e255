"""The fast default backend: TF-IDF over character 1–4-grams, one linear classifier per label,
Platt-calibrated. Stored as JSON (vocabulary) + safetensors (weights): no pickles."""

from __future__ import annotations

import functools
import json
import re
from pathlib import Path

import numpy as np
from safetensors.numpy import load_file, save_file
from sklearn.feature_extraction.text import TfidfVectorizer

from .artifacts import ModelLoadError
from .tagger import Tagger, merge_spans
from .text import normalize

NGRAM_RANGE = (1, 4)
WEIGHTS = "weights.safetensors"
VOCABULARY = "vocabulary.json"
_ASCII_FOLD = {ord(c): "0" for c in "0123456789"} | {c: c + 32 for c in range(ord("A"), ord("Z") + 1)}
_EDGE = re.compile(r"[\s\W_]")  # spans neither start nor end on spaces or punctuation


def preprocess(text: str) -> str:
    """normalize() plus digits → 0 and ASCII lower-case; still length-preserving.

    Digits vary from report to report (amounts, dates, counts); the model should not learn them.
    """
    return normalize(text).translate(_ASCII_FOLD)


def make_vectorizer(vocabulary: list[str] | None = None, min_df: int = 2) -> TfidfVectorizer:
    """The one vectorizer definition used for training and inference."""
    return TfidfVectorizer(
        analyzer="char",
        ngram_range=NGRAM_RANGE,
        preprocessor=preprocess,
        sublinear_tf=True,
        min_df=min_df,
        dtype=np.float32,
        vocabulary=vocabulary,
    )


class NgramTagger(Tagger):
    backend = "ngram"

    def __init__(
        self,
        vectorizer: TfidfVectorizer,
        coef: np.ndarray,
        intercept: np.ndarray,
        platt: np.ndarray,
        labels: list[str],
        thresholds: np.ndarray,
        manifest: dict | None = None,
    ):
        super().__init__(labels, thresholds, manifest)
        self.vectorizer = vectorizer
        # (n_labels, n_features), at float16 precision: what is saved is exactly what is used
        self.coef = np.asarray(coef, dtype=np.float16).astype(np.float32)
        self.intercept = np.asarray(intercept, dtype=np.float32)  # (n_labels,)
        self.platt = np.asarray(platt, dtype=np.float32)  # (n_labels, 2): p = sigmoid(a*z + b)
        self.features = vectorizer.get_feature_names_out()
        # per instance, so a replaced model is not kept alive by a class-level cache
        self._occurrences = functools.lru_cache(maxsize=256)(self._find_occurrences)

    def decision(self, texts: list[str]) -> np.ndarray:
        X = self.vectorizer.transform(texts)
        return np.asarray(X @ self.coef.T) + self.intercept

    def predict_proba(self, texts: list[str]) -> np.ndarray:
        z = self.decision(texts)
        return 1.0 / (1.0 + np.exp(-(self.platt[:, 0] * z + self.platt[:, 1])))

    def _find_occurrences(self, text: str):
        """Label-independent part of `explain`, shared by all labels of a paragraph: the
        paragraph's features and every position where one of them occurs."""
        row = self.vectorizer.transform([text])
        present = set(row.indices.tolist())
        haystack = preprocess(text)
        vocabulary = self.vectorizer.vocabulary_
        starts, lengths, features = [], [], []
        for n in range(NGRAM_RANGE[0], NGRAM_RANGE[1] + 1):
            for i in range(len(haystack) - n + 1):
                feature = vocabulary.get(haystack[i : i + n])
                if feature in present:
                    starts.append(i)
                    lengths.append(n)
                    features.append(feature)
        return haystack, row.indices, row.data, np.array(starts, dtype=int), np.array(lengths), np.array(features)

    def explain(self, text: str, label_index: int) -> list[tuple[int, int, float]]:
        """Spread each n-gram's contribution over the characters it covers, then return the runs
        of characters scoring at least a quarter of the best one. Overlapping n-grams share
        credit, so a phrase like 养号 outranks a frequent generic gram."""
        haystack, indices, values, starts, lengths, features = self._occurrences(text)
        weights = values * self.coef[label_index, indices] * self.platt[label_index, 0]
        per_char = np.zeros(len(haystack) + 1)
        if len(features):
            contrib = dict(zip(indices.tolist(), weights.tolist()))
            _, inverse, counts = np.unique(features, return_inverse=True, return_counts=True)
            share = np.array([contrib[f] for f in features.tolist()]) / (lengths * counts[inverse])
            np.add.at(per_char, starts, share)  # a difference array: +share at the start,
            np.add.at(per_char, starts + lengths, -share)  # -share just past the end
        per_char = np.cumsum(per_char)[: len(haystack)]
        if len(per_char) == 0 or per_char.max() <= 0:
            return []
        strong = per_char >= 0.25 * per_char.max()
        spans, i = [], 0
        while i < len(haystack):
            if strong[i] and not _EDGE.match(haystack[i]):
                j = i
                while j < len(haystack) and strong[j]:
                    j += 1
                while j > i and _EDGE.match(haystack[j - 1]):
                    j -= 1
                if j - i >= 2:  # a lone character is not evidence a reader can use
                    spans.append((i, j, float(per_char[i:j].sum())))
                i = max(j, i + 1)
            else:
                i += 1
        return spans

    def save_weights(self, model_dir: Path) -> None:
        model_dir.mkdir(parents=True, exist_ok=True)
        (model_dir / VOCABULARY).write_text(json.dumps(list(self.features), ensure_ascii=False), encoding="utf-8")
        # coefficients in float16: half the size, decision values change by ~1e-3 at most
        save_file(
            {
                "idf": self.vectorizer.idf_.astype(np.float32),
                "coef": self.coef.astype(np.float16),
                "intercept": self.intercept,
                "platt": self.platt,
            },
            str(model_dir / WEIGHTS),
        )

    @classmethod
    def load(cls, model_dir: Path, manifest: dict) -> NgramTagger:
        try:
            vocabulary = json.loads((model_dir / VOCABULARY).read_text(encoding="utf-8"))
            tensors = load_file(str(model_dir / WEIGHTS))
        except (OSError, ValueError) as exc:
            raise ModelLoadError(f"{model_dir}: cannot read n-gram model files: {exc}") from exc
        n_labels, n_features = len(manifest["labels"]), len(vocabulary)
        if tensors["coef"].shape != (n_labels, n_features) or tensors["idf"].shape != (n_features,):
            raise ModelLoadError(
                f"{model_dir}: weight shapes {tensors['coef'].shape} do not match "
                f"{n_labels} labels x {n_features} features"
            )
        vectorizer = make_vectorizer(vocabulary)
        vectorizer.idf_ = tensors["idf"]
        return cls(
            vectorizer,
            tensors["coef"].astype(np.float32),
            tensors["intercept"],
            tensors["platt"],
            manifest["labels"],
            np.array(manifest["thresholds"]),
            manifest,
        )


class KeywordTagger(Tagger):
    """The baseline: a label fires when one of its taxonomy cue phrases occurs in the text."""

    backend = "keywords"

    def __init__(self, taxonomy):
        super().__init__(
            taxonomy.ids,
            np.full(len(taxonomy.ids), 0.5),
            {"name": "keyword-baseline", "version": str(taxonomy.version), "taxonomy_version": taxonomy.version},
        )
        self.patterns = [
            re.compile("|".join(re.escape(normalize(c)) for c in sorted(l.cues, key=len, reverse=True)))
            if l.cues
            else None
            for l in taxonomy.labels
        ]

    def predict_proba(self, texts: list[str]) -> np.ndarray:
        out = np.zeros((len(texts), len(self.labels)))
        for i, text in enumerate(texts):
            norm = normalize(text)
            for j, pattern in enumerate(self.patterns):
                if pattern is not None and pattern.search(norm):
                    out[i, j] = 1.0
        return out

    def explain(self, text: str, label_index: int) -> list[tuple[int, int, float]]:
        pattern = self.patterns[label_index]
        if pattern is None:
            return []
        return merge_spans([(m.start(), m.end(), 1.0) for m in pattern.finditer(normalize(text))])
