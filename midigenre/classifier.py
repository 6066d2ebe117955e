"""The genre classifier of Brunner et al. (2018) that measures transfer strength (S_tot).

Convolutions whose kernels equal their strides summarise the piano roll in musical units:
[1, 12] pools each octave (84 pitches → 7 octaves), then [4, 1], [2, 1] and [8, 1] pool time
(64 steps → 16 → 8 → 1), and [1, 7] mixes the octaves into the class scores::

    (B, 1, 64, 84) in [-1, 1] → 64×(64, 7) → 128×(16, 7) → 256×(8, 7) → 512×(1, 7) → n×(1, 1)

Binary for a pair of genres and multi-class for several. σ_C Gaussian noise on the input at
test time is an option (the reference's robustness check).

A trained classifier is saved and loaded through the model registry as kind
``"genre-classifier"`` (:func:`save_classifier`, :meth:`Classifier.load`).
"""

from __future__ import annotations

import dataclasses
import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from midigenre.config import ClassifierConfig
from midigenre.dataset import PhraseCache, SongSplit
from midigenre.train import GenreSource, check_settings
from shared.errors import GenreError
from shared.registry import register, save_model
from shared.classification import classification_report, plot_confusion  # noqa: F401  (re-exported)
from shared.runtime import keeps_random_state, pick_device, seed_everything
from shared.training import permutation

log = logging.getLogger(__name__)

KIND = "genre-classifier"


@dataclass(frozen=True)
class GenreClassifierConfig:
    """Architecture of :class:`GenreClassifier` (what a saved classifier's ``config`` holds; the
    number of genres is the length of its ``genres``)."""

    channels: tuple = (64, 128, 256, 512)

    def __post_init__(self):
        if len(self.channels) != 4 or not all(isinstance(c, int) and c > 0 for c in self.channels):
            raise GenreError(f"channels must be four positive numbers, not {list(self.channels)}")


class GenreClassifier(nn.Module):
    """(B, 1, 64, 84) binary rolls → (B, n_genres) logits."""

    def __init__(self, n_genres: int, channels: Sequence[int] = (64, 128, 256, 512)):
        super().__init__()
        c1, c2, c3, c4 = channels
        self.n_genres, self.channels = int(n_genres), tuple(int(c) for c in channels)
        self.net = nn.Sequential(
            nn.Conv2d(1, c1, (1, 12), stride=(1, 12)), nn.LeakyReLU(0.2, True),
            nn.Conv2d(c1, c2, (4, 1), stride=(4, 1)), nn.InstanceNorm2d(c2, affine=True), nn.LeakyReLU(0.2, True),
            nn.Conv2d(c2, c3, (2, 1), stride=(2, 1)), nn.InstanceNorm2d(c3, affine=True), nn.LeakyReLU(0.2, True),
            nn.Conv2d(c3, c4, (8, 1), stride=(8, 1)), nn.InstanceNorm2d(c4, affine=True), nn.LeakyReLU(0.2, True),
            nn.Conv2d(c4, n_genres, (1, 7), stride=(1, 7)),
        )
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.normal_(m.weight, 0.0, 0.02)
                nn.init.zeros_(m.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x * 2.0 - 1.0).flatten(1)  # 0/1 rolls scaled to [-1, 1] as in the reference


@dataclass
class Classifier:
    """A trained classifier with its genre names and the roll settings of its data."""

    net: GenreClassifier
    genres: list[str]
    settings_hash: str
    meta: dict
    device: torch.device

    @classmethod
    def load(cls, path: str | os.PathLike, device: str = "cpu") -> "Classifier":
        """Load a classifier folder (model.safetensors + model.json)."""
        from shared.registry import load_model
        from shared.runtime import pick_device

        net, meta = load_model(path, KIND, device=device)
        return cls(net.requires_grad_(False), list(meta["genres"]), meta["roll_settings_hash"], meta, pick_device(device))

    def index(self, genre: str) -> int:
        if genre not in self.genres:
            raise GenreError(f"the classifier knows {', '.join(self.genres)}, not {genre!r}")
        return self.genres.index(genre)

    def probabilities(self, phrases: np.ndarray, *, sigma_c: float = 0.0, batch_size: int = 512, seed: int = 0) -> np.ndarray:
        """(N, n_genres) softmax probabilities of (N, 64, 84) phrases; σ_C noise if asked."""
        gen = torch.Generator().manual_seed(seed)
        out = []
        with torch.inference_mode():
            for i in range(0, len(phrases), batch_size):
                x = torch.from_numpy(np.ascontiguousarray(phrases[i : i + batch_size], dtype=np.float32)).unsqueeze(1)
                if sigma_c > 0:
                    x = x + torch.randn(x.shape, generator=gen) * sigma_c
                out.append(torch.softmax(self.net(x.to(self.device)), dim=1).float().cpu().numpy())
        return np.concatenate(out) if out else np.zeros((0, len(self.genres)), dtype=np.float32)

    def predict(self, phrases: np.ndarray, **kw) -> np.ndarray:
        """(N,) index of the most likely genre."""
        return self.probabilities(phrases, **kw).argmax(axis=1)


@register(KIND, GenreClassifierConfig, version=1)
def _build(config: GenreClassifierConfig, meta: dict, **options) -> GenreClassifier:
    genres = meta["genres"]
    if not isinstance(genres, list) or len(genres) < 2 or not all(isinstance(g, str) for g in genres):
        raise ValueError("genres must be a list of at least two names")
    if not isinstance(meta["roll_settings_hash"], str):
        raise TypeError("roll_settings_hash must be a string")
    return GenreClassifier(len(genres), config.channels)


def save_classifier(folder: str | os.PathLike, net: GenreClassifier, *, genres: list, roll_settings: dict,
                    roll_settings_hash: str, **extra) -> Path:
    """Save a trained classifier (kind ``"genre-classifier"``).

    ``roll_settings`` (kept as the model's ``settings``) and ``roll_settings_hash`` describe the
    caches it was trained on; ``extra``: JSON-ready keys to keep, e.g. ``train`` (the training
    settings; ``config=`` is taken as ``train``), ``data``, ``metrics``.
    """
    from shared.config import to_dict

    if "config" in extra:  # the training settings; the model's config is the architecture
        extra["train"] = extra.pop("config")
    if dataclasses.is_dataclass(extra.get("train")):
        extra["train"] = to_dict(extra["train"])
    if len(genres) != net.n_genres:
        raise GenreError(f"the classifier has {net.n_genres} outputs but {len(genres)} genres were given")
    return save_model(folder, net, KIND, GenreClassifierConfig(net.channels), settings=dict(roll_settings),
                      genres=list(genres), roll_settings_hash=roll_settings_hash, **extra)


class _PhraseClassification:
    """The classifier as a task of the shared training loop: cross-entropy on phrases in memory."""

    def __init__(self, net: GenreClassifier, config: ClassifierConfig, x: np.ndarray, y: np.ndarray, device):
        from shared import distributed

        self.net, self.cfg, self.x, self.y, self.device = net, config, x, y, device
        self.dist = distributed.context(device)
        self.train_net = distributed.wrap(net, device)  # DDP on several processes, the net itself on one
        self.opt = torch.optim.Adam(net.parameters(), lr=config.lr, betas=(config.beta1, 0.999))

    def state(self) -> dict:
        return {"net": self.net, "opt": self.opt}

    def batches(self, epoch: int) -> list[np.ndarray]:
        order = permutation(len(self.x), self.cfg.seed, epoch)
        return [order[i:i + self.cfg.batch_size] for i in range(0, len(order), self.cfg.batch_size)]

    def train_step(self, idx: np.ndarray) -> dict:
        self.net.train()
        x = torch.from_numpy(self.x[idx].astype(np.float32)).unsqueeze(1).to(self.device)
        y = torch.from_numpy(self.y[idx]).to(self.device)
        logits = self.train_net(x)
        loss = F.cross_entropy(logits, y)
        self.opt.zero_grad(set_to_none=True)
        (loss * self.dist.share()).backward()
        self.opt.step()
        return {"loss": loss.item(), "train_accuracy": int((logits.argmax(1) == y).sum()) / len(idx), "n": len(idx)}


@keeps_random_state
def train_classifier(
    sources: Sequence[GenreSource], out: str | os.PathLike, config: ClassifierConfig = ClassifierConfig(), *,
    split: str | os.PathLike | None = None, device: str = "auto",
    on_epoch: Callable[[int, dict], None] | None = None, progress=None,
) -> dict:
    """Train on the training songs of each genre; evaluate on the held-out songs; save to ``out``.

    The caches must share the phrase grid; their meter rules may differ (pop read with
    assume-4/4 beside lenient genres), and the classifier's settings are the first genre's.

    Returns the held-out report (see :func:`classification_report`), also written to
    ``out/report.json`` with a confusion-matrix PNG ``out/confusion.png`` and the settings in
    ``out/config.json``. On several processes (torchrun, ``--nproc``) ``batch_size`` is the global
    batch and rank 0 writes. ``on_epoch(epoch, row)`` reports each epoch, ``progress(stage, step,
    n_steps, note)`` (:mod:`shared.progress`) each step.
    """
    from shared.atomic import write_json
    from shared.training import EveryEpoch, ReportProgress, TrainingLoop, write_run_config

    if len(sources) < 2:
        raise GenreError("a classifier needs at least two genres")
    names = [s.genre for s in sources]
    if len(set(names)) != len(names):
        raise GenreError(f"genre names must differ, got {names}")
    roll_settings = check_settings(list(sources), same_grid=True)  # the genres' meter rules may differ
    out = Path(out)
    dev = pick_device(device)

    if split is not None:
        song_split = SongSplit.load(split)
    else:
        song_split = SongSplit.for_sources([(s.path, s.genre) for s in sources],
                                           test_fraction=config.test_fraction, seed=config.seed, same_grid=True)
    train_rows, test_rows = [], []
    for s in sources:
        with PhraseCache(s.path) as c:
            train_rows.append(song_split.rows(c, s.genre, "train"))
            test_rows.append(song_split.rows(c, s.genre, "test"))
    for s, tr, te in zip(sources, train_rows, test_rows):
        if len(tr) < 2 or len(te) < 1:
            raise GenreError(f"'{s.genre}' has {len(tr)} training and {len(te)} held-out phrases: too few to train and test")
    if config.balance:  # downsample every genre to the smallest, seeded
        n = min(len(r) for r in train_rows)
        pick = np.random.default_rng(config.seed)
        train_rows = [np.sort(pick.choice(r, size=n, replace=False)) for r in train_rows]

    def load(rows_per_genre):
        xs, ys = [], []
        for k, (s, rows) in enumerate(zip(sources, rows_per_genre)):
            with PhraseCache(s.path) as c:
                xs.append(c.phrases(s.genre, rows))
            ys.append(np.full(len(rows), k, dtype=np.int64))
        return np.concatenate(xs), np.concatenate(ys)

    # The training set of a phrase classifier is small (a few MB as bool): hold it in memory.
    x_train, y_train = load(train_rows)
    x_test, y_test = load(test_rows)

    seed_everything(config.seed)
    net = GenreClassifier(len(sources), config.channels).to(dev)
    task = _PhraseClassification(net, config, x_train, y_train, dev)
    callbacks = ([ReportProgress(progress)] if callable(progress) else []) + (
        [EveryEpoch(lambda row: on_epoch(row["epoch"], row))] if on_epoch else [])
    t0 = time.perf_counter()
    history = TrainingLoop(task, config.epochs, callbacks).run()
    seconds = time.perf_counter() - t0

    clf = Classifier(net.eval(), names, _hash_of(sources[0]), {}, dev)
    report = classification_report(y_test, clf.predict(x_test), names)
    report.update({
        "test_phrases": int(len(x_test)), "train_phrases": int(len(x_train)),
        "test_songs": {g: len(p["test"]) for g, p in song_split.genres.items() if g in names},
        "train_seconds": round(seconds, 1), "history": history,
    })
    if not task.dist.main:  # one of several processes: rank 0 writes
        return report
    out.mkdir(parents=True, exist_ok=True)
    data = [s.describe() for s in sources]
    write_run_config(out, train=config.to_dict(), data=data, roll_settings=roll_settings, device=str(dev))
    save_classifier(out, net, genres=names, roll_settings=roll_settings, roll_settings_hash=clf.settings_hash,
                    train=config.to_dict(), data=data,
                    metrics={k: report[k] for k in ("accuracy", "per_class", "confusion", "test_phrases", "test_songs")})
    song_split.save(out / "split.json")
    write_json(out / "report.json", report)
    plot_confusion(report, out / "confusion.png", title=f"{' / '.join(names)}: accuracy {report['accuracy']:.1%} "
                   f"on {len(x_test)} held-out phrases")
    return report


def _hash_of(src: GenreSource) -> str:
    with PhraseCache(src.path) as c:
        return c.header.settings_hash

