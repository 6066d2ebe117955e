"""CycleGAN genre transfer training (Brunner et al. 2018; SN and SA as in Brunner et al. 2019).

The data side (genre sources, the song-level split, balanced phrase rows) and the CycleGAN
as a task of the shared training loop (``shared/training.py``). The networks, the named losses
and the image pool are in ``midigenre/cyclegan.py``; the settings (:class:`TrainConfig`) in
``midigenre/config.py``.

A run folder holds::

    config.json          the full configuration, data and versions (written at the start)
    split.json           the song-level train/test split used
    checkpoint.pt        the whole training state, for --resume (written atomically)
    model.safetensors    generators only, for transfer; model.json describes them
    log.csv              one row per epoch: losses, learning rate, time, phrases/s
    samples/epoch_NNN.png   fixed test phrases: source, transferred, cycled back

On several processes (``torchrun``, ``--nproc``; :mod:`shared.distributed`) ``batch_size`` stays
the global batch of each genre: every process takes its share of the step's phrases, the
generators and the discriminators are each wrapped in DistributedDataParallel, and rank 0
writes the run folder. A generator step runs the discriminators as plain modules (frozen, their
gradients are not wanted), a discriminator step runs them through their DDP wrappers, so every
wrapper's forward pass is followed by a backward pass that reaches all its parameters (no
``find_unused_parameters`` search). A discriminator whose loss weight is 0 is not wrapped. The
networks keep no batch statistics (instance norm; spectral norm's vectors follow the weights
and are the same on every process), so buffers are not broadcast (``broadcast_buffers=False``);
BatchNorm, whose running statistics two discriminator passes before one backward would
overwrite, is not used. The noise on D's inputs and the image pools are each process's own.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from midigenre.config import TrainConfig, keep_source_directions
from midigenre.cyclegan import CycleGAN, ImagePool, discriminator_losses, generator_losses, weighted
from midigenre.dataset import PhraseCache, PhraseDataset, SongSplit, balance
from shared import distributed
from shared.config import load_config_file
from shared.errors import GenreError
from shared.runtime import RandomStates, pick_device
from shared.training import CSVLog, EpochSnapshot, EveryEpoch, LearningRate, TrainingLoop, linear_decay, write_run_config

log = logging.getLogger(__name__)

# ----------------------------------------------------------------------------- data


@dataclass
class GenreSource:
    """One genre of one cache, given on the command line as ``FILE.h5`` or ``FILE.h5:GENRE``."""

    path: Path
    genre: str

    @classmethod
    def parse(cls, spec: str | os.PathLike) -> "GenreSource":
        spec = str(spec)
        path, genre = spec, None
        if ":" in spec and not Path(spec).exists():
            path, genre = spec.rsplit(":", 1)
        with PhraseCache(path) as c:
            if genre is None:
                if len(c.genres) != 1:
                    raise GenreError(f"{path} holds {len(c.genres)} genres ({', '.join(c.genres) or 'none'}): write {path}:GENRE")
                genre = c.genres[0]
            c.n_phrases(genre)  # raises a clear error for an unknown genre
        return cls(Path(path).resolve(), genre)

    @classmethod
    def parse_named(cls, spec: str) -> "GenreSource":
        """``NAME=FILE.h5`` (NAME picks the genre of a cache that holds several, or must be its
        only genre), or ``FILE.h5[:GENRE]``."""
        name, _, path = spec.partition("=") if "=" in spec else ("", "", spec)
        if name and ":" not in path and Path(path).exists():
            with PhraseCache(path) as c:
                if name in c.genres:
                    path = f"{path}:{name}"
        src = cls.parse(path)
        if name and name != src.genre:
            raise GenreError(f"{spec}: the cache's genre is '{src.genre}', not '{name}'")
        return src

    def describe(self) -> dict:
        return {"cache": str(self.path), "genre": self.genre}


class _Rows:
    """Phrase rows of one source with a lazy dataset to fetch them in batches."""

    def __init__(self, src: GenreSource, rows: np.ndarray):
        self.src, self.rows = src, rows
        self.ds = PhraseDataset(src.path, src.genre, rows=rows)

    def batch(self, positions: np.ndarray) -> torch.Tensor:
        return torch.stack(self.ds.__getitems__(positions))


def check_settings(sources: list[GenreSource], *, same_grid: bool = False) -> dict:
    """The piano-roll settings the caches share; GenreError if they were prepared differently.

    ``same_grid``: only the phrase grid must match (:meth:`RollSettings.grid`), the meter rule
    may differ between caches (pop read with assume-4/4, the others lenient); the first
    cache's settings are returned (see :func:`genre_settings` for each one's).
    """
    from midigenre.pianoroll import RollSettings

    hashes = {}
    for s in sources:
        with PhraseCache(s.path) as c:
            hashes[str(s.path)] = (c.header.settings_hash, c.header.settings)
    first = next(iter(hashes.values()))
    for path, (h, settings) in hashes.items():
        if same_grid and RollSettings.from_dict(settings).grid() == RollSettings.from_dict(first[1]).grid():
            continue
        if h != first[0]:
            diff = [k for k in settings if settings.get(k) != first[1].get(k)]
            if same_grid:
                diff = [k for k in diff if k in RollSettings.from_dict(settings).grid()]
            raise GenreError(
                f"{sources[0].path} and {path} were prepared with different settings ({', '.join(diff)}); "
                + ("only the meter rule may differ between genres: prepare them with the same other options"
                   if same_grid else "prepare both with the same options")
            )
    return first[1]


def genre_settings(sources: list[GenreSource]) -> dict[str, dict]:
    """Each genre's piano-roll settings; GenreError unless they share the phrase grid (the meter
    rule may differ, see :func:`check_settings`)."""
    check_settings(sources, same_grid=True)
    out = {}
    for s in sources:
        with PhraseCache(s.path) as c:
            out[s.genre] = dict(c.header.settings)
    return out


def run_config(run: str | os.PathLike) -> dict:
    """The config.json of a run folder."""
    path = Path(run) / "config.json"
    if not path.exists():
        raise GenreError(f"{run} is not a training run (no config.json)")
    return json.loads(path.read_text())


def run_settings(out: str | os.PathLike, *, resume: bool = False, config_file: str | os.PathLike | None = None,
                 given: dict | None = None, kind: str = "cyclegan") -> tuple[TrainConfig, list[str]]:
    """The settings of a run: a new run takes the defaults, then the config file, then the
    ``given`` options (None = not given); a resumed run keeps its own and only ``epochs`` may
    change. Returns the settings and the names of the given settings that a resume ignores.

    ``kind``: "cyclegan" (:class:`TrainConfig`) or "multi-genre" (:class:`MultiGenreConfig`); a
    resumed run must be of that kind (its config.json says which; runs without the key are CycleGANs).
    A saved run and a config file are read by the class's ``from_saved`` and ``from_dict``: the
    earlier names of settings, and removed settings at the value that is now the only behaviour.
    """
    from midigenre.config import MultiGenreConfig

    cls = MultiGenreConfig if kind == "multi-genre" else TrainConfig
    given = {k: v for k, v in (given or {}).items() if v is not None}
    if resume:
        ignored = (["config"] if config_file else []) + [k for k in given if k != "epochs"]
        saved_run = run_config(out)
        was = saved_run.get("kind", "cyclegan")
        if was != kind:
            how = "--a and --b" if was == "cyclegan" else "--genre NAME=FILE.h5 for each genre"
            raise GenreError(f"{out} holds a {was} run, not a {kind} one; resume it with {how}")
        saved = saved_run.get("train", {})
        return cls.from_saved({**saved, **({"epochs": given["epochs"]} if "epochs" in given else {})}), ignored
    if (Path(out) / "checkpoint.pt").exists():
        raise GenreError(f"{out} already holds a run; pass --resume to continue it or choose another --out")
    return cls.from_dict({**(load_config_file(config_file) if config_file else {}), **given}), []


# ----------------------------------------------------------------------------- the task


class _View:
    """The CycleGAN's networks and variant, some replaced by their DDP wrappers (what the loss
    functions of :mod:`midigenre.cyclegan` read: G_AB, G_BA, D_A, D_B, D_A_all, D_B_all, C)."""

    def __init__(self, model: CycleGAN, **wrapped):
        self.variant = model.variant
        for name in ("G_AB", "G_BA", "D_A", "D_B", "D_A_all", "D_B_all", "C"):
            setattr(self, name, wrapped.get(name, getattr(model, name, None)))


class CycleGANTask:
    """Trains a CycleGAN between genre ``a`` and genre ``b`` into the run folder ``out``.

    Parameters
    ----------
    a, b : the two genres.
    out : run folder (created).
    config : training settings.
    mixed : the third genre for the ``full`` variant.
    split : a saved SongSplit to use instead of making one.
    device : "auto", "cpu", "cuda", "mps".
    precision : "auto" (bf16 autocast on CUDA, fp32 elsewhere), "fp32", or "bf16" (autocast on any
        device; 1.7–1.9× faster steps on CPUs with AVX512-BF16, see benchmarks/train_speed.py).
    """

    def __init__(self, a: GenreSource, b: GenreSource, out: str | os.PathLike, config: TrainConfig = TrainConfig(), *,
                 mixed: GenreSource | None = None, split: str | os.PathLike | None = None, device: str = "auto",
                 precision: str = "auto"):
        self.a, self.b, self.mixed_src, self.cfg = a, b, mixed, config
        self.out = Path(out)
        if (a.path, a.genre) == (b.path, b.genre):
            raise GenreError("genre A and genre B are the same data; give two different genres")
        if config.variant == "full" and mixed is None:
            raise GenreError("the full variant needs a third genre: --mixed FILE.h5[:GENRE]")
        if config.variant != "full" and mixed is not None:
            raise GenreError(f"--mixed is only used by the full variant, not {config.variant!r}")
        self.roll_settings = check_settings([a, b] + ([mixed] if mixed else []))
        self.device = pick_device(device)
        if precision not in ("auto", "fp32", "bf16"):
            raise GenreError(f"unknown precision {precision!r}; use auto, fp32 or bf16")
        self.amp = precision == "bf16" or (precision == "auto" and self.device.type == "cuda")

        self.split = self._make_split(split)
        self.train_a, self.train_b = self._train_rows()
        self.mixed = self._mixed_rows()
        self.samples = self._sample_batch()

        self.rng = RandomStates(config.seed)  # the run's own generators: the caller's are left as they were
        with self.rng:
            self.model = CycleGAN(config.model, config.variant, genre_critic=config.genre_loss > 0).to(self.device)
        g_params = [p for g in self.model.generators() for p in g.parameters()]
        d_params = [p for d in self.model.discriminators() for p in d.parameters()]
        self.opt_g = torch.optim.Adam(g_params, lr=config.lr, betas=(config.beta1, config.beta2))
        self.opt_d = torch.optim.Adam(d_params, lr=config.lr, betas=(config.beta1, config.beta2))
        self.pool_a, self.pool_b = ImagePool(config.pool_size), ImagePool(config.pool_size)
        self.dist = distributed.context(self.device)
        if config.batch_size < self.dist.world:
            raise GenreError(f"--batch-size {config.batch_size} is the global batch: it cannot feed {self.dist.world} "
                             f"processes; use at least {self.dist.world}")
        self.g_view, self.d_view = self._views()
        self.resumed = False
        self.loop = TrainingLoop(self, config.epochs, [
            LearningRate(linear_decay(config.lr, config.epochs, config.decay_after)),
            EveryEpoch(self._throughput),
            CSVLog(self.out / "log.csv"),
            EveryEpoch(lambda row: self.save_samples(self.out / "samples" / f"epoch_{row['epoch']:03d}.png", row["epoch"])),
            EveryEpoch(lambda row: self.export(epochs_done=row["epoch"])),
            *([EpochSnapshot(self.out)] if config.keep_epochs else []),
        ], checkpoint=self.out / "checkpoint.pt", meta={"config": config.to_dict(), "data": self.describe()})

    def _views(self):
        """The model as the generator step and the discriminator step see it: the trained
        networks through their DDP wrappers, the others plain (a plain run: the model itself)."""
        if not self.dist.active:
            return self.model, self.model
        m, lam = self.model, self.cfg.weights
        wrap = lambda net: distributed.wrap(net, self.device)  # noqa: E731
        g = _View(m, G_AB=wrap(m.G_AB), G_BA=wrap(m.G_BA))
        d_loss = {"D_A": "d/a", "D_B": "d/b", "D_A_all": "d/a_all", "D_B_all": "d/b_all"}
        trained = {name: wrap(getattr(m, name)) for name, loss in d_loss.items()
                   if getattr(m, name, None) is not None and lam.get(loss, 1.0) != 0}
        if m.C is not None:
            trained["C"] = wrap(m.C)
        return g, _View(m, **trained)

    # -- data ----------------------------------------------------------------------------

    def _make_split(self, split_path) -> SongSplit:
        if split_path is not None:
            return SongSplit.load(split_path)
        sources = [self.a, self.b] + ([self.mixed_src] if self.mixed_src else [])
        return SongSplit.for_sources([(s.path, s.genre) for s in sources], test_fraction=self.cfg.test_fraction,
                                     seed=self.cfg.seed, valid_fraction=self.cfg.valid_fraction)

    def _rows(self, src: GenreSource, part: str) -> np.ndarray:
        with PhraseCache(src.path) as c:
            return self.split.rows(c, src.genre, part)

    def _train_rows(self) -> tuple[_Rows, _Rows]:
        ra, rb = self._rows(self.a, "train"), self._rows(self.b, "train")
        need = self.cfg.batch_size
        for src, rows in ((self.a, ra), (self.b, rb)):
            if len(rows) < need:
                raise GenreError(
                    f"'{src.genre}' in {src.path} has {len(rows)} training phrases; at least one batch ({need}) is needed"
                )
        ra, rb = balance(ra, rb, seed=self.cfg.seed)  # the larger genre is downsampled, as in the reference
        return _Rows(self.a, ra), _Rows(self.b, rb)

    def _mixed_rows(self) -> list[_Rows] | None:
        if self.cfg.variant == "base":
            return None
        srcs = [self.a, self.b] + ([self.mixed_src] if self.mixed_src else [])
        return [_Rows(s, self._rows(s, "train")) for s in srcs]

    def _sample_batch(self) -> tuple[torch.Tensor, torch.Tensor]:
        n = self.cfg.sample_phrases
        out = []
        for src in (self.a, self.b):
            rows = self._rows(src, "test")
            if len(rows) == 0:
                rows = self._rows(src, "train")
            pick = rows[np.linspace(0, len(rows) - 1, min(n, len(rows))).round().astype(int)]
            with PhraseCache(src.path) as c:
                out.append(torch.from_numpy(c.phrases(src.genre, pick).astype(np.float32)).unsqueeze(1))
        return out[0], out[1]

    def steps_per_epoch(self) -> int:
        return len(self.train_a.rows) // self.cfg.batch_size

    def _mixed_batch(self, epoch: int, step: int) -> torch.Tensor | None:
        if self.mixed is None:
            return None
        rng = np.random.default_rng([self.cfg.seed, epoch, step, 1])
        sizes = np.array([len(r.rows) for r in self.mixed])
        which = rng.choice(len(self.mixed), size=self.cfg.batch_size, p=sizes / sizes.sum())
        parts = []
        for k, r in enumerate(self.mixed):
            n = int((which == k).sum())
            if n:
                parts.append(r.batch(rng.choice(len(r.rows), size=n, replace=n > len(r.rows))))
        return torch.cat(parts)[self.dist.rank::self.dist.world].to(self.device)  # this process's share

    # -- the task of the training loop ---------------------------------------------------

    def state(self) -> dict:
        return {"model": self.model, "opt_g": self.opt_g, "opt_d": self.opt_d}

    def extra_state(self) -> dict:
        return {"pool_a": self.pool_a.state(), "pool_b": self.pool_b.state()}

    def load_extra_state(self, state: dict) -> None:
        self.pool_a.load(state["pool_a"], self.device)
        self.pool_b.load(state["pool_b"], self.device)

    def batches(self, epoch: int) -> list[tuple]:
        """(epoch, step, positions in A, positions in B) of every step; the order depends on (seed, epoch).
        These are global batches: the loop gives each process its share."""
        rng = np.random.default_rng([self.cfg.seed, epoch])
        order_a, order_b = rng.permutation(len(self.train_a.rows)), rng.permutation(len(self.train_b.rows))
        bs = self.cfg.batch_size
        return [(epoch, s, order_a[s * bs:(s + 1) * bs], order_b[s * bs:(s + 1) * bs]) for s in range(self.steps_per_epoch())]

    def train_step(self, batch: tuple) -> dict[str, float]:
        epoch, step, pos_a, pos_b = batch
        real_a = self.train_a.batch(pos_a).to(self.device)
        real_b = self.train_b.batch(pos_b).to(self.device)
        return self.update(real_a, real_b, self._mixed_batch(epoch, step))

    def update(self, real_a: torch.Tensor, real_b: torch.Tensor, mixed: torch.Tensor | None) -> dict[str, float]:
        """One generator update, then one discriminator update; the named losses, sorted by name."""
        m, c, share = self.model, self.cfg, self.dist.share()
        m.train()
        with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.amp):
            for d in m.discriminators():
                d.requires_grad_(False)
            g_losses, fake_a, fake_b = generator_losses(self.g_view, real_a, real_b, c.sigma_d, adv_all=c.weights["g/adv_all"] != 0,
                                                        identity=c.identity > 0, genre=c.genre_loss > 0, content=c.content > 0,
                                                        keep=c.keep > 0, add=c.add > 0, keep_source=c.keep_source,
                                                        genre_ba_scale=c.genre_ba_scale, harmony=c.harmony > 0)
            self.opt_g.zero_grad(set_to_none=True)
            (weighted(g_losses, c.loss_weights) * share).backward()
            self.opt_g.step()
            # discriminators, on fakes from the history pool
            for d in m.discriminators():
                d.requires_grad_(True)
            fa, fb = self.pool_a(fake_a.detach().float()), self.pool_b(fake_b.detach().float())
            d_losses = discriminator_losses(self.d_view, real_a, real_b, fa, fb, mixed, c.sigma_d)
            self.opt_d.zero_grad(set_to_none=True)
            (weighted(d_losses, c.loss_weights) * share).backward()
            self.opt_d.step()
        return {k: float(v.detach()) for k, v in sorted({**g_losses, **d_losses}.items())}

    def _throughput(self, row: dict) -> None:
        seconds = self.loop.position.seconds
        row["phrases_per_s"] = round(self.steps_per_epoch() * self.cfg.batch_size / max(seconds, 1e-9), 2)

    # -- running -------------------------------------------------------------------------

    @property
    def epoch(self) -> int:
        """Epochs finished."""
        return self.loop.position.epoch

    @property
    def step_in_epoch(self) -> int:
        return self.loop.position.step

    def fit(self, progress=None, on_epoch: Callable[[int, dict], None] | None = None) -> dict:
        """Train to ``config.epochs``; returns the last epoch's log row.

        ``progress(stage, step, steps_per_epoch, note)`` (:mod:`shared.progress`) is called after
        every step, ``on_epoch(epoch, row)`` after every epoch. Ctrl-C or SIGTERM stops the run
        between two steps (never inside one), saves a mid-epoch checkpoint and raises
        KeyboardInterrupt.
        """
        if self.dist.main:
            (self.out / "samples").mkdir(parents=True, exist_ok=True)
        if not self.resumed and self.dist.main:
            write_run_config(self.out, kind="cyclegan", train=self.cfg.to_dict(), model=self.cfg.model.to_dict(),
                             data=self.describe(),
                             roll_settings=self.roll_settings, device=str(self.device))
            self.split.save(self.out / "split.json")
        with self.rng:
            history = self.loop.run_reporting(progress, on_epoch)
        return history[-1] if history else {}

    def resume(self) -> None:
        """Continue the run in ``out`` from its checkpoint (same data and settings; only epochs may change)."""
        def check(meta: dict) -> None:
            was = meta.get("data", {})
            for key, src in (("a", self.a), ("b", self.b)):
                w = was.get(key) or {}
                if Path(w.get("cache", "")) != src.path or w.get("genre") != src.genre:
                    raise GenreError(f"{self.out} was trained with {key.upper()} = {w.get('cache')}:{w.get('genre')}, "
                                     f"not {src.path}:{src.genre}; resume it with the same data")
            saved = TrainConfig.from_saved(meta.get("config", {}))
            if dataclasses.replace(saved, epochs=self.cfg.epochs) != self.cfg:
                raise GenreError(f"{self.out} was trained with other settings; resume it with the same ones (only --epochs may change)")

        with self.rng:  # the checkpoint's generators become the run's own
            self.loop.resume(check)
        self.resumed = True

    # -- outputs -------------------------------------------------------------------------

    def describe(self) -> dict:
        return {
            "a": self.a.describe(), "b": self.b.describe(),
            "mixed": self.mixed_src.describe() if self.mixed_src else None,
            "train_phrases_per_genre": int(len(self.train_a.rows)),
            "train_songs": {g: len(p["train"]) for g, p in self.split.genres.items()},
            "test_songs": {g: len(p["test"]) for g, p in self.split.genres.items()},
            **({"valid_songs": {g: len(p.get("valid", [])) for g, p in self.split.genres.items()}}
               if any(p.get("valid") for p in self.split.genres.values()) else {}),
        }

    def save_samples(self, path: Path, epoch: int) -> None:
        """A picture of the fixed test phrases: source, transferred, cycled back, both directions."""
        from shared.plotting import plot_grid

        rows, titles = [], []
        for x, direction, (src, dst) in ((self.samples[0], "ab", (self.a.genre, self.b.genre)),
                                         (self.samples[1], "ba", (self.b.genre, self.a.genre))):
            y, z = (t.cpu() for t in self.model.translate(x.to(self.device), direction, self.thresholds()))
            for i in range(len(x)):
                rows.append([x[i, 0].numpy(), y[i, 0].numpy(), z[i, 0].numpy()])
                titles.append([f"{src} (test)", f"→ {dst}", f"→ {src} again"])
        plot_grid(rows, titles, path, suptitle=f"epoch {epoch}")

    def thresholds(self) -> dict[str, float]:
        """Binarisation thresholds per direction: 0.5, or density-matched (``binarize: density``) on
        up to 512 training phrases of each genre (a fixed, seeded choice)."""
        if self.cfg.binarize == "fixed":
            return {"ab": 0.5, "ba": 0.5}
        from midigenre.cyclegan import density_thresholds

        xs = []
        for k, rows in enumerate((self.train_a, self.train_b)):
            rng = np.random.default_rng([self.cfg.seed, 7, k])
            pick = np.sort(rng.choice(len(rows.rows), size=min(512, len(rows.rows)), replace=False))
            xs.append(rows.batch(pick).to(self.device))
        with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.amp):
            return density_thresholds(self.model, xs[0], xs[1])

    def export(self, epochs_done: int | None = None) -> Path:
        """Write the generators as a self-describing model (model.safetensors + model.json)."""
        from midigenre.models import save_generators

        return save_generators(
            self.out, self.model.G_AB, self.model.G_BA, self.cfg.model,
            genres={"a": self.a.genre, "b": self.b.genre}, roll_settings=self.roll_settings,
            train=self.cfg.to_dict(), data=self.describe(), thresholds=self.thresholds(),
            keep_source=keep_source_directions(self.cfg.keep_source),
            epochs_done=self.epoch if epochs_done is None else epochs_done, metrics={})
