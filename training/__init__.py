"""Training and evaluation: `heichan train` and `heichan eval`."""

if __name__ != "heichan.training":  # the folder training/ is installed as heichan.training only
    raise ImportError(f"import heichan.training, not {__name__}: heichan installs training/ as heichan.training")
