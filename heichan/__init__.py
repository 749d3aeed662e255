"""heichan: tag Chinese reports about the online-account black market. See README.md.

The project's top-level folders model/, labels/, training/, service/ and batch/ are installed as
heichan.model, heichan.labels, and so on (see `[tool.setuptools.package-dir]` in pyproject.toml).
"""

from pathlib import Path

_CHECKOUT = Path(__file__).resolve().parent.parent
if (_CHECKOUT / "pyproject.toml").is_file() and (_CHECKOUT / "model" / "__init__.py").is_file():
    # Run from a source checkout, this folder can shadow the installed package (the current
    # directory comes first on the import path); its subpackages are then the sibling folders.
    __path__.append(str(_CHECKOUT))
