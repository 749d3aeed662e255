"""Load a model directory: verify its manifest, check its labels, dispatch on its backend.

The shipped models live in this package: `default` (the n-gram + encoder ensemble) and `fast`
(the n-gram model alone, for archives). A model directory carries the taxonomy it was trained
with (`taxonomy.yaml`), and that taxonomy is the one it is served and run with.
"""

from __future__ import annotations

from pathlib import Path

from heichan.labels import Taxonomy, load_taxonomy

from .artifacts import ModelLoadError, read_manifest
from .tagger import TAXONOMY_FILE, Tagger

SHIPPED = {"default": Path(__file__).with_name("default"), "fast": Path(__file__).with_name("fast")}
DEFAULT_MODEL_DIR = SHIPPED["default"]


def resolve_model(model: str | Path | None) -> Path:
    """A shipped model's name (`default`, `fast`) or a directory."""
    if model is None:
        return DEFAULT_MODEL_DIR
    return SHIPPED.get(str(model), Path(model))


def model_taxonomy(model_dir: Path) -> Taxonomy:
    """The taxonomy a model was trained with (older model directories: the installed one)."""
    path = model_dir / TAXONOMY_FILE
    return load_taxonomy(path) if path.is_file() else load_taxonomy()


def check_labels(model_labels: list[str], taxonomy: Taxonomy, where: str, which: str = "the taxonomy") -> None:
    """A model may know fewer labels than the taxonomy (older version), never unknown ones."""
    unknown = [l for l in model_labels if l not in taxonomy.ids]
    if unknown:
        raise ModelLoadError(
            f"{where}: model labels {unknown} are not in {which} (version {taxonomy.version}); "
            f"known labels: {taxonomy.ids}"
        )


def load_tagger(model_dir: str | Path | None = None, taxonomy: Taxonomy | None = None, **options) -> Tagger:
    """Load a model directory or shipped model name (default: `default`), verifying its manifest.

    `taxonomy`, when given, must contain every label of the model (a one-line error otherwise);
    the tagger keeps the taxonomy saved with the model as `tagger.taxonomy`. `options` go to the
    backend (e.g. ``quantize="int8"`` for BERT).
    """
    model_dir = resolve_model(model_dir)
    manifest = read_manifest(model_dir)
    own = model_taxonomy(model_dir)
    check_labels(manifest["labels"], own, model_dir.name, "the model's taxonomy")
    if taxonomy is not None:
        check_labels(manifest["labels"], taxonomy, model_dir.name, "the given taxonomy")
    tagger = _load_backend(model_dir, manifest, **options)
    tagger.taxonomy = own
    return tagger


def _load_backend(model_dir: Path, manifest: dict, threads: int | None = None, **options) -> Tagger:
    """`threads`: ONNX Runtime threads of an encoder (see `encoder.default_threads`)."""
    backend = manifest["backend"]
    if backend == "ngram":
        from .ngram import NgramTagger

        return NgramTagger.load(model_dir, manifest)
    if backend == "bert":
        from .bert import BertTagger

        return BertTagger.load(model_dir, manifest, **options)
    if backend == "ensemble":
        from .ensemble import EnsembleTagger

        return EnsembleTagger.load(model_dir, manifest, threads)
    raise ModelLoadError(f"{model_dir}: unknown backend {backend!r}; expected 'ngram', 'ensemble' or 'bert'")
