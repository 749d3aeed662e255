"""Fine-tune the BERT backend: BCE with per-label positive weights, the taxonomy-version mask,
max-pooling over windows exactly as at inference, early stopping on dev macro-F1."""

from __future__ import annotations

import copy
import logging
import random

import numpy as np

from heichan.model.bert import BertTagger

from .data import LabelledSet
from .evaluate import compute_metrics

log = logging.getLogger(__name__)


def set_seed(seed: int) -> None:
    import torch

    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    torch.use_deterministic_algorithms(True, warn_only=True)


def positive_weights(train: LabelledSet) -> np.ndarray:
    """neg/pos per label over judged rows, clipped to [1, 30]: rare labels weigh more."""
    pos = (train.Y * train.mask).sum(0)
    neg = ((1 - train.Y) * train.mask).sum(0)
    return np.clip(neg / np.maximum(pos, 1), 1.0, 30.0)


def fine_tune(
    train: LabelledSet,
    dev: LabelledSet,
    labels: list[str],
    base_model: str,
    *,
    epochs: int = 4,
    batch_size: int = 16,
    learning_rate: float = 3e-5,
    max_length: int = 256,
    stride: int = 64,
    patience: int = 2,
    max_steps: int | None = None,
    seed: int = 42,
    progress: bool = True,
) -> tuple[BertTagger, list[float]]:
    """Returns the best tagger on dev and the training loss of every step."""
    import torch
    from tqdm.auto import tqdm
    from transformers import get_linear_schedule_with_warmup

    set_seed(seed)
    tagger = BertTagger.from_pretrained(base_model, labels, max_length=max_length, stride=stride)
    model = tagger.model
    loss_fn = torch.nn.BCEWithLogitsLoss(
        reduction="none", pos_weight=torch.tensor(positive_weights(train), dtype=torch.float32)
    )
    steps_per_epoch = (len(train) + batch_size - 1) // batch_size
    total = min(max_steps or 10**9, steps_per_epoch * epochs)
    optimizer = torch.optim.AdamW(model.parameters(), lr=learning_rate, weight_decay=0.01)
    schedule = get_linear_schedule_with_warmup(optimizer, max(1, total // 10), total)
    order_rng = np.random.default_rng(seed)
    losses, best, best_state, stale, step = [], -1.0, None, 0, 0
    bar = tqdm(total=total, desc="fine-tuning", unit="step", disable=not progress)
    for epoch in range(epochs):
        model.train()
        order = order_rng.permutation(len(train))
        for i in range(0, len(order), batch_size):
            if step >= total:
                break
            idx = order[i : i + batch_size]
            logits = tagger.pooled_logits([train.texts[k] for k in idx])
            target = torch.tensor(train.Y[idx])
            mask = torch.tensor(train.mask[idx], dtype=torch.float32)  # unjudged labels teach nothing
            loss = (loss_fn(logits, target) * mask).sum() / mask.sum().clamp(min=1)
            optimizer.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            schedule.step()
            losses.append(float(loss))
            step += 1
            bar.update(1)
            bar.set_postfix(loss=f"{losses[-1]:.4f}")
        model.eval()
        score = compute_metrics(tagger.predict_proba(dev.texts), dev, np.full(len(labels), 0.5), labels)["macro"]["f1"]
        log.info("epoch %d: dev macro-F1 %.4f", epoch + 1, score)
        if score > best:
            best, best_state, stale = score, copy.deepcopy(model.state_dict()), 0
        else:
            stale += 1
        if stale >= patience or step >= total:
            break
    bar.close()
    if best_state is not None:
        model.load_state_dict(best_state)
    model.eval()
    return tagger, losses
