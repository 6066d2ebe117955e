"""Trainable audio backends of seeds 003 and 001, behind the wav2vec2 backend's interface.

Every backend maps a 16 kHz waveform ``(B, T)`` to an embedding ``(B, dim)`` with
differentiable torch operations only, so the gradient-guided transformation reaches the
waveform through any of them; :class:`audiogenre.models.AudioClassifier` puts the genre head
on top. Each has ``frames()`` (one vector per time step, for FAD), ``config()`` (what rebuilds
it) and ``describe()``.

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

import hashlib
import json
import os

import torch
from torch import nn
from torch.nn import functional as F

from shared.errors import GenreError

SAMPLE_RATE = 16_000


def _identity(kind: str, config: dict) -> str:
    return hashlib.sha1(f"{kind}:{json.dumps(config, sort_keys=True)}".encode()).hexdigest()


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
    """Waveform → ``(B, 1, size, size)`` amplitude-density image (seed 003's waveform plot, soft).

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


# ---- seed 001: per-second raw-audio models ---------------------------------------------------

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

#: Every classifier backend by name: the frozen wav2vec2 encoder + head, then the trainable ones
#: (their training settings: ``audiogenre.classify.BackendTrainConfig``).
BACKENDS = ("wav2vec2", *TRAINABLE)


class TrainableBackend(nn.Module):
    """Wraps one of :data:`TRAINABLE` with the backend interface (describe, identity, frames)."""

    def __init__(self, kind: str, **config):
        super().__init__()
        if kind not in TRAINABLE:
            raise GenreError(f"unknown backend {kind!r}: use wav2vec2, {', '.join(TRAINABLE)}")
        imagenet = config.pop("imagenet", None)
        self.kind = kind
        self.net = TRAINABLE[kind](**config, **({"imagenet": imagenet} if imagenet and kind in ("resnet18", "fusion") else {}))
        self.dim = self.net.dim
        self.pooling = "mean+max"

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
        from audiogenre.models import state_sha1

        return _identity(self.kind, {**self.config(), "weights": state_sha1(self)})

    def describe(self) -> dict:
        return {"type": self.kind, "config": self.config(), "dim": self.dim, "trainable": True, "identity": self.identity()}


def n_parameters(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def receptive_seconds(kind: str) -> float:
    """Shortest clip a backend handles meaningfully (one second for the per-second models)."""
    return 1.0 if kind in ("autoencoder", "mlp") else 0.5


__all__ = ["Spectrogram", "WaveformImage", "ResNet18", "TrainableBackend", "TRAINABLE", "BACKENDS", "n_parameters",
           "receptive_seconds"]
