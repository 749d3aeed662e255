"""The encoder backend at inference: a pretrained BERT-style encoder exported to ONNX (int8),
run with ONNX Runtime, mean-pooled, with one logistic head per label. Needs neither torch nor
transformers: `tokenizers` reads the tokenizer, `onnxruntime` runs the graph.

A paragraph longer than the encoder's window is cut into consecutive windows; their mean-pooled
vectors are averaged, weighted by token count, so nothing is truncated.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
from safetensors.numpy import load_file, save_file

from .artifacts import ModelLoadError
from .tagger import Tagger

GRAPH = "encoder.onnx"
TOKENIZER = "tokenizer.json"
HEADS = "heads.safetensors"
ENCODER_CONFIG = "encoder.json"
MAX_BATCH_TOKENS = 512  # measured: small batches of similar length are fastest on CPU


def default_threads(sharing: int = 1) -> int:
    """ONNX Runtime threads for one of `sharing` concurrent taggers: HEICHAN_THREADS if set,
    else the cores divided among them (at least 1). Two threads per process on two cores that
    another process also uses are slower than one, so callers that run several taggers at once
    (batch workers, the service's inference threads) say so."""
    return max(1, int(os.environ.get("HEICHAN_THREADS") or 0) or (os.cpu_count() or 1) // max(1, sharing))


class Encoder:
    """Text → L2-normalised mean-pooled embedding, with ONNX Runtime."""

    def __init__(self, model_dir: Path, threads: int | None = None):
        import onnxruntime as ort
        from tokenizers import Tokenizer

        self.model_dir = model_dir
        config = json.loads((model_dir / ENCODER_CONFIG).read_text(encoding="utf-8"))
        self.prefix = config.get("prefix", "")
        self.window = int(config.get("window", 510))
        self.tokenizer = Tokenizer.from_file(str(model_dir / TOKENIZER))
        self.tokenizer.no_padding()
        self.tokenizer.no_truncation()
        ids = {t: self.tokenizer.token_to_id(t) for t in ("<s>", "</s>", "<pad>")}
        missing = [t for t, i in ids.items() if i is None]
        if missing:
            raise ValueError(f"{model_dir / TOKENIZER} lacks the special tokens {missing}")
        self.bos, self.eos, self.pad = (int(ids[t] or 0) for t in ("<s>", "</s>", "<pad>"))
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads or default_threads()
        options.inter_op_num_threads = 1
        self.session = ort.InferenceSession(str(model_dir / GRAPH), options, providers=["CPUExecutionProvider"])

    def windows(self, texts: list[str]) -> tuple[list[list[int]], list[int], list]:
        """Token windows (with <s> and </s>), the index of each window's text, and the encodings."""
        encodings = self.tokenizer.encode_batch([self.prefix + t for t in texts], add_special_tokens=False)
        windows, owner = [], []
        for i, enc in enumerate(encodings):
            ids = enc.ids or [self.pad]
            for start in range(0, len(ids), self.window):
                windows.append([self.bos, *ids[start : start + self.window], self.eos])
                owner.append(i)
        return windows, owner, encodings

    def embed(self, texts: list[str]) -> np.ndarray:
        return self.encode(texts)[0]

    def encode(
        self, texts: list[str], spans: list[list[tuple[int, int]]] | None = None
    ) -> tuple[np.ndarray, list[np.ndarray]]:
        """Paragraph embeddings (n, dim), and with `spans` (character spans per text) each span's
        embedding: the mean of the token states inside it, from the same pass, so a span is read
        in the context of its whole paragraph at no extra cost."""
        windows, owner, encodings = self.windows(texts)
        sums: np.ndarray | None = None
        weights = np.zeros(len(texts))
        states: list[list[tuple[int, np.ndarray]]] = [[] for _ in texts]  # (window, content-token states)
        order = np.argsort([len(w) for w in windows], kind="stable")
        start = 0
        while start < len(order):  # batches of similar length, bounded by MAX_BATCH_TOKENS
            end = start + 1
            while end < len(order) and len(windows[order[end]]) * (end - start + 1) <= MAX_BATCH_TOKENS:
                end += 1
            batch = [windows[k] for k in order[start:end]]
            width = max(len(w) for w in batch)
            ids = np.full((len(batch), width), self.pad, dtype=np.int64)
            mask = np.zeros((len(batch), width), dtype=np.int64)
            for r, w in enumerate(batch):
                ids[r, : len(w)], mask[r, : len(w)] = w, 1
            (hidden,) = self.session.run(None, {"input_ids": ids, "attention_mask": mask})
            pooled = (hidden * mask[..., None]).sum(1) / mask.sum(1, keepdims=True)
            if sums is None:
                sums = np.zeros((len(texts), pooled.shape[1]))
            for r, k in enumerate(order[start:end]):
                n = mask[r].sum()
                sums[owner[k]] += pooled[r] * n
                weights[owner[k]] += n
                if spans is not None:
                    states[owner[k]].append((k, hidden[r, 1 : n - 1]))
            start = end
        assert sums is not None
        whole = _normalise(sums / np.maximum(weights, 1)[:, None])
        if spans is None:
            return whole, []
        parts = []
        for i, (enc, text_spans) in enumerate(zip(encodings, spans)):
            tokens = np.concatenate([h for _, h in sorted(states[i], key=lambda x: x[0])])
            tokens = tokens[: len(enc.offsets)]
            starts = np.array([a - len(self.prefix) for a, _ in enc.offsets[: len(tokens)]], dtype=int)
            rows = []
            for s, e in text_spans:
                inside = (starts >= s) & (starts < e)
                rows.append(tokens[inside].mean(0) if inside.any() else whole[i])
            parts.append(_normalise(np.array(rows)) if rows else np.zeros((0, whole.shape[1]), np.float32))
        return whole, parts


def heads_proba(coef: np.ndarray, intercept: np.ndarray, emb: np.ndarray) -> np.ndarray:
    """One logistic head per label on embeddings: (n, dim) → (n, n_labels) probabilities."""
    return 1.0 / (1.0 + np.exp(-(emb @ coef.T + intercept)))


def _normalise(x: np.ndarray) -> np.ndarray:
    return (x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)).astype(np.float32)


class EncoderTagger(Tagger):
    """Logistic heads on the encoder's embedding. Gives no evidence spans on its own."""

    backend = "encoder"

    def __init__(
        self,
        encoder: Encoder,
        coef: np.ndarray,
        intercept: np.ndarray,
        labels: list[str],
        thresholds: np.ndarray,
        manifest: dict | None = None,
    ):
        super().__init__(labels, thresholds, manifest)
        self.encoder = encoder
        self.coef = np.asarray(coef, dtype=np.float32)  # (n_labels, dim)
        self.intercept = np.asarray(intercept, dtype=np.float32)

    def proba_from_embeddings(self, emb: np.ndarray) -> np.ndarray:
        return heads_proba(self.coef, self.intercept, emb)

    def predict_proba(self, texts: list[str]) -> np.ndarray:
        return self.proba_from_embeddings(self.encoder.embed(texts))

    def explain(self, text: str, label_index: int) -> list[tuple[int, int, float]]:
        return []

    def save_weights(self, model_dir: Path) -> None:
        """Write the heads, and copy the encoder's graph, tokenizer and configuration."""
        model_dir.mkdir(parents=True, exist_ok=True)
        for name in (GRAPH, TOKENIZER, ENCODER_CONFIG):
            if (self.encoder.model_dir / name).resolve() != (model_dir / name).resolve():
                shutil.copyfile(self.encoder.model_dir / name, model_dir / name)
        save_file({"coef": self.coef, "intercept": self.intercept}, str(model_dir / HEADS))

    @classmethod
    def load(cls, model_dir: Path, manifest: dict, threads: int | None = None) -> EncoderTagger:
        try:
            encoder = Encoder(model_dir, threads)
            heads = load_file(str(model_dir / HEADS))
        except Exception as exc:  # onnxruntime raises its own exception types
            raise ModelLoadError(f"{model_dir}: cannot load the encoder: {exc}") from exc
        if heads["coef"].shape[0] != len(manifest["labels"]):
            raise ModelLoadError(f"{model_dir}: {heads['coef'].shape[0]} heads for {len(manifest['labels'])} labels")
        return cls(
            encoder, heads["coef"], heads["intercept"], manifest["labels"], np.array(manifest["thresholds"]), manifest
        )
