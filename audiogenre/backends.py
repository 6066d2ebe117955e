"""Every audio backend of the toolkit behind one protocol, and the table that builds them.

A *backend* maps a 16 kHz waveform ``(B, T)`` to an embedding ``(B, dim)`` with
differentiable torch operations only, so the gradient-guided transformation reaches the
waveform through any of them; :class:`audiogenre.models.AudioClassifier` puts the genre head
on top. Every backend follows :class:`Backend`: ``forward`` (waveform → embedding),
``frames()`` (one vector per time step, for FAD), ``dim``, ``segment_seconds`` (the clip
length a trainable backend was trained on; None for wav2vec2, which takes clips of any
length), ``frame_rate`` (frames per second when ``frames()`` is on a fixed time grid),
``trainable`` (whether its weights are part of a saved classifier), ``auxiliary_loss()``
(a loss of its own for the trainer, or None), ``config()`` (what rebuilds it), ``identity()``
and ``describe()``. :data:`BACKENDS` maps each name to its
config dataclass and class; :func:`make_backend` builds one from a name and a config.

Seed 000: ``wav2vec2``, a frozen ``transformers.Wav2Vec2Model`` (optionally cut to its first
K transformer layers; the seed used 7), always in eval mode, whose frames are pooled by the
average of mean- and max-pooling. Its weights stay where they are (a Hugging Face name or
folder); a saved classifier keeps their identity, not a copy.

Seed 003 (GTZAN, 3/5/10 s segments):

* :class:`Spectrogram`: log-magnitude STFT in dB (relative to the clip's maximum, floor at
  -80 dB, scaled to [0, 1]) resized to 128×128 — computed in torch, not saved as images;
* ``cnn``: two conv blocks (3×3 conv 16 / 32 channels, BatchNorm, ReLU, 2×2 max-pool:
  128 → 32) → flatten → FC 256 → ReLU → Dropout 0.4 (the head maps 256 → genres);
* ``resnet18``: ResNet-18 written here (torchvision's registry wheels cannot import on
  CPU-only torch), 3-channel input with ImageNet normalisation, optional ImageNet weights from
  a local torchvision ``resnet18-*.pth`` file; head Linear 512 → 256 → ReLU → Dropout;
* ``fusion``: two ResNet-18 streams, the spectrogram and a *waveform image* (a 128×128
  amplitude-density picture of the peak-normalised waveform, drawn with soft Gaussian
  strokes so it stays differentiable), 512 + 512 → 1024 → Linear 512 → ReLU → Dropout 0.5.

Seed 001 (deep softmax autoencoder, 1 s segments):

* ``autoencoder``: each second of audio average-pooled to 500 values (16 kHz / 32; the paper
  pooled 22.05 kHz by 40), encoder 500 → 256 → 128 → 64, decoder back to 500, classifier on
  the 64-d bottleneck; loss γ·‖x − g(f(x))‖² + (1 − γ)·CE with γ = 0.9; dropout 0.1 (keep 0.9).
  A clip's embedding is the mean bottleneck of its seconds;
* ``mlp``: the paper's two-layer baseline, 500 → 128 (tanh) → genres, per second, averaged.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Protocol, runtime_checkable

import torch
from torch import nn
from torch.nn import functional as F

from shared.errors import GenreError

log = logging.getLogger(__name__)

SAMPLE_RATE = 16_000
FRAME_RATE = 50  # wav2vec2 frames per second of 16 kHz audio (stride 320)


@runtime_checkable
class Backend(Protocol):
    """What every backend is: a module from 16 kHz waveforms ``(B, T)`` to embeddings ``(B, dim)``."""

    dim: int  #: size of the embedding
    segment_seconds: float | None  #: clip length it was trained on; None: clips of any length (wav2vec2)
    frame_rate: float | None  #: frames per second of ``frames()`` on a fixed time grid; None: not on one
    trainable: bool  #: its weights are saved with a classifier (False: read from elsewhere, e.g. wav2vec2)
    pooling: str  #: how ``frames()`` pool into one embedding (``mean``, ``max``, ``mean+max``)

    def __call__(self, wave: torch.Tensor) -> torch.Tensor: ...  # (B, T) → (B, dim)

    def frames(self, wave: torch.Tensor) -> torch.Tensor: ...  # (B, T) → (B, F, D)

    def auxiliary_loss(self) -> torch.Tensor | None: ...  # a loss the trainer adds (autoencoder), else None

    def config(self) -> dict: ...  # the fields of its config dataclass in BACKENDS

    def identity(self) -> str: ...  # what makes two backends give the same embeddings

    def describe(self) -> dict: ...  # a JSON-ready record: type, config, dim, trainable, identity


def state_sha1(module: nn.Module) -> str:
    """Hash of a module's weights (names, shapes, values): identifies an encoder for caches."""
    h = hashlib.sha1()
    for name, t in sorted(module.state_dict().items()):
        h.update(name.encode())
        h.update(str(tuple(t.shape)).encode())
        h.update(t.detach().to("cpu").contiguous().view(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


def _identity(kind: str, config: dict) -> str:
    return hashlib.sha1(f"{kind}:{json.dumps(config, sort_keys=True)}".encode()).hexdigest()


# ---- Armeniakos & Bistas: a frozen wav2vec2 ------------------------------------------------------------

class Normalize(nn.Module):
    """Zero mean, unit variance per clip (over time), as wav2vec2 was trained with.

    Inside the model (what ``Wav2Vec2FeatureExtractor(do_normalize=True)`` does outside it), so
    the transformation's gradients reach the raw waveform through it.
    """

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


@contextlib.contextmanager
def quiet_transformers() -> Iterator[None]:
    """Errors only and no progress bars from ``transformers`` while inside; the caller's
    settings are restored afterwards (the toolkit never changes them for the process)."""
    from transformers.utils import logging as hf_logging

    level, bar = hf_logging.get_verbosity(), hf_logging.is_progress_bar_enabled()
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        hf_logging.set_verbosity(level)
        if bar:
            hf_logging.enable_progress_bar()


def load_wav2vec2(name_or_path: str, layers: int | None = None):
    """``Wav2Vec2Model.from_pretrained`` with a one-line error when the weights are not there.

    Looks in the local Hugging Face cache first (instant when offline), then on the Hub.
    """
    from transformers import Wav2Vec2Model

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
        with quiet_transformers():
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


@dataclass(frozen=True)
class Wav2Vec2BackendConfig:
    """Where the frozen encoder's weights are, how many transformer layers are kept and how frames pool."""

    encoder: str = "facebook/wav2vec2-base"
    layers: int | None = 7
    pooling: str = "mean+max"


class Wav2Vec2Backend(nn.Module):
    """Frozen wav2vec2 (first ``layers`` transformer layers) + frame pooling → ``(B, hidden)``.

    Unlike the seed's code it normalises every clip inside the model (:class:`Normalize`),
    keeps the encoder in eval mode even when the classifier is put in train mode (no
    SpecAugment masking, dropout or layer drop in a "frozen" encoder) and never asks for
    gradients of the encoder's parameters.
    """

    kind = "wav2vec2"
    frame_rate = FRAME_RATE
    segment_seconds = None  # any clip length; the classifier's clip length is in its preprocessing settings
    trainable = False

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

    @classmethod
    def from_config(cls, name: str, config: Wav2Vec2BackendConfig, *, encoder: str | None = None, **_) -> Wav2Vec2Backend:
        """The backend a saved classifier describes; ``encoder`` overrides where the weights are read from."""
        return cls.from_pretrained(encoder or config.encoder, layers=config.layers, pooling=config.pooling)

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

    def auxiliary_loss(self) -> None:
        return None  # frozen: nothing to train

    def config(self) -> dict:
        return {"encoder": self.name, "layers": self.layers, "pooling": self.pooling}

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
    from transformers import Wav2Vec2Model

    from shared.atomic import check_writable_dir

    folder = Path(folder)
    check_writable_dir(folder / "config.json")
    with torch.random.fork_rng(devices=[]), quiet_transformers():  # the caller's random state left as it was
        torch.manual_seed(seed)
        Wav2Vec2Model(random_wav2vec2_config(size)).save_pretrained(str(folder))
    return folder


# ---- seeds 003 and 001: trainable backends --------------------------------------------------

class Spectrogram(nn.Module):
    """Waveform ``(B, T)`` → dB spectrogram image ``(B, 1, size, size)`` in [0, 1]."""

    def __init__(self, n_fft: int = 1024, hop: int = 256, size: int = 128, top_db: float = 80.0):
        super().__init__()
        self.n_fft, self.hop, self.size, self.top_db = n_fft, hop, size, top_db
        self.register_buffer("window", torch.hann_window(n_fft), persistent=False)

    def forward(self, wave: torch.Tensor) -> torch.Tensor:
        spec = torch.stft(wave.float(), self.n_fft, self.hop, window=self.window, center=True, return_complex=True)
        mag = spec.abs().clamp_min(1e-5)  # (B, F, frames)
        db = 20.0 * torch.log10(mag)
        db = db - db.amax(dim=(1, 2), keepdim=True)
        img = (db.clamp_min(-self.top_db) + self.top_db) / self.top_db
        img = img.flip(1).unsqueeze(1)  # low frequencies at the bottom, as an image
        return F.interpolate(img, size=(self.size, self.size), mode="bilinear", align_corners=False)


class WaveformImage(nn.Module):
    """Waveform → ``(B, 1, size, size)`` amplitude-density image (Mongelli et al.'s waveform plot, soft).

    The waveform is peak-normalised (y / (max|y| + ε)); each of ``size`` columns covers an
    equal stretch of time, and row r lights up by exp(−(y − level_r)² / 2σ²) averaged over
    the column's samples, with ``levels`` from +1 (top) to −1 (bottom).
    """

    def __init__(self, size: int = 128, sigma: float | None = None, samples_per_column: int = 64):
        super().__init__()
        self.size = size
        self.sigma = sigma or 2.0 / size
        self.per_col = samples_per_column
        self.register_buffer("levels", torch.linspace(1.0, -1.0, size), persistent=False)

    def forward(self, wave: torch.Tensor) -> torch.Tensor:
        y = wave.float() / (wave.abs().amax(dim=1, keepdim=True) + 1e-6)
        b, t = y.shape
        n = self.size * self.per_col
        # resample to a whole number of samples per column (linear interpolation: differentiable)
        y = F.interpolate(y[:, None], size=n, mode="linear", align_corners=False)[:, 0]
        y = y.view(b, self.size, self.per_col)  # (B, columns, samples)
        d = (y.unsqueeze(-1) - self.levels.view(1, 1, 1, -1)) / self.sigma  # (B, col, s, rows)
        img = torch.exp(-0.5 * d * d).mean(dim=2)  # (B, col, rows)
        img = img / (img.amax(dim=(1, 2), keepdim=True) + 1e-6)
        return img.transpose(1, 2).unsqueeze(1)


class SpecCNN(nn.Module):
    kind = "cnn"

    def __init__(self, size: int = 128, dim: int = 256, dropout: float = 0.4):
        super().__init__()
        self.spec = Spectrogram(size=size)

        def block(cin, cout):
            return nn.Sequential(nn.Conv2d(cin, cout, 3, padding=1), nn.BatchNorm2d(cout), nn.ReLU(inplace=True), nn.MaxPool2d(2))

        self.features = nn.Sequential(block(1, 16), block(16, 32))
        self.fc = nn.Sequential(nn.Flatten(), nn.Linear(32 * (size // 4) ** 2, dim), nn.ReLU(inplace=True), nn.Dropout(dropout))
        self.dim, self._cfg = dim, {"size": size, "dim": dim, "dropout": dropout}

    def frames(self, wave: torch.Tensor) -> torch.Tensor:
        f = self.features(self.spec(wave))  # (B, 32, H, W): columns are time
        return f.mean(dim=2).transpose(1, 2)  # (B, W, 32)

    def forward(self, wave: torch.Tensor) -> torch.Tensor:
        return self.fc(self.features(self.spec(wave)))

    def config(self) -> dict:
        return dict(self._cfg)


# ---- ResNet-18 (He et al. 2016), as torchvision builds it, so its ImageNet weights load --------

class BasicBlock(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int = 1):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.downsample = None
        if stride != 1 or cin != cout:
            self.downsample = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x):
        idt = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + idt)


class ResNet18(nn.Module):
    """ResNet-18 trunk: (B, 3, H, W) → (B, 512) (global average pool; no fc)."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 64, 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        self.layer1 = nn.Sequential(BasicBlock(64, 64), BasicBlock(64, 64))
        self.layer2 = nn.Sequential(BasicBlock(64, 128, 2), BasicBlock(128, 128))
        self.layer3 = nn.Sequential(BasicBlock(128, 256, 2), BasicBlock(256, 256))
        self.layer4 = nn.Sequential(BasicBlock(256, 512, 2), BasicBlock(512, 512))

    def feature_map(self, x):
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        return self.layer4(self.layer3(self.layer2(self.layer1(x))))

    def forward(self, x):
        return self.feature_map(x).mean(dim=(2, 3))

    def load_imagenet(self, path: str | os.PathLike) -> None:
        """Load torchvision's ``resnet18-f37072fd.pth`` (or any state dict of that layout); fc is dropped."""
        try:
            state = torch.load(str(path), map_location="cpu", weights_only=True)
        except (OSError, RuntimeError) as err:
            raise GenreError(f"cannot read ImageNet weights {path}: {err}") from None
        state = {k: v for k, v in state.items() if not k.startswith("fc.")}
        try:
            missing, unexpected = self.load_state_dict(state, strict=False)
        except RuntimeError as err:
            raise GenreError(f"{path} is not a torchvision ResNet-18 state dict ({str(err).splitlines()[-1].strip()})") from None
        if missing or unexpected:
            raise GenreError(f"{path} is not a torchvision ResNet-18 state dict (missing {len(missing)}, unexpected {len(unexpected)} keys)")


IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class _ImageNorm(nn.Module):
    """1-channel [0, 1] image → 3 channels with ImageNet normalisation."""

    def __init__(self):
        super().__init__()
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)

    def forward(self, img):
        return (img.expand(-1, 3, -1, -1) - self.mean) / self.std


class SpecResNet18(nn.Module):
    kind = "resnet18"

    def __init__(self, size: int = 128, dim: int = 256, dropout: float = 0.4, imagenet: str | None = None):
        super().__init__()
        self.spec = Spectrogram(size=size)
        self.norm = _ImageNorm()
        self.trunk = ResNet18()
        if imagenet:
            self.trunk.load_imagenet(imagenet)
        self.fc = nn.Sequential(nn.Linear(512, dim), nn.ReLU(inplace=True), nn.Dropout(dropout))
        self.dim, self._cfg = dim, {"size": size, "dim": dim, "dropout": dropout}

    def frames(self, wave):
        return self.trunk.feature_map(self.norm(self.spec(wave))).mean(dim=2).transpose(1, 2)

    def forward(self, wave):
        return self.fc(self.trunk(self.norm(self.spec(wave))))

    def config(self) -> dict:
        return dict(self._cfg)


class LateFusion(nn.Module):
    kind = "fusion"

    def __init__(self, size: int = 128, dim: int = 512, dropout: float = 0.5, imagenet: str | None = None):
        super().__init__()
        self.spec = Spectrogram(size=size)
        self.wimg = WaveformImage(size=size)
        self.norm = _ImageNorm()
        self.spec_net, self.wave_net = ResNet18(), ResNet18()
        if imagenet:
            self.spec_net.load_imagenet(imagenet)
            self.wave_net.load_imagenet(imagenet)
        self.fc = nn.Sequential(nn.Linear(1024, dim), nn.ReLU(inplace=True), nn.Dropout(dropout))
        self.dim, self._cfg = dim, {"size": size, "dim": dim, "dropout": dropout}

    def frames(self, wave):
        return self.spec_net.feature_map(self.norm(self.spec(wave))).mean(dim=2).transpose(1, 2)

    def forward(self, wave):
        a = self.spec_net(self.norm(self.spec(wave)))
        b = self.wave_net(self.norm(self.wimg(wave)))
        return self.fc(torch.cat([a, b], dim=1))

    def config(self) -> dict:
        return dict(self._cfg)


# ---- the style-encodings paper: per-second raw-audio models ---------------------------------------------------

def seconds_pooled(wave: torch.Tensor, pool: int = 32, segment: int = SAMPLE_RATE) -> torch.Tensor:
    """``(B, T)`` → ``(B, S, segment // pool)``: whole seconds, average-pooled (a short clip is one
    zero-padded second)."""
    b, t = wave.shape
    s = max(1, t // segment)
    x = wave[:, : s * segment] if t >= segment else F.pad(wave, (0, segment - t))
    return F.avg_pool1d(x.reshape(b * s, 1, segment), pool).view(b, s, segment // pool)


class SoftmaxAutoencoder(nn.Module):
    kind = "autoencoder"

    def __init__(self, pool: int = 32, hidden: tuple[int, ...] = (256, 128), dim: int = 64, dropout: float = 0.1,
                 gamma: float = 0.9, scale: float = 10.0):
        super().__init__()
        n_in = SAMPLE_RATE // pool
        sizes = [n_in, *hidden, dim]
        enc, dec = [], []
        for a, b in zip(sizes[:-1], sizes[1:]):
            enc += [nn.Linear(a, b), nn.ReLU(inplace=True), nn.Dropout(dropout)]
        enc = enc[:-2]  # linear bottleneck
        rs = sizes[::-1]
        for a, b in zip(rs[:-1], rs[1:]):
            dec += [nn.Linear(a, b), nn.ReLU(inplace=True)]
        dec = dec[:-1]
        self.encoder, self.decoder = nn.Sequential(*enc), nn.Sequential(*dec)
        self.pool, self.gamma, self.scale, self.dim = pool, gamma, scale, dim
        self._cfg = {"pool": pool, "hidden": list(hidden), "dim": dim, "dropout": dropout, "gamma": gamma, "scale": scale}
        self._last_recon: torch.Tensor | None = None

    def _inputs(self, wave):
        # pooled samples are small (|x| ≪ 1): a fixed gain puts them near unit scale
        return seconds_pooled(wave.float(), self.pool) * self.scale

    def frames(self, wave):
        return self.encoder(self._inputs(wave))  # (B, seconds, 64)

    def forward(self, wave):
        x = self._inputs(wave)
        z = self.encoder(x)
        if self.training:
            self._last_recon = F.mse_loss(self.decoder(z), x, reduction="none").sum(-1).mean()
        return z.mean(dim=1)

    def auxiliary_loss(self) -> torch.Tensor | None:
        """γ-weighted reconstruction loss of the last training forward (the trainer adds (1 − γ)·CE)."""
        r, self._last_recon = self._last_recon, None
        return r

    def config(self) -> dict:
        return dict(self._cfg)


class TwoLayerNet(nn.Module):
    """Seed 001's baseline: 500 → 128 tanh per second (the head maps 128 → genres), averaged."""

    kind = "mlp"

    def __init__(self, pool: int = 32, hidden: int = 128, scale: float = 10.0):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(SAMPLE_RATE // pool, hidden), nn.Tanh())
        self.pool, self.scale, self.dim = pool, scale, hidden
        self._cfg = {"pool": pool, "hidden": hidden, "scale": scale}

    def frames(self, wave):
        return self.net(seconds_pooled(wave.float(), self.pool) * self.scale)

    def forward(self, wave):
        return self.frames(wave).mean(dim=1)

    def config(self) -> dict:
        return dict(self._cfg)


TRAINABLE = {c.kind: c for c in (SpecCNN, SpecResNet18, LateFusion, SoftmaxAutoencoder, TwoLayerNet)}

# ---- the config of each trainable backend (the keyword arguments of its net) -----------------

@dataclass(frozen=True)
class CNNConfig:
    size: int = 128  # spectrogram image size
    dim: int = 256  # embedding size
    dropout: float = 0.4


@dataclass(frozen=True)
class ResNet18Config:
    size: int = 128
    dim: int = 256
    dropout: float = 0.4


@dataclass(frozen=True)
class FusionConfig:
    size: int = 128
    dim: int = 512
    dropout: float = 0.5


@dataclass(frozen=True)
class AutoencoderConfig:
    pool: int = 32  # samples averaged into one input value
    hidden: tuple = (256, 128)
    dim: int = 64  # bottleneck = embedding size
    dropout: float = 0.1
    gamma: float = 0.9  # weight of the reconstruction loss
    scale: float = 10.0  # input gain


@dataclass(frozen=True)
class MLPConfig:
    pool: int = 32
    hidden: int = 128  # = embedding size
    scale: float = 10.0


class TrainableBackend(nn.Module):
    """Wraps one of :data:`TRAINABLE` with the backend interface (describe, identity, frames).

    ``segment_seconds`` is the clip length it is trained on (set by the trainer, kept in the
    saved classifier); ``imagenet`` a torchvision ResNet-18 file to start ``resnet18`` /
    ``fusion`` from.
    """

    frame_rate = None  # frames() are not on a fixed time grid: FAD embeds each segment as a clip
    trainable = True

    def __init__(self, kind: str, *, segment_seconds: float | None = None, **config):
        super().__init__()
        if kind not in TRAINABLE:
            raise GenreError(f"unknown backend {kind!r}: use {', '.join(BACKENDS)}")
        imagenet = config.pop("imagenet", None)
        self.kind = kind
        self.net = TRAINABLE[kind](**config, **({"imagenet": imagenet} if imagenet and kind in ("resnet18", "fusion") else {}))
        self.dim = self.net.dim
        self.pooling = "mean+max"
        self.segment_seconds = segment_seconds

    @classmethod
    def from_config(cls, name: str, config, *, imagenet: str | None = None, segment_seconds: float | None = None,
                    **_) -> TrainableBackend:
        from shared.config import to_dict

        return cls(name, segment_seconds=segment_seconds, **to_dict(config), **({"imagenet": imagenet} if imagenet else {}))

    def forward(self, wave: torch.Tensor) -> torch.Tensor:
        if wave.dim() != 2:
            raise GenreError(f"expected a (batch, samples) waveform, got shape {tuple(wave.shape)}")
        return self.net(wave)

    def frames(self, wave: torch.Tensor) -> torch.Tensor:
        return self.net.frames(wave)

    def auxiliary_loss(self):
        fn = getattr(self.net, "auxiliary_loss", None)
        return fn() if fn else None

    @property
    def gamma(self) -> float | None:
        return getattr(self.net, "gamma", None)

    def config(self) -> dict:
        return self.net.config()

    def identity(self) -> str:
        return _identity(self.kind, {**self.config(), "weights": state_sha1(self)})

    def describe(self) -> dict:
        return {"type": self.kind, "config": self.config(), "dim": self.dim, "trainable": True, "identity": self.identity()}


#: Every backend: name → (config dataclass, class with ``from_config(name, config, **options)``).
BACKENDS: dict[str, tuple[type, type]] = {
    "wav2vec2": (Wav2Vec2BackendConfig, Wav2Vec2Backend),
    "cnn": (CNNConfig, TrainableBackend),
    "resnet18": (ResNet18Config, TrainableBackend),
    "fusion": (FusionConfig, TrainableBackend),
    "autoencoder": (AutoencoderConfig, TrainableBackend),
    "mlp": (MLPConfig, TrainableBackend),
}


def backend_config(name: str, config: dict | None = None):
    """The config dataclass of backend ``name`` from a dict (unknown keys and bad values: GenreError)."""
    from shared.config import from_dict

    if name not in BACKENDS:
        raise GenreError(f"unknown backend {name!r} (a newer version of the toolkit?); known: {', '.join(BACKENDS)}")
    return from_dict(BACKENDS[name][0], config or {}, what=f"{name} backend settings")


def make_backend(name: str, config: dict | None = None, **options) -> nn.Module:
    """Build backend ``name`` from its config (a dict of its config dataclass's fields).

    ``options``: ``encoder=`` (where the wav2vec2 weights are now), ``imagenet=`` (a ResNet-18
    file), ``segment_seconds=`` (the clip length a trainable backend is trained on).
    """
    cfg = backend_config(name, config)
    return BACKENDS[name][1].from_config(name, cfg, **options)


def n_parameters(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def receptive_seconds(kind: str) -> float:
    """Shortest clip a backend handles meaningfully (one second for the per-second models)."""
    return 1.0 if kind in ("autoencoder", "mlp") else 0.5


__all__ = ["Backend", "BACKENDS", "make_backend", "backend_config", "Wav2Vec2Backend", "Wav2Vec2BackendConfig",
           "load_wav2vec2", "pool_frames", "state_sha1", "Spectrogram", "WaveformImage", "ResNet18", "TrainableBackend",
           "TRAINABLE", "n_parameters", "receptive_seconds"]
