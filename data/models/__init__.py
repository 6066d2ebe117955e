"""The shipped models, installed as the package ``genre_models`` (pyproject.toml maps it onto
this folder): one folder per model, found by name with ``shared.registry.shipped_model``."""
