"""Service settings: constructor arguments, falling back to HEICHAN_* environment variables."""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path


def _env_int(name: str, default: int) -> int:
    value = os.environ.get(name)
    return int(value) if value else default


@dataclass
class Settings:
    model_dir: str | None = field(default_factory=lambda: os.environ.get("HEICHAN_MODEL_DIR"))  # None: shipped model
    models_dir: Path = field(default_factory=lambda: Path(os.environ.get("HEICHAN_MODELS_DIR", "models")))
    admin_token: str | None = field(default_factory=lambda: os.environ.get("HEICHAN_ADMIN_TOKEN") or None)
    max_body_bytes: int = field(default_factory=lambda: _env_int("HEICHAN_MAX_BODY_BYTES", 2_000_000))
    max_batch: int = field(default_factory=lambda: _env_int("HEICHAN_MAX_BATCH", 32))
    workers: int = field(default_factory=lambda: _env_int("HEICHAN_WORKERS", 2))
    max_pending: int = field(default_factory=lambda: _env_int("HEICHAN_MAX_PENDING", 64))

    def __post_init__(self) -> None:
        self.models_dir = Path(self.models_dir)
        for name in ("max_body_bytes", "max_batch", "workers", "max_pending"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1, got {getattr(self, name)}")
