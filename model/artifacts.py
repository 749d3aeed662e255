"""Model directories: a manifest with labels, taxonomy version, thresholds, metrics, library
versions and a SHA-256 checksum of every file. Nothing here ever unpickles anything."""

from __future__ import annotations

import hashlib
import json
import platform
import time
from importlib import metadata
from pathlib import Path

MANIFEST = "manifest.json"
FORMAT_VERSION = 1
_REQUIRED = ("format_version", "backend", "name", "version", "labels", "taxonomy_version", "thresholds", "files")


class ModelLoadError(RuntimeError):
    """A model directory is missing, incomplete, corrupt, or incompatible with the taxonomy."""


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def library_versions() -> dict[str, str]:
    versions = {"python": platform.python_version()}
    for dist in ("numpy", "scikit-learn", "torch", "transformers", "tokenizers", "safetensors", "heichan"):
        try:
            versions[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            pass
    return versions


def write_manifest(model_dir: Path, **fields) -> dict:
    """Write manifest.json covering every other file in `model_dir` (call it last)."""
    files = {
        p.relative_to(model_dir).as_posix(): sha256(p)
        for p in sorted(model_dir.rglob("*"))
        if p.is_file() and p.name != MANIFEST
    }
    manifest = {
        "format_version": FORMAT_VERSION,
        **fields,
        "files": files,
        "library_versions": library_versions(),
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    missing = [k for k in _REQUIRED if k not in manifest]
    if missing:
        raise ValueError(f"manifest is missing {missing}")
    (model_dir / MANIFEST).write_text(json.dumps(manifest, ensure_ascii=False, indent=2), encoding="utf-8")
    return manifest


def read_manifest(model_dir: str | Path, verify: bool = True) -> dict:
    """Read and validate a model directory's manifest; with `verify`, check every file's checksum."""
    model_dir = Path(model_dir)
    if not model_dir.is_dir():
        raise ModelLoadError(f"model directory {str(model_dir)!r} does not exist or is not a directory")
    path = model_dir / MANIFEST
    if not path.is_file():
        raise ModelLoadError(
            f"{model_dir} has no {MANIFEST}: it is not a heichan model directory "
            "(train one with `heichan train --out DIR`)"
        )
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ModelLoadError(f"{path} is not valid JSON: {exc}") from exc
    missing = [k for k in _REQUIRED if k not in manifest] if isinstance(manifest, dict) else list(_REQUIRED)
    if missing:
        raise ModelLoadError(f"{path} is missing fields {missing}")
    if manifest["format_version"] > FORMAT_VERSION:
        raise ModelLoadError(
            f"{path} has format_version {manifest['format_version']}; this heichan reads up to "
            f"{FORMAT_VERSION}. Upgrade heichan."
        )
    if verify:
        for name, expected in manifest["files"].items():
            file = model_dir / name
            if not file.is_file():
                raise ModelLoadError(f"{model_dir}: file {name!r} listed in the manifest is missing")
            if sha256(file) != expected:
                raise ModelLoadError(
                    f"{model_dir}: checksum mismatch for {name!r}: the file was changed or "
                    "corrupted after training. Retrain or restore the directory."
                )
    return manifest
