"""Service settings: constructor arguments, else HEICHAN_* environment variables, else defaults.

A bad value is refused at start-up with a message naming the variable (see `settings_error`).
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="HEICHAN_", frozen=False)

    model_dir: str | None = Field(None, description="model directory or shipped model name; None: the default model")
    models_dir: Path = Field(Path("models"), description="where /v1/admin/reload looks up models by name")
    taxonomy: str | None = Field(None, description="taxonomy YAML the model must agree with; None: the model's own")
    admin_token: str | None = Field(None, description="bearer token of the admin endpoints; None disables them")
    max_body_bytes: int = Field(2_000_000, ge=1, description="largest request body")
    max_batch: int = Field(32, ge=1, description="most articles in one /v1/tag/batch request")
    workers: int = Field(2, ge=1, description="inference threads")
    max_pending: int = Field(64, ge=1, description="requests in progress before answering 503")
    request_timeout: float = Field(
        10.0, gt=0, le=3600, description="seconds a tagging request may take, waiting included, before 503 timeout"
    )

    @field_validator("admin_token", "model_dir", "taxonomy")
    @classmethod
    def _empty_is_unset(cls, value: str | None) -> str | None:
        return value or None


def settings_error(exc: ValidationError) -> str:
    """One line per bad value, naming the environment variable."""
    return "; ".join(f"HEICHAN_{'_'.join(str(p) for p in e['loc']).upper()}: {e['msg']}" for e in exc.errors())
