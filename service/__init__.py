"""The REST service: `heichan serve`. `create_app` builds the FastAPI application."""

if __name__ != "heichan.service":  # the folder service/ is installed as heichan.service only
    raise ImportError(f"import heichan.service, not {__name__}: heichan installs service/ as heichan.service")
from .app import create_app
from .settings import Settings

__all__ = ["Settings", "create_app"]
