"""Audio genre classifiers behind one interface: waveform in → embeddings and logits out.

An :class:`AudioClassifier` is a *backend* (waveform ``(B, T)`` at 16 kHz → embedding
``(B, D)``) followed by a :class:`GenreHead`. The backend of seed 000 is
:class:`Wav2Vec2Backend`: a frozen ``transformers.Wav2Vec2Model`` (optionally cut to its first
K transformer layers; the seed used 7), always in eval mode, whose frames are pooled by the
average of mean- and max-pooling. Unlike the seed's code it

* normalises every clip to zero mean and unit variance *inside* the model
  (:class:`Normalize`, what ``Wav2Vec2FeatureExtractor(do_normalize=True)`` does), so the
  transformation's gradients reach the raw waveform through it;
* keeps the encoder in eval mode even when the classifier is put in train mode (no
  SpecAugment masking, dropout or layer drop in a "frozen" encoder);
* never asks for gradients of the encoder's parameters.

Because a frozen backend gives each clip one fixed embedding, training only needs the head:
see :mod:`audiogenre.embeddings` (encode once, train from the HDF5 cache).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from pathlib import Path
from typing import Sequence

import torch
from torch import nn

from shared.errors import GenreError

log = logging.getLogger(__name__)

KIND = "audio-classifier"
# the shipped default: trained on audio rendered from ../shared/data (see its model card)
DEFAULT_AUDIO_MODEL = Path(__file__).resolve().parents[1] / "data" / "models" / "audio-rendered"
FRAME_RATE = 50  # wav2vec2 frames per second of 16 kHz audio (stride 320)


class Normalize(nn.Module):
    """Zero mean, unit variance per clip (over time), as wav2vec2 was trained with."""

    def __init__(self, eps: float = 1e-7):
        super().__init__()
        self.eps = eps

    def forward(self, wave: torch.Tensor) -> torch.Tensor:
        mean = wave.mean(dim=-1, keepdim=True)
        var = wave.var(dim=-1, keepdim=True, unbiased=False)
        return (wave - mean) / torch.sqrt(var + self.eps)


def pool_frames(frames: torch.Tensor, pooling: str = "mean+max") -> torch.Tensor:
    """``(B, F, D)`` → ``(B, D)``: ``mean``, ``max`` or ``mean+max`` (their average, as the seed)."""
    if pooling == "mean":
        return frames.mean(dim=1)
    if pooling == "max":
        return frames.amax(dim=1)
    if pooling == "mean+max":
        return 0.5 * (frames.mean(dim=1) + frames.amax(dim=1))
    raise GenreError(f"unknown pooling {pooling!r}: use mean, max or mean+max")


def load_wav2vec2(name_or_path: str, layers: int | None = None):
    """``Wav2Vec2Model.from_pretrained`` with a one-line error when the weights are not there.

    Looks in the local Hugging Face cache first (instant when offline), then on the Hub.
    """
    from transformers import Wav2Vec2Model
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    local = Path(name_or_path).expanduser()
    hub_like = name_or_path.count("/") <= 1 and not name_or_path.startswith((".", "/", "~"))
    looks_local = local.exists() or not hub_like
    if looks_local and not local.exists():
        raise GenreError(f"no such encoder folder: {local} (pass --encoder with where the wav2vec2 weights are now)")
    if local.exists() and not (local / "config.json").exists():
        raise GenreError(f"{local} is not a Hugging Face model folder (no config.json); give a folder written by save_pretrained")
    kwargs = {"attn_implementation": "sdpa"}
    if layers:
        kwargs["num_hidden_layers"] = int(layers)
    try:
        try:
            model = Wav2Vec2Model.from_pretrained(str(local) if local.exists() else name_or_path, local_files_only=True, **kwargs)
        except OSError:
            if local.exists():
                raise
            model = Wav2Vec2Model.from_pretrained(name_or_path, **kwargs)
    except OSError as err:
        if local.exists():
            raise GenreError(f"cannot load the wav2vec2 encoder in {local}: {str(err).splitlines()[0]}") from None
        raise GenreError(
            f"the wav2vec2 weights {name_or_path!r} are not in the local Hugging Face cache and cannot be downloaded here; "
            f"on a machine with internet run `hf download {name_or_path} --local-dir DIR` (huggingface_hub), copy DIR here and pass --encoder DIR"
        ) from None
    except ValueError as err:
        raise GenreError(f"cannot load the wav2vec2 encoder {name_or_path!r}: {str(err).splitlines()[0]}") from None
    return model


def state_sha1(module: nn.Module) -> str:
    """Hash of a module's weights (names, shapes, values): identifies an encoder for caches."""
    h = hashlib.sha1()
    for name, t in sorted(module.state_dict().items()):
        h.update(name.encode())
        h.update(str(tuple(t.shape)).encode())
        h.update(t.detach().to("cpu").contiguous().view(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


class Wav2Vec2Backend(nn.Module):
    """Frozen wav2vec2 (first ``layers`` transformer layers) + frame pooling → ``(B, hidden)``."""

    kind = "wav2vec2"
    frame_rate = FRAME_RATE

    def __init__(self, encoder, *, name: str = "", layers: int | None = None, pooling: str = "mean+max"):
        super().__init__()
        if layers is not None:
            total = len(encoder.encoder.layers)
            if not 1 <= layers <= total:
                raise GenreError(f"--layers must be between 1 and {total} for this encoder, not {layers}")
            if layers < total:
                encoder.encoder.layers = encoder.encoder.layers[:layers]
                encoder.config.num_hidden_layers = layers
        self.normalize = Normalize()
        self.encoder = encoder
        self.encoder.requires_grad_(False)
        self.encoder.eval()
        self.name = name
        self.layers = len(encoder.encoder.layers)
        self.pooling = pooling
        self.dim = int(encoder.config.hidden_size)
        self._sha1: str | None = None

    @classmethod
    def from_pretrained(cls, name_or_path: str, layers: int | None = 7, pooling: str = "mean+max") -> Wav2Vec2Backend:
        enc = load_wav2vec2(name_or_path, layers=None)
        local = Path(name_or_path).expanduser()
        if local.exists():  # remember where, not how it was typed: the classifier may be used from elsewhere
            name_or_path = str(local.resolve())
        total = enc.config.num_hidden_layers
        if layers is not None and layers > total:
            log.warning("%s has %d transformer layers; all of them are used (asked for %d)", name_or_path, total, layers)
            layers = total
        return cls(enc, name=str(name_or_path), layers=layers, pooling=pooling)

    def train(self, mode: bool = True) -> Wav2Vec2Backend:
        super().train(mode)
        self.encoder.eval()  # frozen means frozen: no masking, dropout or layer drop, ever
        return self

    def frames(self, wave: torch.Tensor) -> torch.Tensor:
        """``(B, T)`` waveform → ``(B, F, D)`` hidden states of the last kept layer."""
        if wave.dim() != 2:
            raise GenreError(f"expected a (batch, samples) waveform, got shape {tuple(wave.shape)}")
        return self.encoder(self.normalize(wave)).last_hidden_state

    def forward(self, wave: torch.Tensor) -> torch.Tensor:
        return pool_frames(self.frames(wave), self.pooling)

    def identity(self) -> str:
        """What makes two backends give the same embeddings: weights, depth and pooling."""
        if self._sha1 is None:
            conf = {k: v for k, v in self.encoder.config.to_dict().items()  # not where it was read from, nor versions
                    if not k.startswith("_") and k not in ("transformers_version", "architectures", "torch_dtype", "dtype")}
            cfg = hashlib.sha1(json.dumps(conf, sort_keys=True, default=str).encode()).hexdigest()
            self._sha1 = f"{state_sha1(self.encoder)}:{cfg}"  # weights and the config they run under
        return hashlib.sha1(f"wav2vec2:{self._sha1}:{self.layers}:{self.pooling}".encode()).hexdigest()

    def describe(self) -> dict:
        return {"type": self.kind, "encoder": self.name, "layers": self.layers, "pooling": self.pooling,
                "identity": self.identity(), "dim": self.dim, "trainable": False}


class GenreHead(nn.Module):
    """GELU → Dropout(p) → Linear(D, hidden) → GELU → Dropout(p) → Linear(hidden, n_genres) (seed 000)."""

    def __init__(self, dim: int, n_genres: int, hidden: int = 512, dropout: float = 0.4):
        super().__init__()
        self.net = nn.Sequential(nn.GELU(), nn.Dropout(dropout), nn.Linear(dim, hidden), nn.GELU(),
                                 nn.Dropout(dropout), nn.Linear(hidden, n_genres))
        self.dim, self.n_genres, self.hidden, self.dropout = dim, n_genres, hidden, dropout

    def forward(self, emb: torch.Tensor) -> torch.Tensor:
        return self.net(emb)


class LinearHead(nn.Module):
    """Linear(D, n_genres): the classifier layer of the trainable backends (their papers' FC and
    dropout layers are part of the backend)."""

    def __init__(self, dim: int, n_genres: int):
        super().__init__()
        self.net = nn.Linear(dim, n_genres)
        self.dim, self.n_genres = dim, n_genres

    def forward(self, emb: torch.Tensor) -> torch.Tensor:
        return self.net(emb)


def _head_meta(head: nn.Module) -> dict:
    if isinstance(head, GenreHead):
        return {"type": "mlp", "dim": head.dim, "hidden": head.hidden, "dropout": head.dropout}
    return {"type": "linear", "dim": head.dim}


def _make_head(h: dict, n: int) -> nn.Module:
    if h.get("type", "mlp") == "linear":
        return LinearHead(h["dim"], n)
    return GenreHead(h["dim"], n, hidden=h["hidden"], dropout=h["dropout"])


class AudioClassifier(nn.Module):
    """``backend`` (waveform → embedding) + ``head`` (embedding → logits), with its genre names."""

    def __init__(self, backend: nn.Module, head: GenreHead, genres: Sequence[str]):
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

    # ---- saving and loading ----------------------------------------------------------------
    def save(self, folder: str | os.PathLike, *, preprocess: dict, extra: dict | None = None) -> Path:
        from shared.checkpoint import save_model

        tensors = {f"head.{k}": v for k, v in self.head.state_dict().items()}
        desc = self.backend.describe()
        if desc.get("trainable"):
            tensors.update({f"backend.{k}": v for k, v in self.backend.state_dict().items()})
        meta = {"kind": KIND, "genres": self.genres, "backend": desc, "head": _head_meta(self.head),
                "preprocess": preprocess, **(extra or {})}
        return save_model(folder, tensors, meta)

    @classmethod
    def load(cls, folder: str | os.PathLike, *, encoder: str | None = None) -> tuple[AudioClassifier, dict]:
        """Rebuild a saved classifier; ``encoder`` overrides where the wav2vec2 weights are read from."""
        from shared.checkpoint import load_model

        tensors, meta = load_model(folder, KIND)
        try:
            return cls._build(folder, tensors, meta, encoder)
        except (KeyError, TypeError, RuntimeError) as err:
            msg = str(err).splitlines()[0] if str(err) else type(err).__name__
            raise GenreError(f"{folder}: model.json and model.safetensors do not fit together ({msg}); retrain or re-copy the model") from None

    @classmethod
    def _build(cls, folder, tensors: dict, meta: dict, encoder: str | None) -> tuple[AudioClassifier, dict]:
        b = meta["backend"]
        if b["type"] == "wav2vec2":
            backend = Wav2Vec2Backend.from_pretrained(encoder or b["encoder"], layers=b["layers"], pooling=b["pooling"])
            if backend.identity() != b["identity"]:
                raise GenreError(f"the encoder {encoder or b['encoder']} has other weights than the one {folder} was trained on; "
                                 "pass --encoder with the folder of the original weights")
        else:
            from audiogenre.backends import TRAINABLE, TrainableBackend

            if b["type"] not in TRAINABLE:
                raise GenreError(f"{folder}: unknown backend type {b['type']!r} (a newer version of the toolkit?)")
            backend = TrainableBackend(b["type"], **b["config"])
            try:
                backend.load_state_dict({k[len("backend."):]: v for k, v in tensors.items() if k.startswith("backend.")})
            except RuntimeError as err:
                raise GenreError(f"{folder}: the {b['type']} weights do not fit its config ({str(err).splitlines()[0]})") from None
            backend.eval()
        head = _make_head(meta["head"], len(meta["genres"]))
        head.load_state_dict({k[len("head."):]: v for k, v in tensors.items() if k.startswith("head.")})
        model = cls(backend, head, meta["genres"])
        model.eval()
        return model, meta


ENCODER_SIZES = {
    # hidden, layers, heads, intermediate, conv channels, positional conv kernel / groups
    "tiny": (32, 2, 2, 64, 32, 16, 2),
    "small": (256, 4, 4, 1024, 256, 64, 16),
    "base": (768, 12, 12, 3072, 512, 128, 16),
}


def random_wav2vec2_config(size: str = "tiny"):
    """A ``Wav2Vec2Config`` of the given size (same conv strides as wav2vec2-base: 320 samples per frame)."""
    from transformers import Wav2Vec2Config

    if size not in ENCODER_SIZES:
        raise GenreError(f"unknown encoder size {size!r}: use {', '.join(ENCODER_SIZES)}")
    hidden, layers, heads, inter, conv, pos_k, pos_g = ENCODER_SIZES[size]
    return Wav2Vec2Config(hidden_size=hidden, num_hidden_layers=layers, num_attention_heads=heads,
                          intermediate_size=inter, conv_dim=(conv,) * 7, num_conv_pos_embeddings=pos_k,
                          num_conv_pos_embedding_groups=pos_g, feat_extract_norm="group", do_stable_layer_norm=False,
                          vocab_size=32)


def make_random_wav2vec2(folder: str | os.PathLike, size: str = "tiny", seed: int = 0) -> Path:
    """Save a randomly initialised wav2vec2 of ``size`` with ``save_pretrained`` (offline trials, tests, benchmarks)."""
    import torch
    from transformers import Wav2Vec2Model

    from transformers.utils import logging as hf_logging

    from shared.atomic import check_writable_dir

    hf_logging.disable_progress_bar()
    folder = Path(folder)
    check_writable_dir(folder / "config.json")
    torch.manual_seed(seed)
    Wav2Vec2Model(random_wav2vec2_config(size)).save_pretrained(str(folder))
    return folder
