"""Taggers: one interface (`Tagger`), two real backends (n-gram default, BERT)."""

if __name__ != "heichan.model":  # the folder model/ is installed as heichan.model only
    raise ImportError(f"import heichan.model, not {__name__}: heichan installs model/ as heichan.model")
from .article import ArticleResult, tag_article
from .artifacts import ModelLoadError
from .loading import DEFAULT_MODEL_DIR, SHIPPED, load_tagger, resolve_model
from .segment import Article, Paragraph, segment
from .tagger import Tagger, TagResult
from .text import normalize

__all__ = [
    "Article",
    "ArticleResult",
    "DEFAULT_MODEL_DIR",
    "ModelLoadError",
    "SHIPPED",
    "resolve_model",
    "Paragraph",
    "TagResult",
    "Tagger",
    "load_tagger",
    "normalize",
    "segment",
    "tag_article",
]
