"""`heichan train`: train a backend on the fixed splits, tune thresholds on dev, evaluate on
dev and test, and write the model directory (weights, manifest, model card, metrics)."""
from __future__ import annotations

import argparse
import json
import logging
import shutil
from dataclasses import asdict, dataclass, fields
from pathlib import Path

from heichan.labels import load_taxonomy
from heichan.labels.corpus import DATA_DIR, load_split
from heichan.labels.taxonomy import TAXONOMY_PATH
from heichan.model.artifacts import write_manifest

from .data import to_labelled_set, untrainable_labels
from .evaluate import evaluate, format_evaluation, summary
from .thresholds import tune_thresholds

log = logging.getLogger(__name__)


@dataclass
class TrainConfig:
    backend: str = "ngram"                # ngram | bert
    out: str = "runs/model"               # the model directory to write
    base_model: str = "bert-base-chinese"  # bert: hub id or local directory
    data_dir: str = str(DATA_DIR)         # holds train.jsonl, dev.jsonl, test.jsonl
    taxonomy: str = str(TAXONOMY_PATH)
    name: str = ""                        # default: heichan-<backend>
    version: str = "1"
    seed: int = 42
    C: float = 10.0                       # ngram: inverse regularisation strength
    epochs: int = 4                       # bert
    batch_size: int = 16                  # bert
    learning_rate: float = 3e-5           # bert
    max_length: int = 256                 # bert: tokens per window
    stride: int = 64                      # bert: overlap between windows
    patience: int = 2                     # bert: epochs without dev improvement before stopping
    max_steps: int = 0                    # bert: stop after this many steps (0: no limit)
    max_train_samples: int = 0            # quick debugging runs (0: all)
    progress: bool = True

    def __post_init__(self) -> None:
        if self.backend not in ("ngram", "bert"):
            raise ValueError(f"backend must be 'ngram' or 'bert', got {self.backend!r}")
        if self.C <= 0 or self.learning_rate <= 0:
            raise ValueError("C and learning_rate must be positive")
        if not 0 <= self.stride < self.max_length:
            raise ValueError(f"stride must be in [0, max_length), got {self.stride}")
        self.name = self.name or f"heichan-{self.backend}"


def parse_config(argv: list[str] | None = None) -> TrainConfig:
    parser = argparse.ArgumentParser(prog="heichan train", description=__doc__)
    for f in fields(TrainConfig):
        flag = "--" + f.name.replace("_", "-")
        if f.type in ("bool", bool):
            parser.add_argument(flag, action=argparse.BooleanOptionalAction, default=f.default)
        else:
            kind = {"int": int, "float": float}.get(str(f.type), str)
            parser.add_argument(flag, type=kind, default=f.default)
    return TrainConfig(**vars(parser.parse_args(argv)))


def _model_card(cfg: TrainConfig, taxonomy, counts: dict, reports: dict[str, str], thresholds) -> str:
    rows = "\n".join(f"| `{l}` | {t:.2f} |" for l, t in zip(taxonomy.ids, thresholds))
    base = f"\n- Base model: `{cfg.base_model}`" if cfg.backend == "bert" else ""
    return f"""# Model card: {cfg.name} v{cfg.version}

- Backend: `{cfg.backend}`{base}
- Taxonomy version: {taxonomy.version} ({len(taxonomy.ids)} labels)
- Training data: heichan corpus, train {counts['train']}, dev {counts['dev']}, test {counts['test']} paragraphs
- Seed: {cfg.seed}

## Intended use
Tagging case paragraphs of Chinese police bulletins and news reports about the online-account
black market with what the criminals did. Scores are per-label probabilities; labels are
independent. A paragraph with no label is a valid answer.

## Limitations
The corpus is small (about a thousand paragraphs) and mostly written by the heichan team in the
style of real reports; expect lower scores on styles it does not cover. Thresholds were tuned on
a dev split with 10–20 positives per label.

## Thresholds (tuned on dev)
| label | threshold |
|---|---|
{rows}

## Dev evaluation
```
{reports['dev']}
```

## Test evaluation
```
{reports['test']}
```
"""


def main(argv: list[str] | None = None) -> dict:
    # 1. configuration
    cfg = parse_config(argv)
    taxonomy = load_taxonomy(cfg.taxonomy)
    labels = taxonomy.ids  # column order is fixed by the taxonomy, not by the data

    # 2. data: the fixed splits
    data_dir = Path(cfg.data_dir)
    splits = {s: [asdict(r) for r in load_split(s, data_dir)] for s in ("train", "dev", "test")}
    if cfg.max_train_samples:
        splits["train"] = splits["train"][:cfg.max_train_samples]
    train, dev = (to_labelled_set(splits[s], labels, taxonomy) for s in ("train", "dev"))
    missing = untrainable_labels(train, labels)
    if missing:
        raise ValueError(
            f"cannot train label(s) {missing}: the train split has no positive or no negative example among the "
            "paragraphs annotated for them. For a new label, add examples and re-judge some existing authoring "
            f"files for it (then set their header to '# taxonomy_version: {taxonomy.version}').")

    # 3. fit the backend
    if cfg.backend == "ngram":
        from tqdm.auto import tqdm
        from .ngram import fit_ngram
        with tqdm(total=len(labels), desc="training labels", disable=not cfg.progress) as bar:
            tagger = fit_ngram(train, labels, C=cfg.C, seed=cfg.seed, progress=bar.update)
    else:
        from .bert import fine_tune
        tagger, losses = fine_tune(train, dev, labels, cfg.base_model, epochs=cfg.epochs, batch_size=cfg.batch_size,
                                   learning_rate=cfg.learning_rate, max_length=cfg.max_length, stride=cfg.stride,
                                   patience=cfg.patience, max_steps=cfg.max_steps or None, seed=cfg.seed,
                                   progress=cfg.progress)

    # 4. thresholds on dev, then evaluate dev and test
    tagger.thresholds = tune_thresholds(tagger.predict_proba(dev.texts), dev.Y, dev.mask)
    evaluations = {s: evaluate(tagger, splits[s], taxonomy) for s in ("dev", "test")}
    reports = {s: format_evaluation(ev) for s, ev in evaluations.items()}
    metrics = {s: {"model": ev.metrics["model"], "keyword_baseline": ev.metrics["keyword_baseline"],
                   **({"traditional": ev.metrics["traditional"]} if "traditional" in ev.metrics else {})}
               for s, ev in evaluations.items()}

    # 5. save into a fresh directory, then swap it in: a reader never sees a half-written model
    out = Path(cfg.out)
    staging = out.with_name(out.name + ".partial")
    shutil.rmtree(staging, ignore_errors=True)
    tagger.save(staging)
    (staging / "metrics.json").write_text(json.dumps(metrics, ensure_ascii=False, indent=2), encoding="utf-8")
    counts = {s: len(rows) for s, rows in splits.items()}
    (staging / "MODEL_CARD.md").write_text(_model_card(cfg, taxonomy, counts, reports, tagger.thresholds), encoding="utf-8")
    extra = {"training_loss": {"first": losses[0], "last": losses[-1], "steps": len(losses)}} if cfg.backend == "bert" else {}
    write_manifest(staging, backend=cfg.backend, name=cfg.name, version=cfg.version, labels=labels,
                   taxonomy_version=taxonomy.version, thresholds=[round(float(t), 4) for t in tagger.thresholds],
                   metrics={s: {"model": summary(m["model"]), "keyword_baseline": summary(m["keyword_baseline"])}
                            for s, m in metrics.items()},
                   data=counts, config={k: v for k, v in asdict(cfg).items() if k != "progress"}, **extra)
    if out.exists():
        shutil.rmtree(out)
    staging.rename(out)
    log.info("wrote %s", out)
    for split, report in reports.items():
        print(f"== {split} ==\n{report}\n")
    return metrics
