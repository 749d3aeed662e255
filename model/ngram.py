"""The fast default backend: TF-IDF over character 1–4-grams, one linear classifier per label,
Platt-calibrated. Stored as JSON (vocabulary) + safetensors (weights): no pickles."""

from __future__ import annotations

import json
import re
import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from safetensors.numpy import load_file, save_file
from sklearn.feature_extraction.text import TfidfVectorizer

from .artifacts import ModelLoadError
from .tagger import Tagger, merge_spans
from .text import normalize
from .windows import best_windows

NGRAM_RANGE = (1, 4)
WEIGHTS = "weights.safetensors"
VOCABULARY = "vocabulary.json"
SETTINGS = "ngram.json"
_ASCII_FOLD = {ord(c): "0" for c in "0123456789"} | {c: c + 32 for c in range(ord("A"), ord("Z") + 1)}
_EDGE_RUN = re.compile(r"[\s\W_]+")  # spans neither start nor end on spaces or punctuation
EVIDENCE_CACHE_BYTES = 32 << 20  # per model: the occurrences of recently explained paragraphs
EVIDENCE_BLOCK_CHARS = 4000  # longer texts are explained block by block


@dataclass(frozen=True)
class _Occurrences:
    """Where a paragraph's features occur: 13 bytes per occurrence (at most 4 per character)."""

    size: int  # characters
    indices: np.ndarray  # the paragraph's feature ids (int32)
    values: np.ndarray  # their tf-idf values (float32)
    start: np.ndarray  # per occurrence: its first character (int32)
    length: np.ndarray  # its n (int8)
    column: np.ndarray  # the position of its feature in `indices` (int32)
    denominator: np.ndarray  # n x the occurrences of its feature (float32)
    edge: np.ndarray  # per character: a space or punctuation (bool)

    @property
    def nbytes(self) -> int:
        arrays = (self.indices, self.values, self.start, self.length, self.column, self.denominator, self.edge)
        return 1024 + sum(a.nbytes for a in arrays)


class ByteBoundedCache:
    """A thread-safe LRU cache bounded by the bytes its keys and values hold (`value.nbytes`),
    not by a number of entries, so a few huge paragraphs cannot hold hundreds of megabytes. A
    value over a quarter of the bound is returned but not kept."""

    def __init__(self, max_bytes: int):
        self.max_bytes, self.bytes = max_bytes, 0
        self._entries: OrderedDict[str, Any] = OrderedDict()
        self._lock = threading.Lock()

    @staticmethod
    def _size(key: str, value: Any) -> int:
        return 4 * len(key) + value.nbytes

    def get(self, key: str, compute: Callable[[str], Any]) -> Any:
        with self._lock:
            if key in self._entries:
                self._entries.move_to_end(key)
                return self._entries[key]
        value = compute(key)  # outside the lock: other threads keep using the cache meanwhile
        size = self._size(key, value)
        if size > self.max_bytes // 4:
            return value
        with self._lock:
            if key not in self._entries:
                self._entries[key] = value
                self.bytes += size
                while self.bytes > self.max_bytes:
                    old_key, old = self._entries.popitem(last=False)
                    self.bytes -= self._size(old_key, old)
        return value

    def __len__(self) -> int:
        return len(self._entries)


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
        windows: bool = False,
    ):
        super().__init__(labels, thresholds, manifest)
        self.vectorizer = vectorizer
        self.windows = windows  # a label's score is max(whole paragraph, best window of two sentences)
        # (n_labels, n_features), at float16 precision: what is saved is exactly what is used
        self.coef = np.asarray(coef, dtype=np.float16).astype(np.float32)
        self.intercept = np.asarray(intercept, dtype=np.float32)  # (n_labels,)
        self.platt = np.asarray(platt, dtype=np.float32)  # (n_labels, 2): p = sigmoid(a*z + b)
        self.features = vectorizer.get_feature_names_out()
        # per instance, so a replaced model is not kept alive by a class-level cache
        self._occurrences = ByteBoundedCache(EVIDENCE_CACHE_BYTES)

    def decision(self, texts: list[str]) -> np.ndarray:
        X = self.vectorizer.transform(texts)
        return np.asarray(X @ self.coef.T) + self.intercept

    def whole_proba(self, texts: list[str]) -> np.ndarray:
        """Probabilities of each text read as a whole."""
        z = self.decision(texts)
        return 1.0 / (1.0 + np.exp(-(self.platt[:, 0] * z + self.platt[:, 1])))

    def predict_proba(self, texts: list[str]) -> np.ndarray:
        whole = self.whole_proba(texts)
        return np.maximum(whole, best_windows(self.whole_proba, texts)[0]) if self.windows and texts else whole

    def _find_occurrences(self, text: str) -> _Occurrences:
        """Label-independent part of `explain`, shared by all labels of a paragraph: the
        paragraph's features and every position where one of them occurs."""
        row = self.vectorizer.transform([text])
        haystack = preprocess(text)
        # only the paragraph's own features (the vectorizer collapses whitespace runs, so a gram
        # of the raw text may be absent from the row): a small dict, one lookup per gram
        column = {self.features[f]: k for k, f in enumerate(row.indices.tolist())}
        starts, lengths, columns = [], [], []
        for n in range(NGRAM_RANGE[0], NGRAM_RANGE[1] + 1):
            found = np.array([column.get(haystack[i : i + n], -1) for i in range(len(haystack) - n + 1)], np.int32)
            hits = np.flatnonzero(found >= 0)
            starts.append(hits.astype(np.int32))
            lengths.append(np.full(len(hits), n, dtype=np.int8))
            columns.append(found[hits])
        start, length, col = np.concatenate(starts), np.concatenate(lengths), np.concatenate(columns)
        # a gram's contribution is spread over its characters and over its occurrences
        denominator = (length * np.bincount(col, minlength=len(row.indices))[col]).astype(np.float32)
        edge = np.zeros(len(haystack), dtype=bool)
        for m in _EDGE_RUN.finditer(haystack):
            edge[m.start() : m.end()] = True
        indices, values = row.indices.astype(np.int32), row.data.astype(np.float32)
        return _Occurrences(len(haystack), indices, values, start, length, col, denominator, edge)

    def explain(self, text: str, label_index: int) -> list[tuple[int, int, float]]:
        """Evidence for a label: see `_explain_whole`; with windows, the spans come from the
        window that scored the label when it scored higher than the whole paragraph."""
        if self.windows:
            window, windows, best = best_windows(self.whole_proba, [text])
            start, end = windows[0][best[0][label_index]]
            if (start, end) != (0, len(text)) and window[0, label_index] > self.whole_proba([text])[0, label_index]:
                return [(s + start, e + start, w) for s, e, w in self._explain_whole(text[start:end], label_index)]
        return self._explain_whole(text, label_index)

    def _explain_whole(self, text: str, label_index: int) -> list[tuple[int, int, float]]:
        """Spread each n-gram's contribution over the characters it covers, then return the runs
        of characters scoring at least a quarter of the best one. Overlapping n-grams share
        credit, so a phrase like 养号 outranks a frequent generic gram.

        Time and memory are linear in the text. A text longer than `EVIDENCE_BLOCK_CHARS` (the
        segmenter never makes such paragraphs) is explained block by block."""
        if len(text) > EVIDENCE_BLOCK_CHARS:
            spans = []
            for offset in range(0, len(text), EVIDENCE_BLOCK_CHARS):
                block = text[offset : offset + EVIDENCE_BLOCK_CHARS]
                spans += [(s + offset, e + offset, w) for s, e, w in self._explain_whole(block, label_index)]
            return spans
        occ = self._occurrences.get(text, self._find_occurrences)
        if len(occ.start) == 0:
            return []
        weights = occ.values * self.coef[label_index, occ.indices] * self.platt[label_index, 0]
        share = weights[occ.column] / occ.denominator
        # a difference array: +share at the start of each occurrence, -share just past its end
        delta = np.bincount(occ.start, weights=share, minlength=occ.size + 1)
        delta -= np.bincount(occ.start + occ.length, weights=share, minlength=occ.size + 1)
        per_char = np.cumsum(delta)[: occ.size]
        best = per_char.max()
        if best <= 0:
            return []
        strong = per_char >= 0.25 * best
        # one span per run of strong characters, from its first to its last non-edge character
        run = np.cumsum(np.diff(strong.view(np.int8), prepend=0) == 1) - 1
        inner = np.flatnonzero(strong & ~occ.edge)
        if not len(inner):
            return []
        _, first = np.unique(run[inner], return_index=True)
        last = np.append(first[1:], len(inner)) - 1
        cumulative = np.concatenate(([0.0], np.cumsum(per_char)))
        spans = []
        for i, j in zip(inner[first].tolist(), (inner[last] + 1).tolist()):
            if j - i >= 2:  # a lone character is not evidence a reader can use
                spans.append((i, j, float(cumulative[j] - cumulative[i])))
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
        (model_dir / SETTINGS).write_text(json.dumps({"windows": self.windows}), encoding="utf-8")

    @classmethod
    def load(cls, model_dir: Path, manifest: dict) -> NgramTagger:
        try:
            vocabulary = json.loads((model_dir / VOCABULARY).read_text(encoding="utf-8"))
            tensors = load_file(str(model_dir / WEIGHTS))
            settings = (
                json.loads((model_dir / SETTINGS).read_text(encoding="utf-8"))
                if (model_dir / SETTINGS).is_file()
                else {}
            )
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
            windows=bool(settings.get("windows", False)),
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
