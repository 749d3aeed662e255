"""Per-label decision thresholds tuned on the dev split."""

from __future__ import annotations

import numpy as np

DEFAULT = 0.5
BOUNDS = (0.05, 0.95)


def f1_at(scores: np.ndarray, gold: np.ndarray, threshold: float) -> float:
    pred = scores >= threshold
    tp = float((pred & gold).sum())
    denom = pred.sum() + gold.sum()
    return 2 * tp / denom if denom else 1.0


def tune_thresholds(P: np.ndarray, Y: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """For each label, the threshold maximising dev F1.

    Dev support is small (10–20 positives a label), so many thresholds tie; we take the middle
    of the best plateau rather than its edge, which generalises better than the exact optimum.
    Labels with no dev positives keep 0.5.
    """
    thresholds = np.full(P.shape[1], DEFAULT)
    grid = np.round(np.arange(BOUNDS[0], BOUNDS[1] + 1e-9, 0.01), 2)
    for j in range(P.shape[1]):
        rows = mask[:, j]
        gold = Y[rows, j] > 0.5
        if not gold.any():
            continue
        f1s = np.array([f1_at(P[rows, j], gold, t) for t in grid])
        best = np.flatnonzero(f1s >= f1s.max() - 1e-9)
        # the longest run of consecutive best thresholds, then its midpoint
        runs = np.split(best, np.flatnonzero(np.diff(best) > 1) + 1)
        run = max(runs, key=len)
        thresholds[j] = float(grid[run[len(run) // 2]])
    return thresholds
