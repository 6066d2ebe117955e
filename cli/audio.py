"""``genre audio …``: the audio path (wav2vec2 classifier, gradient-guided transformation, FAD)."""

from __future__ import annotations

import click


@click.group()
def audio() -> None:
    """Audio genre classification and transformation (wav2vec2 and spectrogram backends).

    The audio commands (render, train, evaluate, transform, fad) are being built; see the
    README's road map. The HDF5 cache and the CLI conventions they will use are those of
    `genre midi`.
    """
