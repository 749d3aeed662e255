"""Fit the default backend: export the encoder to ONNX int8, fit logistic heads on its embeddings,
fit the n-gram model, and stack the three scores per label on out-of-fold predictions."""

from __future__ import annotations

import json
import logging
import tempfile
from pathlib import Path

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GroupKFold

from heichan.model.encoder import ENCODER_CONFIG, GRAPH, TOKENIZER, Encoder, EncoderTagger, heads_proba
from heichan.model.ensemble import N_FEATURES, EnsembleTagger, stack_features, window_scores
from heichan.model.windows import sentence_windows

from .data import LabelledSet
from .ngram import fit_ngram

log = logging.getLogger(__name__)
PREFIX = "passage: "  # the E5 family embeds documents with this prefix


def export_encoder(base_model: str | Path, out: Path, window: int = 510) -> Path:
    """Export a transformers encoder directory to `out` as a dynamic-int8 ONNX graph + tokenizer."""
    import torch
    from onnxruntime.quantization import QuantType, quantize_dynamic
    from transformers import AutoModel, AutoTokenizer

    out.mkdir(parents=True, exist_ok=True)
    model = AutoModel.from_pretrained(base_model).eval()
    tokenizer = AutoTokenizer.from_pretrained(base_model)
    tokenizer.backend_tokenizer.save(str(out / TOKENIZER))

    class Hidden(torch.nn.Module):
        def __init__(self, inner):
            super().__init__()
            self.inner = inner

        def forward(self, input_ids, attention_mask):
            return self.inner(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state

    ids = torch.ones(2, 16, dtype=torch.long)
    axes = {0: "batch", 1: "tokens"}
    with tempfile.TemporaryDirectory() as tmp:
        fp32 = Path(tmp) / "fp32.onnx"
        torch.onnx.export(
            Hidden(model),
            (ids, torch.ones_like(ids)),
            str(fp32),
            input_names=["input_ids", "attention_mask"],
            output_names=["hidden"],
            opset_version=17,
            dynamo=False,
            dynamic_axes={"input_ids": axes, "attention_mask": axes, "hidden": axes},
        )
        quantize_dynamic(
            str(fp32), str(out / GRAPH), weight_type=QuantType.QInt8, op_types_to_quantize=["MatMul", "Gather"]
        )
    config = {"base_model": str(base_model), "prefix": PREFIX, "window": window, "quantization": "dynamic int8"}
    (out / ENCODER_CONFIG).write_text(json.dumps(config, indent=2), encoding="utf-8")
    return out


def fit_heads(emb: np.ndarray, data: LabelledSet, C: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    n_labels = data.Y.shape[1]
    coef, intercept = np.zeros((n_labels, emb.shape[1]), np.float32), np.full(n_labels, -10.0, np.float32)
    for j in range(n_labels):
        rows = np.flatnonzero(data.mask[:, j])
        y = data.Y[rows, j].astype(int)
        if 0 < y.sum() < len(y):
            clf = LogisticRegression(C=C, class_weight="balanced", max_iter=3000, random_state=seed).fit(emb[rows], y)
            coef[j], intercept[j] = clf.coef_[0], clf.intercept_[0]
    return coef, intercept


def out_of_fold(
    train: LabelledSet,
    emb: np.ndarray,
    parts: list[np.ndarray],
    labels: list[str],
    C: float,
    encoder_C: float,
    folds: int,
    seed: int,
) -> np.ndarray:
    """(n, n_labels, 4) stacker features for every train row from models that did not see it."""
    feats = np.zeros((len(train), len(labels), N_FEATURES))
    for k, (tr, te) in enumerate(GroupKFold(n_splits=folds).split(train.texts, groups=train.groups)):
        log.info("out-of-fold %d/%d", k + 1, folds)
        ngram = fit_ngram(train.subset(tr), labels, C=C, seed=seed)
        texts = [train.texts[i] for i in te]
        coef, intercept = fit_heads(emb[tr], train.subset(tr), encoder_C, seed)
        enc = heads_proba(coef, intercept, emb[te])
        enc_windows = np.array([heads_proba(coef, intercept, parts[i]).max(0) for i in te])
        feats[te] = stack_features(ngram.whole_proba(texts), window_scores(ngram, texts)[0], enc, enc_windows)
    return feats


def fit_stacker(feats: np.ndarray, data: LabelledSet, seed: int) -> tuple[np.ndarray, np.ndarray]:
    n_labels = data.Y.shape[1]
    weights, bias = np.tile([1.0] + [0.0] * (N_FEATURES - 1), (n_labels, 1)), np.zeros(n_labels)
    for j in range(n_labels):
        rows = np.flatnonzero(data.mask[:, j])
        y = data.Y[rows, j].astype(int)
        if 0 < y.sum() < len(y):
            clf = LogisticRegression(C=1.0, max_iter=2000, random_state=seed).fit(feats[rows, j], y)
            weights[j], bias[j] = clf.coef_[0], clf.intercept_[0]
    return weights, bias


def fit_ensemble(
    train: LabelledSet,
    labels: list[str],
    base_model: str,
    work_dir: Path,
    C: float = 10.0,
    encoder_C: float = 4.0,
    folds: int = 5,
    seed: int = 42,
) -> EnsembleTagger:
    encoder_dir = export_encoder(base_model, work_dir / "encoder")
    encoder = Encoder(encoder_dir)
    log.info("embedding %d training paragraphs", len(train))
    emb, parts = encoder.encode(train.texts, [sentence_windows(t) for t in train.texts])
    feats = out_of_fold(train, emb, parts, labels, C, encoder_C, folds, seed)
    weights, bias = fit_stacker(feats, train, seed)
    gate = cascade_gate(feats, train)
    log.info("cascade gate %.4f", gate)
    ngram = fit_ngram(train, labels, C=C, seed=seed)
    coef, intercept = fit_heads(emb, train, encoder_C, seed)
    half = np.full(len(labels), 0.5)
    return EnsembleTagger(
        ngram, EncoderTagger(encoder, coef, intercept, labels, half), weights, bias, labels, half, gate=gate
    )


def cascade_gate(feats: np.ndarray, data: LabelledSet, keep: float = 0.995) -> float:
    """The n-gram score below which a paragraph skips the encoder: `keep` of the training
    paragraphs with a label score above it (out of fold)."""
    ngram_max = 1.0 / (1.0 + np.exp(-feats[:, :, :2].max(axis=(1, 2))))
    positive = (data.Y * data.mask).any(1)
    return float(np.quantile(ngram_max[positive], 1 - keep)) if positive.any() else 0.0
