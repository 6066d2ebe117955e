"""What the symbolic and the audio paths share: the HDF5 cache, atomic writes, errors, plotting."""

from shared.errors import GenreError
from shared.version import __version__

__all__ = ["GenreError", "__version__"]
