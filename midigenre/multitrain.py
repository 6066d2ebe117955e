"""Training the multi-genre generator (:mod:`midigenre.stargan`) on the shared loop.

The same caches (:class:`~midigenre.train.GenreSource`), song-level split (over every genre,
with a validation part when asked), checkpoint/resume, CSV log, per-epoch pictures and model
export as the pair CycleGAN (:mod:`midigenre.train`); the run folder has the same layout and its
``config.json`` says ``"kind": "multi-genre"``.

Imbalance is handled by sampling, not by throwing data away (:class:`GenreSampler`): an epoch
is K × (the smallest genre's training phrases) / batch size steps; every batch holds the K
source genres evenly, each genre's phrases come from its own stream of permutations that goes
on across epochs (so a large genre shows new phrases every epoch until it has shown them all),
and each phrase's target genre is drawn uniformly from the other genres.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from midigenre.config import MultiGenreConfig
from midigenre.cyclegan import ImagePool
from midigenre.dataset import PhraseCache, SongSplit
from midigenre.stargan import MultiGenreGAN, density_thresholds, discriminator_losses, generator_losses, kept_transfer
from midigenre.train import GenreSource, _Rows, genre_settings
from shared.errors import GenreError
from shared.runtime import RandomStates, pick_device
from shared.training import CSVLog, EpochSnapshot, EveryEpoch, LearningRate, TrainingLoop, linear_decay, weighted, write_run_config

KIND = "multi-genre"


def reading_settings(settings: dict[str, dict]) -> dict:
    """The settings a song of unknown genre is read with: the meter rule most genres used (the
    stricter on a tie), everything else shared."""
    from midigenre.pianoroll import METER_MODES

    meters = [s["meter"] for s in settings.values()]
    best = max(METER_MODES, key=lambda m: (meters.count(m), -METER_MODES.index(m)))
    return {**next(iter(settings.values())), "meter": best}


class GenreSampler:
    """The batches of one epoch, deterministic in (seed, epoch).

    ``sizes[k]``: training phrases of genre k. Steps per epoch: K × min(sizes) // batch_size
    (at least 1). Every batch holds ``batch_size // K`` phrases of each genre, and the
    remaining ``batch_size % K`` slots go to the genres in turn (step s starts at genre s mod K),
    so each genre's count per epoch is the same every epoch; genre k's phrases are positions
    ``[e·n_k, (e+1)·n_k)`` of its stream, the concatenation of the permutations
    ``rng(seed, k, j).permutation(sizes[k])`` for j = 0, 1, …
    """

    def __init__(self, sizes: list[int], batch_size: int, seed: int):
        if len(sizes) < 2 or min(sizes) < 1:
            raise GenreError("the sampler needs two or more genres with phrases")
        self.sizes, self.batch_size, self.seed, self.k = [int(n) for n in sizes], batch_size, seed, len(sizes)
        self.steps = max(1, self.k * min(self.sizes) // batch_size)
        self.per_epoch = [sum(self._count(s, g) for s in range(self.steps)) for g in range(self.k)]

    def _count(self, step: int, genre: int) -> int:
        extra = self.batch_size % self.k
        return self.batch_size // self.k + int((genre - step) % self.k < extra)

    def _stream(self, genre: int, start: int, n: int) -> np.ndarray:
        size, out = self.sizes[genre], []
        pos = start
        while pos < start + n:
            j, off = divmod(pos, size)
            perm = np.random.default_rng([self.seed, genre, j]).permutation(size)
            take = min(size - off, start + n - pos)
            out.append(perm[off:off + take])
            pos += take
        return np.concatenate(out) if out else np.zeros(0, np.int64)

    def epoch(self, epoch: int) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
        """Per step ``(source genres, positions in each source's training rows, target genres)``,
        arrays of ``batch_size``; target ≠ source, uniform over the other genres."""
        streams = [self._stream(g, epoch * self.per_epoch[g], self.per_epoch[g]) for g in range(self.k)]
        used = [0] * self.k
        rng = np.random.default_rng([self.seed, epoch, 1])
        out = []
        for s in range(self.steps):
            src = np.concatenate([np.full(self._count(s, g), g) for g in range(self.k)])
            pos = np.concatenate([streams[g][used[g]:used[g] + self._count(s, g)] for g in range(self.k)])
            for g in range(self.k):
                used[g] += self._count(s, g)
            order = rng.permutation(len(src))
            src, pos = src[order], pos[order]
            tgt = (src + rng.integers(1, self.k, size=len(src))) % self.k  # uniform over the other K − 1
            out.append((src.astype(np.int64), pos.astype(np.int64), tgt.astype(np.int64)))
        return out


class MultiGenreTask:
    """Trains one generator over the genres of ``sources`` into the run folder ``out``.

    Parameters as :class:`midigenre.train.CycleGANTask` (``split``, ``device``, ``precision``).
    """

    def __init__(self, sources: list[GenreSource], out: str | os.PathLike, config: MultiGenreConfig = MultiGenreConfig(),
                 *, split: str | os.PathLike | None = None, device: str = "auto", precision: str = "auto"):
        if len(sources) < 2:
            raise GenreError(f"the multi-genre model needs two or more genres, got {len(sources)}: give --genre NAME=FILE.h5 "
                             "for each")
        names = [s.genre for s in sources]
        if len(set(names)) != len(names):
            raise GenreError(f"genre names must differ, got {', '.join(names)}")
        self.sources, self.genres, self.cfg, self.out = list(sources), names, config, Path(out)
        unknown = sorted(set(config.keep_source_into) - set(names))
        if unknown:
            raise GenreError(f"--keep-source-into names {', '.join(unknown)}, not one of the genres ({', '.join(names)})")
        self.genre_settings = genre_settings(self.sources)
        self.roll_settings = reading_settings(self.genre_settings)
        self.device = pick_device(device)
        if precision not in ("auto", "fp32", "bf16"):
            raise GenreError(f"unknown precision {precision!r}; use auto, fp32 or bf16")
        self.amp = precision == "bf16" or (precision == "auto" and self.device.type == "cuda")

        self.split = SongSplit.load(split) if split is not None else SongSplit.for_sources(
            [(s.path, s.genre) for s in self.sources], test_fraction=config.test_fraction, seed=config.seed,
            valid_fraction=config.valid_fraction, same_grid=True)
        self.train = [_Rows(s, self._rows(s, "train")) for s in self.sources]
        for s, r in zip(self.sources, self.train):
            if len(r.rows) == 0:
                raise GenreError(f"'{s.genre}' in {s.path} has no training phrases")
        self.sampler = GenreSampler([len(r.rows) for r in self.train], config.batch_size, config.seed)
        self.samples = self._sample_phrases()

        self.keep_source = (torch.tensor([g in config.keep_source_into for g in names], device=self.device)
                            if config.keep_source_into else None)
        self.rng = RandomStates(config.seed)  # the run's own generators: the caller's are left as they were
        with self.rng:
            self.model = MultiGenreGAN(config.model, len(self.genres), critic=config.critic).to(self.device)
        betas = (config.beta1, config.beta2)
        self.opt_g = torch.optim.Adam(self.model.G.parameters(), lr=config.lr, betas=betas)
        self.opt_d = torch.optim.Adam(self.model.critic_parameters(), lr=config.lr, betas=betas)
        self.pool = ImagePool(config.pool_size)
        self.resumed = False
        self.loop = TrainingLoop(self, config.epochs, [
            LearningRate(linear_decay(config.lr, config.epochs, config.decay_after)),
            EveryEpoch(self._throughput),
            CSVLog(self.out / "log.csv"),
            EveryEpoch(lambda row: self.save_samples(self.out / "samples" / f"epoch_{row['epoch']:03d}.png", row["epoch"])),
            EveryEpoch(lambda row: self.export(epochs_done=row["epoch"])),
            *([EpochSnapshot(self.out)] if config.keep_epochs else []),
        ], checkpoint=self.out / "checkpoint.pt", meta={"kind": KIND, "config": config.to_dict(), "data": self._sources()})

    # -- data ----------------------------------------------------------------------------

    def _rows(self, src: GenreSource, part: str) -> np.ndarray:
        with PhraseCache(src.path) as c:
            return self.split.rows(c, src.genre, part)

    def _sample_phrases(self) -> list[torch.Tensor]:
        """Per genre, up to ``sample_phrases`` fixed test phrases (training phrases when it has no test songs)."""
        out = []
        for src in self.sources:
            rows = self._rows(src, "test")
            if len(rows) == 0:
                rows = self._rows(src, "train")
            pick = rows[np.linspace(0, len(rows) - 1, min(self.cfg.sample_phrases, len(rows))).round().astype(int)]
            with PhraseCache(src.path) as c:
                out.append(torch.from_numpy(c.phrases(src.genre, pick).astype(np.float32)).unsqueeze(1))
        return out

    def steps_per_epoch(self) -> int:
        return self.sampler.steps

    # -- the task of the training loop ---------------------------------------------------

    def state(self) -> dict:
        return {"model": self.model, "opt_g": self.opt_g, "opt_d": self.opt_d}

    def extra_state(self) -> dict:
        return {"pool": self.pool.state()}

    def load_extra_state(self, state: dict) -> None:
        self.pool.load(state["pool"], self.device)

    def batches(self, epoch: int) -> list:
        return self.sampler.epoch(epoch)

    def _fetch(self, src: np.ndarray, pos: np.ndarray) -> torch.Tensor:
        x = torch.empty((len(src), 1) + tuple(self.samples[0].shape[2:]))
        for g in np.unique(src):
            where = np.flatnonzero(src == g)
            x[torch.from_numpy(where)] = self.train[g].batch(pos[where])
        return x.to(self.device)

    def train_step(self, batch) -> dict[str, float]:
        src, pos, tgt = batch
        real = self._fetch(src, pos)
        return self.update(real, torch.from_numpy(src).to(self.device), torch.from_numpy(tgt).to(self.device))

    def update(self, real: torch.Tensor, source: torch.Tensor, target: torch.Tensor) -> dict[str, float]:
        """One generator update, then one discriminator update; the named losses, sorted by name."""
        m, c = self.model, self.cfg
        m.train()
        with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.amp):
            m.critics_requires_grad_(False)
            g_losses, fake = generator_losses(m, real, source, target, c.sigma_d, identity=c.identity > 0,
                                              genre=c.genre_loss > 0, content=c.content > 0, keep=c.keep > 0,
                                              add=c.add > 0, keep_source=self.keep_source, harmony=c.harmony > 0)
            self.opt_g.zero_grad(set_to_none=True)
            weighted(g_losses, c.loss_weights).backward()
            self.opt_g.step()
            m.critics_requires_grad_(True)
            d_losses = discriminator_losses(m, real, source, self.pool(fake.detach().float()), c.sigma_d)
            self.opt_d.zero_grad(set_to_none=True)
            weighted(d_losses, c.loss_weights).backward()
            self.opt_d.step()
        return {k: float(v.detach()) for k, v in sorted({**g_losses, **d_losses}.items())}

    def _throughput(self, row: dict) -> None:
        seconds = self.loop.position.seconds
        row["phrases_per_s"] = round(self.steps_per_epoch() * self.cfg.batch_size / max(seconds, 1e-9), 2)
        row["s_per_step"] = round(seconds / max(self.steps_per_epoch(), 1), 4)

    # -- running -------------------------------------------------------------------------

    @property
    def epoch(self) -> int:
        return self.loop.position.epoch

    @property
    def step_in_epoch(self) -> int:
        return self.loop.position.step

    def fit(self, progress=None, on_epoch: Callable[[int, dict], None] | None = None) -> dict:
        """Train to ``config.epochs``; returns the last epoch's log row (see
        :meth:`midigenre.train.CycleGANTask.fit`: progress, Ctrl-C and SIGTERM alike)."""
        (self.out / "samples").mkdir(parents=True, exist_ok=True)
        if not self.resumed:
            write_run_config(self.out, kind=KIND, train=self.cfg.to_dict(), model=self.cfg.model.to_dict(),
                             data=self.describe(), roll_settings=self.roll_settings, genre_settings=self.genre_settings,
                             device=str(self.device))
            self.split.save(self.out / "split.json")
        with self.rng:
            history = self.loop.run_reporting(progress, on_epoch)
        return history[-1] if history else {}

    def resume(self) -> None:
        """Continue the run in ``out`` from its checkpoint (same data and settings; only epochs may change)."""
        def check(meta: dict) -> None:
            if meta.get("kind") != KIND:
                raise GenreError(f"{self.out} holds a CycleGAN run, not a multi-genre one; resume it with --a and --b")
            if meta.get("data") != self._sources():
                was = ", ".join(f"{d.get('genre')}={d.get('cache')}" for d in meta.get("data") or [])
                raise GenreError(f"{self.out} was trained with {was}; resume it with the same --genre options, in that order")
            saved = MultiGenreConfig.from_saved(meta.get("config", {}))
            if dataclasses.replace(saved, epochs=self.cfg.epochs) != self.cfg:
                raise GenreError(f"{self.out} was trained with other settings; resume it with the same ones (only --epochs may change)")

        with self.rng:  # the checkpoint's generators become the run's own
            self.loop.resume(check)
        self.resumed = True

    # -- outputs -------------------------------------------------------------------------

    def _sources(self) -> list[dict]:
        return [{"cache": str(s.path), "genre": s.genre} for s in self.sources]

    def describe(self) -> dict:
        parts = self.split.genres
        return {
            "genres": self._sources(),
            "train_phrases": {g: int(len(r.rows)) for g, r in zip(self.genres, self.train)},
            "phrases_per_epoch": dict(zip(self.genres, self.sampler.per_epoch)),
            "train_songs": {g: len(parts[g]["train"]) for g in self.genres},
            "test_songs": {g: len(parts[g]["test"]) for g in self.genres},
            **({"valid_songs": {g: len(parts[g].get("valid", [])) for g in self.genres}}
               if any(parts[g].get("valid") for g in self.genres) else {}),
        }

    @torch.no_grad()
    def save_samples(self, path: Path, epoch: int) -> None:
        """The fixed test phrases of every genre, each transferred to every other genre."""
        from shared.plotting import plot_grid

        m = self.model.eval()
        t = self.thresholds()
        rows, titles = [], []
        for s, x in enumerate(self.samples):
            x = x.to(self.device)
            outs = {}
            with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.amp):
                for k in range(len(self.genres)):
                    if k != s:
                        y = kept_transfer(m, x, torch.full((len(x),), k, device=self.device), self.keep_source)
                        outs[k] = (y.float() > t[k]).cpu()
            for i in range(len(x)):
                rows.append([x[i, 0].cpu().numpy()] + [outs[k][i, 0].numpy() for k in outs])
                titles.append([f"{self.genres[s]} (test)"] + [f"→ {self.genres[k]}" for k in outs])
        plot_grid(rows, titles, path, suptitle=f"epoch {epoch}")

    def thresholds(self) -> list[float]:
        """Binarisation threshold per target genre: 0.5, or density-matched (``binarize: density``)
        on up to 256 training phrases of each genre (a fixed, seeded choice)."""
        if self.cfg.binarize == "fixed":
            return [0.5] * len(self.genres)
        xs = []
        for k, rows in enumerate(self.train):
            rng = np.random.default_rng([self.cfg.seed, 7, k])
            pick = np.sort(rng.choice(len(rows.rows), size=min(256, len(rows.rows)), replace=False))
            xs.append(rows.batch(pick).to(self.device))
        with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.amp):
            return density_thresholds(self.model, xs, keep_source=self.keep_source)

    def export(self, epochs_done: int | None = None) -> Path:
        """Write G, D and the genre classifier (D's head or the critic) as a self-describing model (model.safetensors + model.json)."""
        from midigenre.stargan import save_multi_genre

        return save_multi_genre(
            self.out, self.model, genres=self.genres, roll_settings=self.roll_settings,
            genre_settings=self.genre_settings, thresholds=dict(zip(self.genres, self.thresholds())),
            train=self.cfg.to_dict(), data=self.describe(),
            keep_source={g: g in self.cfg.keep_source_into for g in self.genres},
            epochs_done=self.epoch if epochs_done is None else epochs_done, metrics={})
