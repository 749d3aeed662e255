"""Batch tagging of news archives: `heichan batch`."""
from .run import BatchConfig, BatchError, run_batch

__all__ = ["BatchConfig", "BatchError", "run_batch"]
