"""Fit the n-gram backend: TF-IDF + one logistic regression per label + Platt calibration."""

from __future__ import annotations

import logging

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedGroupKFold

from heichan.model.ngram import NgramTagger, make_vectorizer

from .data import LabelledSet

log = logging.getLogger(__name__)


def _classifier(C: float, seed: int) -> LogisticRegression:
    return LogisticRegression(C=C, class_weight="balanced", solver="liblinear", max_iter=2000, random_state=seed)


def _platt(z: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """Fit p = sigmoid(a*z + b) on out-of-fold decision values."""
    lr = LogisticRegression(C=1e4, solver="lbfgs").fit(z.reshape(-1, 1), y)
    return float(lr.coef_[0, 0]), float(lr.intercept_[0])


def fit_ngram(
    train: LabelledSet,
    labels: list[str],
    C: float = 10.0,
    folds: int = 5,
    seed: int = 42,
    progress=None,
    windows: bool = False,
) -> NgramTagger:
    """Train on `train`; rows whose annotation did not judge a label are left out for that label.
    With `windows` the model also scores each paragraph's best window of two sentences."""
    vectorizer = make_vectorizer()
    X = vectorizer.fit_transform(train.texts)
    n_labels = len(labels)
    coef = np.zeros((n_labels, X.shape[1]), dtype=np.float32)
    intercept = np.full(n_labels, -10.0, dtype=np.float32)  # a label with no positives never fires
    platt = np.tile(np.array([1.0, 0.0], dtype=np.float32), (n_labels, 1))
    groups = np.array(train.groups)
    for j, label in enumerate(labels):
        rows = np.flatnonzero(train.mask[:, j])
        y = train.Y[rows, j].astype(int)
        if y.sum() < 2 or y.sum() == len(y):
            log.warning("label %s has %d positive(s) among %d judged rows: not trained", label, y.sum(), len(y))
            continue
        clf = _classifier(C, seed).fit(X[rows], y)
        coef[j], intercept[j] = clf.coef_[0], clf.intercept_[0]
        k = min(folds, int(y.sum()))
        oof = np.zeros(len(rows))
        for tr, te in StratifiedGroupKFold(n_splits=k, shuffle=True, random_state=seed).split(rows, y, groups[rows]):
            fold = _classifier(C, seed).fit(X[rows[tr]], y[tr])
            oof[te] = fold.decision_function(X[rows[te]])
        platt[j] = _platt(oof, y)
        if progress:
            progress(1)
    return NgramTagger(vectorizer, coef, intercept, platt, labels, np.full(n_labels, 0.5), windows=windows)
