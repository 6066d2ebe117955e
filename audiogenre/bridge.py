"""Moved to :mod:`audiogenre.phrase_fad` ("bridge" names the transcription pipeline only).

Kept only until ``cli/midi.py`` imports ``transfer_fad`` from :mod:`audiogenre.phrase_fad`; then delete this file.
"""

from audiogenre.phrase_fad import phrase_embeddings, render_phrases, transfer_fad  # noqa: F401
