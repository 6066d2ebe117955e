"""The package version, read once from the installed distribution metadata."""

from importlib.metadata import PackageNotFoundError, version

DISTRIBUTION = "genre-transfer"

try:
    __version__ = version(DISTRIBUTION)
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0+unknown"
