"""The taxonomy (label ids, names, chain stages, cue phrases) and the labelled corpus.

`labels/taxonomy.yaml` is the single source of truth for label ids: every other module gets
them from `load_taxonomy()`.
"""

if __name__ != "heichan.labels":  # the folder labels/ is installed as heichan.labels only
    raise ImportError(f"import heichan.labels, not {__name__}: heichan installs labels/ as heichan.labels")
from .taxonomy import Label, Taxonomy, TaxonomyError, load_taxonomy

__all__ = ["Label", "Taxonomy", "TaxonomyError", "load_taxonomy"]
