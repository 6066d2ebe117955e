"""Audio genre classifiers behind one interface: waveform in → embeddings and logits out.

An :class:`AudioClassifier` is a *backend* (waveform ``(B, T)`` at 16 kHz → embedding
``(B, D)``; every backend of :mod:`audiogenre.backends` — the frozen wav2vec2 of Armeniakos & Bistas and
the trainable networks of seeds 003 and 001 — follows one protocol) followed by a genre head
(:class:`GenreHead`, the seed's MLP, or :class:`LinearHead`).

It is saved and loaded through the model registry (:mod:`shared.registry`, kind
``"audio-classifier"``): ``model.json`` holds an :class:`AudioClassifierConfig` (backend name
and config, head, segment length), the preprocessing settings, the genre names and the
backend's description; ``model.safetensors`` the head and, for trainable backends, the
backend's weights. The wav2vec2 weights are not copied into the file: loading reads them from
where they were (or from ``encoder=``) and checks that they are the same weights.

Because a frozen backend gives each clip one fixed embedding, training only needs the head:
see :mod:`audiogenre.embeddings` (encode once, train from the HDF5 cache).
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import torch
from torch import nn

from audiogenre.backends import (  # noqa: F401  (re-exported: the wav2vec2 backend's old home)
    ENCODER_SIZES,
    FRAME_RATE,
    Backend,
    Normalize,
    Wav2Vec2Backend,
    load_wav2vec2,
    make_backend,
    make_random_wav2vec2,
    pool_frames,
    random_wav2vec2_config,
    state_sha1,
)
from shared.errors import GenreError
from shared.registry import register, save_model, shipped_model

log = logging.getLogger(__name__)

KIND = "audio-classifier"
#: The shipped default: trained on audio rendered from ../shared/data (see its model card).
#: ``--classifier audio-rendered`` names it too.
DEFAULT_AUDIO_MODEL = shipped_model("audio-rendered")


class GenreHead(nn.Module):
    """GELU → Dropout(p) → Linear(D, hidden) → GELU → Dropout(p) → Linear(hidden, n_genres) (Armeniakos & Bistas)."""

    def __init__(self, dim: int, n_genres: int, hidden: int = 512, dropout: float = 0.4):
        super().__init__()
        self.net = nn.Sequential(nn.GELU(), nn.Dropout(dropout), nn.Linear(dim, hidden), nn.GELU(),
                                 nn.Dropout(dropout), nn.Linear(hidden, n_genres))
        self.dim, self.n_genres, self.hidden, self.dropout = dim, n_genres, hidden, dropout

    def forward(self, emb: torch.Tensor) -> torch.Tensor:
        return self.net(emb)

    def config(self) -> dict:
        return {"type": "mlp", "dim": self.dim, "hidden": self.hidden, "dropout": self.dropout}


class LinearHead(nn.Module):
    """Linear(D, n_genres): the classifier layer of the trainable backends (their papers' FC and
    dropout layers are part of the backend)."""

    def __init__(self, dim: int, n_genres: int):
        super().__init__()
        self.net = nn.Linear(dim, n_genres)
        self.dim, self.n_genres = dim, n_genres

    def forward(self, emb: torch.Tensor) -> torch.Tensor:
        return self.net(emb)

    def config(self) -> dict:
        return {"type": "linear", "dim": self.dim}


def make_head(config: dict, n_genres: int) -> nn.Module:
    """A head from its config (``{"type": "mlp", "dim", "hidden", "dropout"}`` or ``{"type": "linear", "dim"}``)."""
    kind = config.get("type", "mlp")
    if kind == "linear":
        return LinearHead(int(config["dim"]), n_genres)
    if kind == "mlp":
        return GenreHead(int(config["dim"]), n_genres, hidden=int(config["hidden"]), dropout=float(config["dropout"]))
    raise GenreError(f"unknown head type {kind!r} (a newer version of the toolkit?)")


@dataclass(frozen=True)
class AudioClassifierConfig:
    """What rebuilds an audio classifier (its weights aside).

    Attributes
    ----------
    backend : a name of :data:`audiogenre.backends.BACKENDS`.
    backend_config : that backend's config dataclass, as a dict.
    head : the head's config (see :func:`make_head`).
    segment_seconds : the clip length a trainable backend was trained on; None for wav2vec2.
    """

    backend: str
    backend_config: dict = field(default_factory=dict)
    head: dict = field(default_factory=dict)
    segment_seconds: float | None = None


class AudioClassifier(nn.Module):
    """``backend`` (waveform → embedding) + ``head`` (embedding → logits), with its genre names."""

    def __init__(self, backend: Backend, head: nn.Module, genres: Sequence[str]):
        super().__init__()
        if head.n_genres != len(genres):
            raise GenreError(f"head has {head.n_genres} outputs but {len(genres)} genres were given")
        self.backend = backend
        self.head = head
        self.genres = list(genres)

    def embed(self, wave: torch.Tensor) -> torch.Tensor:
        return self.backend(wave)

    def forward(self, wave: torch.Tensor) -> torch.Tensor:
        return self.head(self.backend(wave))

    def genre_index(self, genre: str) -> int:
        if genre not in self.genres:
            raise GenreError(f"unknown genre {genre!r}: this classifier knows {', '.join(self.genres)}")
        return self.genres.index(genre)

    # ---- saving and loading (shared.registry) ----------------------------------------------
    def config(self, preprocess: dict | None = None) -> AudioClassifierConfig:
        """This classifier's :class:`AudioClassifierConfig`. A trainable backend that was not told
        its segment length takes the clip length of ``preprocess`` (what it was trained on)."""
        segment = self.backend.segment_seconds
        if segment is None and self.backend.trainable and preprocess and preprocess.get("seconds"):
            segment = float(preprocess["seconds"])
        name = self.backend.describe()["type"]
        return AudioClassifierConfig(backend=name, backend_config=self.backend.config(), head=self.head.config(),
                                     segment_seconds=segment)

    def weights_to_save(self) -> dict:
        """The head, and the backend only if its weights are the model's own (not a frozen wav2vec2)."""
        state = self.state_dict()
        if not self.backend.trainable:
            state = {k: v for k, v in state.items() if k.startswith("head.")}
        return state

    def load_saved_weights(self, tensors: dict) -> None:
        if self.backend.trainable:
            self.load_state_dict(tensors, strict=True)
            return
        other = sorted(k for k in tensors if not k.startswith("head."))
        if other:
            raise RuntimeError(f"unexpected weights for a frozen backend: {', '.join(other[:3])}")
        self.head.load_state_dict({k[len("head."):]: v for k, v in tensors.items()}, strict=True)

    def save(self, folder: str | os.PathLike, *, preprocess: dict, extra: dict | None = None) -> Path:
        """Write the classifier (see :mod:`shared.registry`); ``extra``: e.g. ``train``, ``metrics``."""
        return save_model(folder, self, KIND, self.config(preprocess), settings=dict(preprocess),
                          genres=self.genres, backend=self.backend.describe(), **(extra or {}))

    @classmethod
    def load(cls, folder: str | os.PathLike, *, encoder: str | None = None,
             device: str = "cpu") -> tuple[AudioClassifier, dict]:
        """Rebuild a saved classifier (a folder or a shipped model's name, e.g. ``audio-rendered``);
        ``encoder`` overrides where the wav2vec2 weights are read from."""
        from shared.registry import load_model

        return load_model(folder, KIND, device=device, encoder=encoder)


def check_settings(settings) -> None:
    """ValueError (said by :func:`shared.registry.load_model` as one line naming the folder) unless
    ``settings`` hold the preprocessing a classifier was trained with: its clips' ``sample_rate``
    and ``seconds`` (required: with defaults in their place it would hear other clips than it
    learned on), and an ``offset`` and ``noise`` that make sense where given."""
    import math

    from audiogenre.audio import FILE_RATES, MIN_SECONDS

    if not isinstance(settings, dict):
        raise ValueError("it has no preprocessing settings (\"settings\": sample_rate, seconds, …)")
    missing = [k for k in ("sample_rate", "seconds") if k not in settings]
    if missing:
        raise ValueError(f"its settings lack {' and '.join(missing)}: the clips it was trained on are unknown")

    def number(key, lo, hi, whole=False):
        v = settings[key]
        ok = isinstance(v, int) if whole else isinstance(v, (int, float))
        if isinstance(v, bool) or not ok or not math.isfinite(v) or not lo <= v <= hi:
            raise ValueError(f"its settings hold {key} = {v!r}, not {'a whole number' if whole else 'a number'} "
                             f"in {lo:g}..{hi:g}")

    number("sample_rate", FILE_RATES[0], FILE_RATES[1], whole=True)
    number("seconds", MIN_SECONDS, 3600.0)
    for key in ("offset", "noise"):
        if key in settings:
            number(key, 0.0, 3600.0 if key == "offset" else 10.0)


@register(KIND, AudioClassifierConfig, version=1)
def _build(config: AudioClassifierConfig, meta: dict, *, encoder: str | None = None) -> AudioClassifier:
    check_settings(meta.get("settings"))
    backend = make_backend(config.backend, config.backend_config, encoder=encoder, segment_seconds=config.segment_seconds)
    if not backend.trainable:  # its weights come from elsewhere: they must be the ones it was trained with
        if backend.identity() != meta["backend"]["identity"]:
            where = encoder or config.backend_config.get("encoder")
            raise GenreError(f"the encoder {where} has other weights than the one this classifier was trained on; "
                             "pass --encoder with the folder of the original weights")
    genres = meta["genres"]
    if not isinstance(genres, list) or not all(isinstance(g, str) for g in genres):
        raise TypeError("genres must be a list of names")
    return AudioClassifier(backend, make_head(config.head, len(genres)), genres)


def model_segment(meta: dict) -> float | None:
    """The segment length (seconds) a saved classifier's trainable backend was trained on; None
    for wav2vec2 classifiers (they take clips of the length in their preprocessing settings)."""
    seg = (meta.get("config") or {}).get("segment_seconds")
    return float(seg) if seg else None


def model_preprocess(meta: dict) -> dict:
    """The preprocessing settings (sample rate, clip seconds, offset, noise) of a saved classifier."""
    return dict(meta.get("settings") or {})
