"""A second judge of genre and a panel of musical statistics, for measuring transfers honestly.

The reference classifier (:mod:`midigenre.classifier`) is a CNN over the piano roll; a
generator trained against convolutional discriminators may learn to fool that kind of network
without changing what a musician would call the genre. :class:`FeatureJudge` is built
differently: a small MLP over interpretable statistics of a phrase (:func:`phrase_features`:
pitch-class and register histograms, note density, polyphony, onsets per sixteenth position,
pitch range, silence), trained on another seed. A transfer that convinces both judges is more
than an adversarial texture.

:func:`music_stats` summarises a set of phrases in the numbers a musician would look at, and
:func:`stats_gap` compares transferred phrases with real phrases of the target genre.

The judges of a choice and of its measures are trained here, on the training songs of a split
only (:func:`train_judges`, :func:`cnn_judge`): ``reference`` (the CNN, seed 0) chooses
(:mod:`midigenre.choose`); ``cnn-seed1`` and ``feature`` give the headline of a model's card.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from shared.errors import GenreError
from shared.training import TrainingLoop, permutation

STEPS_PER_BEAT = 4


def _onsets(x: np.ndarray) -> np.ndarray:
    """(N, T, P) bool → onsets: a note cell whose previous step is silent at that pitch."""
    prev = np.zeros_like(x)
    prev[:, 1:] = x[:, :-1]
    return x & ~prev


def phrase_features(phrases: np.ndarray) -> np.ndarray:
    """(N, T, P) binary phrases → (N, 48) float32 features.

    12 pitch-class shares, 7 octave (register) shares, 16 onset shares per sixteenth position
    of the bar, note-cell density, onsets per step, mean and max polyphony, pitch range / P,
    lowest and highest pitch / P, share of silent steps, share of silent beats, mean note length
    / T, and a constant for silent phrases.
    """
    x = np.asarray(phrases) > 0.5
    n, t, p = x.shape
    feats = np.zeros((n, 48), np.float32)
    active = x.sum(axis=1).astype(np.float64)  # (N, P) cells per pitch
    total = active.sum(axis=1)
    safe = np.maximum(total, 1.0)[:, None]
    pc = np.zeros((n, 12))
    for k in range(12):
        pc[:, k] = active[:, k::12].sum(axis=1)
    feats[:, 0:12] = pc / safe
    octaves = active[:, : (p // 12) * 12].reshape(n, p // 12, 12).sum(axis=2)
    feats[:, 12:12 + min(7, p // 12)] = (octaves / safe)[:, :7]
    on = _onsets(x)
    per_step = on.sum(axis=2).astype(np.float64)  # (N, T)
    n_on = np.maximum(per_step.sum(axis=1), 1.0)
    pos = per_step.reshape(n, -1, 16).sum(axis=1) if t % 16 == 0 else np.zeros((n, 16))
    feats[:, 19:35] = pos / n_on[:, None]
    poly = x.sum(axis=2).astype(np.float64)  # (N, T) simultaneous pitches
    sounding = poly > 0
    feats[:, 35] = total / (t * p) * 10
    feats[:, 36] = per_step.sum(axis=1) / t
    feats[:, 37] = np.where(sounding.any(axis=1), poly.sum(axis=1) / np.maximum(sounding.sum(axis=1), 1), 0) / 10
    feats[:, 38] = poly.max(axis=1) / 10
    has = active > 0
    lo = np.where(has.any(axis=1), has.argmax(axis=1), 0)
    hi = np.where(has.any(axis=1), p - 1 - has[:, ::-1].argmax(axis=1), 0)
    feats[:, 39] = (hi - lo) / p
    feats[:, 40] = lo / p
    feats[:, 41] = hi / p
    feats[:, 42] = 1.0 - sounding.mean(axis=1)
    beats = sounding[:, : (t // STEPS_PER_BEAT) * STEPS_PER_BEAT].reshape(n, -1, STEPS_PER_BEAT).any(axis=2)
    feats[:, 43] = 1.0 - beats.mean(axis=1)
    feats[:, 44] = np.where(n_on > 0, total / n_on / t, 0)
    feats[:, 45] = (total == 0).astype(np.float32)
    return feats


class _FeatureTraining:
    """The judge's MLP as a task of the shared training loop: Adam, cross-entropy, batches of 128
    in an order that depends on the seed and the epoch alone."""

    batch_size = 128

    def __init__(self, net, x, y, lr: float, seed: int):
        import torch

        self.net, self.x, self.y, self.seed = net, x, y, seed
        self.opt = torch.optim.Adam(net.parameters(), lr=lr, weight_decay=1e-4)

    def state(self) -> dict:
        return {"net": self.net, "opt": self.opt}

    def batches(self, epoch: int) -> list:
        return list(permutation(len(self.x), self.seed, epoch, generator="torch").split(self.batch_size))

    def train_step(self, idx) -> dict:
        from torch import nn

        self.net.train()
        loss = nn.functional.cross_entropy(self.net(self.x[idx]), self.y[idx])
        self.opt.zero_grad()
        loss.backward()
        self.opt.step()
        return {"loss": float(loss.detach()), "n": len(idx)}


@dataclasses.dataclass
class FeatureJudge:
    """An MLP over :func:`phrase_features`, with the classifier interface that
    :func:`midigenre.evaluate.evaluate_transfer` uses (``genres``, ``index``, ``predict``,
    ``probabilities``, ``settings_hash``)."""

    net: object
    mean: np.ndarray
    std: np.ndarray
    genres: list[str]
    settings_hash: str

    @classmethod
    def train(cls, phrases_per_genre: list[np.ndarray], genres: list[str], settings_hash: str, *, seed: int = 1,
              epochs: int = 60, hidden: int = 64, lr: float = 3e-3) -> "FeatureJudge":
        """Train on phrases of each genre (balanced by downsampling to the smallest, seeded)."""
        import torch
        from torch import nn

        if len(phrases_per_genre) != len(genres) or len(genres) < 2:
            raise GenreError("the feature judge needs phrases of at least two genres")
        rng = np.random.default_rng(seed)
        n = min(len(x) for x in phrases_per_genre)
        if n < 2:
            raise GenreError("the feature judge needs at least two phrases of every genre")
        xs, ys = [], []
        for k, x in enumerate(phrases_per_genre):
            pick = rng.choice(len(x), size=n, replace=False)
            xs.append(phrase_features(np.asarray(x)[np.sort(pick)]))
            ys.append(np.full(n, k))
        f, y = np.concatenate(xs), np.concatenate(ys)
        mean, std = f.mean(axis=0), f.std(axis=0) + 1e-6
        with torch.random.fork_rng(devices=[]):  # seeded here, the caller's random state left as it was
            torch.manual_seed(seed)
            net = nn.Sequential(nn.Linear(f.shape[1], hidden), nn.ReLU(), nn.Dropout(0.2), nn.Linear(hidden, len(genres)))
            task = _FeatureTraining(net, torch.from_numpy((f - mean) / std).float(), torch.from_numpy(y).long(), lr, seed)
            TrainingLoop(task, epochs, alone=True).run()  # each process that asks trains its own judge
            net.eval()
        return cls(net, mean, std, list(genres), settings_hash)

    def index(self, genre: str) -> int:
        if genre not in self.genres:
            raise GenreError(f"the judge knows {', '.join(self.genres)}, not {genre!r}")
        return self.genres.index(genre)

    def probabilities(self, phrases: np.ndarray, **_) -> np.ndarray:
        import torch

        f = (phrase_features(phrases) - self.mean) / self.std
        with torch.inference_mode():
            return torch.softmax(self.net(torch.from_numpy(f).float()), dim=1).numpy()

    def predict(self, phrases: np.ndarray, **kw) -> np.ndarray:
        return self.probabilities(phrases, **kw).argmax(axis=1)


def music_stats(phrases: np.ndarray) -> dict[str, float]:
    """Means over phrases: note density (note cells per step), onsets per bar, polyphony (pitches
    sounding at once, over sounding steps), pitch range (semitones), share of silent beats, and the
    pitch-class histogram (12 shares over all note cells)."""
    x = np.asarray(phrases) > 0.5
    if len(x) == 0:
        raise GenreError("no phrases to summarise")
    n, t, p = x.shape
    poly = x.sum(axis=2)
    sounding = poly > 0
    has = x.any(axis=1)
    rng = [int(np.flatnonzero(h)[-1] - np.flatnonzero(h)[0]) for h in has if h.any()]
    beats = sounding[:, : (t // STEPS_PER_BEAT) * STEPS_PER_BEAT].reshape(n, -1, STEPS_PER_BEAT).any(axis=2)
    cells = x.sum(axis=(0, 1)).astype(np.float64)
    pc = np.array([cells[k::12].sum() for k in range(12)])
    return {
        "density": float(x.sum(axis=(1, 2)).mean() / t),
        "onsets_per_bar": float(_onsets(x).sum(axis=(1, 2)).mean() / (t / 16)),
        "polyphony": float(poly[sounding].mean()) if sounding.any() else 0.0,
        "pitch_range": float(np.mean(rng)) if rng else 0.0,
        "empty_beats": float(1.0 - beats.mean()),
        "pitch_classes": (pc / max(pc.sum(), 1.0)).tolist(),
    }


def stats_gap(transferred: np.ndarray, target: np.ndarray) -> dict[str, float]:
    """The statistics of transferred phrases beside those of real target-genre phrases, and the
    L1 distance of their pitch-class histograms (0 = same, 2 = disjoint)."""
    a, b = music_stats(transferred), music_stats(target)
    out = {}
    for key in ("density", "onsets_per_bar", "polyphony", "pitch_range", "empty_beats"):
        out[key] = a[key]
        out[f"{key}_target"] = b[key]
    out["pitch_class_l1"] = float(np.abs(np.array(a["pitch_classes"]) - np.array(b["pitch_classes"])).sum())
    return out


#: The judges of a choice and of its measures: name → (kind, seed). ``reference`` chooses;
#: ``cnn-seed1`` (the same network, another seed) and ``feature`` (:class:`FeatureJudge`) judge the
#: headline, so a model is never read by the judge that chose it.
JUDGES = {"reference": ("cnn", 0), "cnn-seed1": ("cnn", 1), "feature": ("feature", 1)}


def _sources(caches: dict[str, str | os.PathLike]) -> list:
    from midigenre.train import GenreSource

    return [GenreSource.parse_named(f"{g}={c}") for g, c in caches.items()]


def cnn_judge(caches: dict[str, str | os.PathLike], split_path: str | os.PathLike, folder: str | os.PathLike, *,
              seed: int = 0, epochs: int = 10, device: str = "cpu", say: Callable[[str], None] | None = None):
    """The CNN judge (the classifier of Brunner et al.) of ``caches``' genres ({genre: cache})
    trained on the training songs of the split ``split_path`` alone, with ``seed``, into
    ``folder``; the one already there is reused (it must judge the same genres)."""
    from midigenre.classifier import Classifier, ClassifierConfig, train_classifier

    folder = Path(folder)
    if not (folder / "model.json").is_file():
        if say is not None:
            say(f"training a judge ({epochs} epochs, seed {seed}) on the training songs into {folder} …")
        train_classifier(_sources(caches), folder, ClassifierConfig(epochs=epochs, seed=seed), split=split_path,
                         device=device, on_epoch=None if say is None else
                         lambda epoch, row: say(f"  judge epoch {epoch} of {epochs}"))
    judge = Classifier.load(folder)
    if sorted(judge.genres) != sorted(caches):
        raise GenreError(f"{folder} judges {', '.join(judge.genres)}, not {', '.join(caches)}: "
                         "move it away to train it again")
    return judge


def feature_judge(caches: dict[str, str | os.PathLike], split_path: str | os.PathLike, settings_hash: str, *,
                  seed: int = 1, phrases: int = 4000) -> FeatureJudge:
    """:class:`FeatureJudge` of ``caches``' genres trained on at most ``phrases`` phrases with notes
    of each genre's training songs (a seeded choice)."""
    from midigenre.choose import part_phrases
    from midigenre.dataset import SongSplit

    train = part_phrases(_sources(caches), SongSplit.load(split_path), "train", phrases, 0)
    return FeatureJudge.train(train, list(caches), settings_hash, seed=seed)


def train_judges(caches: dict[str, str | os.PathLike], split_path: str | os.PathLike, folder: str | os.PathLike, *,
                 which: Sequence[str] = tuple(JUDGES), epochs: int = 10, device: str = "cpu",
                 say: Callable[[str], None] | None = None) -> dict:
    """The judges ``which`` (names of :data:`JUDGES`) of ``caches``' genres ({genre: cache}), all
    trained on the split's training songs only: the CNNs kept in ``folder/NAME`` and reused when
    there (:func:`cnn_judge`), the feature judge trained anew (a minute; :func:`feature_judge`)."""
    from midigenre.dataset import PhraseCache

    unknown = [n for n in which if n not in JUDGES]
    if unknown:
        raise GenreError(f"no judge named {unknown[0]}; the judges are {', '.join(JUDGES)}")
    folder = Path(folder)
    judges = {}
    for name in which:
        kind, seed = JUDGES[name]
        if kind == "cnn":
            judges[name] = cnn_judge(caches, split_path, folder / name, seed=seed, epochs=epochs, device=device, say=say)
    for name in which:
        kind, seed = JUDGES[name]
        if kind == "feature":
            cnn = next((j for j in judges.values()), None)
            if cnn is not None:
                settings_hash = cnn.settings_hash
            else:
                with PhraseCache(_sources(caches)[0].path) as c:
                    settings_hash = c.header.settings_hash
            judges[name] = feature_judge(caches, split_path, settings_hash, seed=seed)
    return {n: judges[n] for n in which}
