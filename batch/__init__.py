"""Batch tagging of news archives: `heichan batch`."""

if __name__ != "heichan.batch":  # the folder batch/ is installed as heichan.batch only
    raise ImportError(f"import heichan.batch, not {__name__}: heichan installs batch/ as heichan.batch")
from .run import BatchConfig, BatchError, run_batch

__all__ = ["BatchConfig", "BatchError", "run_batch"]
