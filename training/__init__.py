"""Training and evaluation: `heichan train` and `heichan eval`."""
