"""CycleGAN genre transfer training (Brunner et al. 2018; SN and SA as in Brunner et al. 2019).

One training loop for every variant: ``base`` (D_A, D_B), ``partial`` and ``full`` (extra
discriminators D_A,all and D_B,all that see mixed real data — A∪B, or all three genres — as
real and generated phrases as fake). The step returns its losses as a named dict; the total
for each optimiser is ``Σ lambdas[name] · loss[name]`` with the weights from the config.

A run folder holds::

    config.json          the full configuration, data and versions (written at the start)
    split.json           the song-level train/test split used
    checkpoint.pt        the whole training state, for --resume (written atomically)
    model.safetensors    generators only, for transfer; model.json describes them
    log.csv              one row per epoch: losses, learning rate, time, phrases/s
    samples/epoch_NNN.png   fixed test phrases: source, transferred, cycled back
"""

from __future__ import annotations

import csv
import dataclasses
import json
import logging
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from midigenre.dataset import PhraseCache, PhraseDataset, SongSplit, balance
from midigenre.models import Discriminator, Generator, ModelConfig, preset
from shared.errors import GenreError

log = logging.getLogger(__name__)

VARIANTS = ("base", "partial", "full")
MODEL_KIND = "cyclegan"


@dataclass(frozen=True)
class TrainConfig:
    """Everything a training run depends on; the reference's values are the defaults.

    ``lambdas`` weights each named loss of :meth:`CycleGAN.losses`; the reference's are
    adversarial 1, cycle λ = 10, D_all γ = 1, and 0 for ``g/adv_all`` (the reference's
    generators never see the D_all discriminators).
    """

    preset: str = "small"
    variant: str = "base"
    spectral_norm: bool = False
    self_attention: bool = False
    epochs: int = 30
    decay_after: int = 10  # epochs at the full learning rate, then linear decay to 0
    batch_size: int = 16
    lr: float = 2e-4
    beta1: float = 0.5
    beta2: float = 0.999
    sigma_d: float = 1.0  # σ_D of the half-normal noise |N(0, σ_D)| on every D input
    pool_size: int = 50
    lambdas: dict = field(default_factory=lambda: {
        "g/adv_ab": 1.0, "g/adv_ba": 1.0, "g/cycle": 10.0, "g/adv_all": 0.0,
        "d/a": 1.0, "d/b": 1.0, "d/a_all": 1.0, "d/b_all": 1.0,
    })
    seed: int = 0
    test_fraction: float = 0.1
    sample_phrases: int = 4  # test phrases per direction drawn in the per-epoch PNG

    def __post_init__(self):
        if self.variant not in VARIANTS:
            raise GenreError(f"unknown variant {self.variant!r}; choose one of {', '.join(VARIANTS)}")
        preset(self.preset)  # validates the name
        if self.epochs < 1 or self.batch_size < 1:
            raise GenreError("epochs and batch_size must be at least 1")
        unknown = set(self.lambdas) - set(TrainConfig.__dataclass_fields__["lambdas"].default_factory())
        if unknown:
            raise GenreError(f"unknown loss names in lambdas: {sorted(unknown)}")

    @property
    def model(self) -> ModelConfig:
        return preset(self.preset, spectral_norm=self.spectral_norm, self_attention=self.self_attention)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "TrainConfig":
        known = {f.name: f for f in dataclasses.fields(cls)}
        unknown = set(d) - set(known)
        if unknown:
            raise GenreError(f"unknown training settings: {sorted(unknown)} (known: {', '.join(sorted(known))})")
        d = dict(d)
        for name, value in d.items():  # YAML reads "2e-4" as a string: convert, or say what is wrong
            kind = {"int": int, "float": float, "bool": bool, "str": str}.get(str(known[name].type))
            if kind is None:
                continue
            if kind is bool and not isinstance(value, bool):
                raise GenreError(f"setting {name} must be true or false, not {value!r}")
            try:
                d[name] = kind(value)
            except (TypeError, ValueError):
                raise GenreError(f"setting {name} must be a {kind.__name__}, not {value!r}") from None
        if "lambdas" in d:
            if not isinstance(d["lambdas"], dict):
                raise GenreError("lambdas must be a mapping of loss names to weights")
            d["lambdas"] = {**cls().lambdas, **{k: float(v) for k, v in d["lambdas"].items()}}
        return cls(**d)


def load_config_file(path: str | os.PathLike) -> dict:
    """Settings from a YAML or JSON file (a mapping of TrainConfig fields)."""
    import yaml

    try:
        data = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise GenreError(f"no such config file: {path}") from None
    except yaml.YAMLError as err:
        raise GenreError(f"{path} is not valid YAML: {str(err).splitlines()[0]}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise GenreError(f"{path} must hold a mapping of settings, e.g. 'epochs: 20'")
    return data


class ImagePool:
    """History of generated phrases (Shrivastava et al.): half the time D sees an older fake.

    Randomness comes from torch's generator, so a checkpoint that saves torch's RNG state
    resumes the pool exactly.
    """

    def __init__(self, size: int):
        self.size = size
        self.images: list[torch.Tensor] = []

    def __call__(self, batch: torch.Tensor) -> torch.Tensor:
        if self.size <= 0:
            return batch
        out = []
        for img in batch.detach():
            img = img.unsqueeze(0)
            if len(self.images) < self.size:
                self.images.append(img.clone())
                out.append(img)
            elif torch.rand(1).item() < 0.5:
                k = int(torch.randint(0, self.size, (1,)).item())
                out.append(self.images[k].clone())
                self.images[k] = img.clone()
            else:
                out.append(img)
        return torch.cat(out)

    def state(self) -> torch.Tensor | None:
        return torch.cat(self.images).cpu() if self.images else None

    def load(self, images: torch.Tensor | None, device) -> None:
        self.images = [] if images is None else [x.unsqueeze(0).to(device) for x in images]


class CycleGAN(nn.Module):
    """Two generators and two (base) or four (partial/full) discriminators."""

    def __init__(self, model: ModelConfig, variant: str = "base"):
        super().__init__()
        self.config, self.variant = model, variant
        self.G_AB, self.G_BA = Generator(model), Generator(model)
        self.D_A, self.D_B = Discriminator(model), Discriminator(model)
        if variant != "base":
            self.D_A_all, self.D_B_all = Discriminator(model), Discriminator(model)

    def generators(self) -> list[nn.Module]:
        return [self.G_AB, self.G_BA]

    def discriminators(self) -> list[nn.Module]:
        ds = [self.D_A, self.D_B]
        return ds + ([self.D_A_all, self.D_B_all] if self.variant != "base" else [])


def _noisy(x: torch.Tensor, sigma: float) -> torch.Tensor:
    # half-normal |N(0, σ_D)| on discriminator inputs (Brunner et al. 2018)
    return x + torch.randn_like(x).abs_() * sigma if sigma > 0 else x


def _lsgan(pred: torch.Tensor, target: float) -> torch.Tensor:
    return F.mse_loss(pred, torch.full_like(pred, target))


def generator_losses(m: CycleGAN, real_a, real_b, sigma_d: float, adv_all: bool = False):
    """Named generator losses and the fakes they made: ``(losses, fake_a, fake_b)``.

    ``adv_all`` adds ``g/adv_all`` (fooling D_A,all and D_B,all); the reference leaves it out.
    """
    fake_b = m.G_AB(real_a)
    fake_a = m.G_BA(real_b)
    cyc_a = m.G_BA(fake_b)
    cyc_b = m.G_AB(fake_a)
    losses = {
        "g/adv_ab": _lsgan(m.D_B(_noisy(fake_b, sigma_d)), 1.0),
        "g/adv_ba": _lsgan(m.D_A(_noisy(fake_a, sigma_d)), 1.0),
        "g/cycle": F.l1_loss(cyc_a, real_a) + F.l1_loss(cyc_b, real_b),
    }
    if adv_all and m.variant != "base":
        losses["g/adv_all"] = _lsgan(m.D_A_all(_noisy(fake_a, sigma_d)), 1.0) + _lsgan(m.D_B_all(_noisy(fake_b, sigma_d)), 1.0)
    return losses, fake_a, fake_b


def discriminator_losses(m: CycleGAN, real_a, real_b, fake_a, fake_b, mixed, sigma_d: float):
    """Named discriminator losses; each is (real + fake) / 2 as in the reference."""
    def pair(d, real, fake):
        return (_lsgan(d(_noisy(real, sigma_d)), 1.0) + _lsgan(d(_noisy(fake, sigma_d)), 0.0)) / 2

    losses = {"d/a": pair(m.D_A, real_a, fake_a), "d/b": pair(m.D_B, real_b, fake_b)}
    if m.variant != "base":
        losses["d/a_all"] = pair(m.D_A_all, mixed, fake_a)
        losses["d/b_all"] = pair(m.D_B_all, mixed, fake_b)
    return losses


def weighted(losses: dict[str, torch.Tensor], lambdas: dict[str, float]) -> torch.Tensor:
    return sum(lambdas.get(k, 1.0) * v for k, v in losses.items() if lambdas.get(k, 1.0) != 0.0)


class _DeferredInterrupt:
    """While active, Ctrl-C and SIGTERM only set ``requested``: the loop stops between steps,
    so a checkpoint never holds a half-done step (G updated, D not)."""

    def __init__(self):
        self.requested = False
        self._old: dict = {}

    def _handler(self, signum, frame):
        if self.requested:  # a second Ctrl-C while saving: give up at once
            raise KeyboardInterrupt
        self.requested = True

    def __enter__(self):
        import signal
        import threading

        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                self._old[sig] = signal.signal(sig, self._handler)
        return self

    def __exit__(self, *exc):
        import signal

        for sig, old in self._old.items():
            signal.signal(sig, old)
        self._old = {}


def pick_device(name: str = "auto") -> torch.device:
    """``auto``: CUDA, then Apple MPS, then CPU."""
    if name != "auto":
        try:
            dev = torch.device(name)
        except RuntimeError:
            raise GenreError(f"unknown device {name!r}; use auto, cpu, cuda, cuda:1 or mps") from None
        if dev.type == "cuda" and not torch.cuda.is_available():
            raise GenreError("CUDA was asked for but torch sees no CUDA device")
        if dev.type == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
            raise GenreError("MPS was asked for but this torch has no Apple GPU support here")
        return dev
    if torch.cuda.is_available():
        return torch.device("cuda")
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def seed_everything(seed: int) -> None:
    import random

    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


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

    def describe(self) -> dict:
        return {"cache": str(self.path), "genre": self.genre}


class _Rows:
    """Phrase rows of one source with a lazy dataset to fetch them in batches."""

    def __init__(self, src: GenreSource, rows: np.ndarray):
        self.src, self.rows = src, rows
        self.ds = PhraseDataset(src.path, src.genre, rows=rows)

    def batch(self, positions: np.ndarray) -> torch.Tensor:
        return torch.stack(self.ds.__getitems__(positions))


def _check_settings(sources: list[GenreSource]) -> dict:
    hashes = {}
    for s in sources:
        with PhraseCache(s.path) as c:
            hashes[str(s.path)] = (c.header.settings_hash, c.header.settings)
    first = next(iter(hashes.values()))
    for path, (h, settings) in hashes.items():
        if h != first[0]:
            diff = [k for k in settings if settings.get(k) != first[1].get(k)]
            raise GenreError(
                f"{sources[0].path} and {path} were prepared with different settings ({', '.join(diff)}); "
                "prepare both with the same options"
            )
    return first[1]


# ----------------------------------------------------------------------------- trainer


class Trainer:
    """Trains a CycleGAN between genre ``a`` and genre ``b`` into ``out``.

    Parameters
    ----------
    a, b : the two genres.
    out : run folder (created).
    config : training configuration.
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
        sources = [a, b] + ([mixed] if mixed else [])
        self.roll_settings = _check_settings(sources)
        self.device = pick_device(device)
        if precision not in ("auto", "fp32", "bf16"):
            raise GenreError(f"unknown precision {precision!r}; use auto, fp32 or bf16")
        self.amp = precision == "bf16" or (precision == "auto" and self.device.type == "cuda")

        self.split = self._make_split(split)
        self.train_a, self.train_b = self._train_rows()
        self.mixed = self._mixed_rows()
        self.samples = self._sample_batch()

        seed_everything(config.seed)
        self.model = CycleGAN(config.model, config.variant).to(self.device)
        g_params = [p for g in self.model.generators() for p in g.parameters()]
        d_params = [p for d in self.model.discriminators() for p in d.parameters()]
        self.opt_g = torch.optim.Adam(g_params, lr=config.lr, betas=(config.beta1, config.beta2))
        self.opt_d = torch.optim.Adam(d_params, lr=config.lr, betas=(config.beta1, config.beta2))
        self.pool_a, self.pool_b = ImagePool(config.pool_size), ImagePool(config.pool_size)
        self.epoch, self.step_in_epoch = 0, 0
        self.sums: dict[str, float] = {}
        self.elapsed = 0.0
        self.resumed = False

    # -- data ----------------------------------------------------------------------------

    def _make_split(self, split_path) -> SongSplit:
        if split_path is not None:
            return SongSplit.load(split_path)
        sources = [self.a, self.b] + ([self.mixed_src] if self.mixed_src else [])
        return SongSplit.for_sources([(s.path, s.genre) for s in sources],
                                     test_fraction=self.cfg.test_fraction, seed=self.cfg.seed)

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

    # -- schedule ------------------------------------------------------------------------

    def lr_at(self, epoch: int) -> float:
        """Constant for ``decay_after`` epochs, then linear decay to 0 at the last epoch."""
        c = self.cfg
        if epoch < c.decay_after:
            return c.lr
        return c.lr * max(0.0, (c.epochs - epoch) / max(1, c.epochs - c.decay_after))

    # -- one step ------------------------------------------------------------------------

    def train_step(self, real_a: torch.Tensor, real_b: torch.Tensor, mixed: torch.Tensor | None) -> dict[str, float]:
        m, c = self.model, self.cfg
        m.train()
        with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.amp):
            # generators
            for d in m.discriminators():
                d.requires_grad_(False)
            g_losses, fake_a, fake_b = generator_losses(m, real_a, real_b, c.sigma_d, adv_all=c.lambdas.get("g/adv_all", 0) != 0)
            self.opt_g.zero_grad(set_to_none=True)
            weighted(g_losses, c.lambdas).backward()
            self.opt_g.step()
            # discriminators, on fakes from the history pool
            for d in m.discriminators():
                d.requires_grad_(True)
            fa, fb = self.pool_a(fake_a.detach().float()), self.pool_b(fake_b.detach().float())
            d_losses = discriminator_losses(m, real_a, real_b, fa, fb, mixed, c.sigma_d)
            self.opt_d.zero_grad(set_to_none=True)
            weighted(d_losses, c.lambdas).backward()
            self.opt_d.step()
        return {k: float(v.detach()) for k, v in {**g_losses, **d_losses}.items()}

    def _epoch_order(self, epoch: int) -> tuple[np.ndarray, np.ndarray]:
        rng = np.random.default_rng([self.cfg.seed, epoch])
        return rng.permutation(len(self.train_a.rows)), rng.permutation(len(self.train_b.rows))

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
        return torch.cat(parts).to(self.device)

    # -- loop ----------------------------------------------------------------------------

    def fit(self, on_step: Callable[[int, int, int, dict], None] | None = None,
            on_epoch: Callable[[int, dict], None] | None = None) -> dict:
        """Train to ``config.epochs``; returns the last epoch's log row.

        ``on_step(epoch, step, steps_per_epoch, losses)`` and ``on_epoch(epoch, row)`` report
        progress. Ctrl-C or SIGTERM stops the run between two steps (never inside one), saves a
        mid-epoch checkpoint and raises KeyboardInterrupt.
        """
        self.out.mkdir(parents=True, exist_ok=True)
        (self.out / "samples").mkdir(exist_ok=True)
        if not self.resumed:
            self._write_config()
        n_steps = self.steps_per_epoch()
        row = {}
        stop = _DeferredInterrupt()
        try:
            stop.__enter__()
            while self.epoch < self.cfg.epochs:
                epoch = self.epoch
                lr = self.lr_at(epoch)
                for opt in (self.opt_g, self.opt_d):
                    for group in opt.param_groups:
                        group["lr"] = lr
                order_a, order_b = self._epoch_order(epoch)
                t0 = time.perf_counter()
                while self.step_in_epoch < n_steps:
                    s = self.step_in_epoch
                    sl = slice(s * self.cfg.batch_size, (s + 1) * self.cfg.batch_size)
                    real_a = self.train_a.batch(order_a[sl]).to(self.device)
                    real_b = self.train_b.batch(order_b[sl]).to(self.device)
                    losses = self.train_step(real_a, real_b, self._mixed_batch(epoch, s))
                    for k, v in losses.items():
                        self.sums[k] = self.sums.get(k, 0.0) + v
                    self.step_in_epoch += 1
                    self.elapsed += time.perf_counter() - t0
                    t0 = time.perf_counter()
                    if on_step:
                        on_step(epoch, self.step_in_epoch, n_steps, losses)
                    if stop.requested:
                        raise KeyboardInterrupt
                row = {"epoch": epoch + 1, "lr": lr, **{k: v / max(1, n_steps) for k, v in sorted(self.sums.items())},
                       "seconds": round(self.elapsed, 2),
                       "phrases_per_s": round(n_steps * self.cfg.batch_size / max(self.elapsed, 1e-9), 2)}
                self._append_log(row)
                self.save_samples(self.out / "samples" / f"epoch_{epoch + 1:03d}.png", epoch + 1)
                self.epoch, self.step_in_epoch, self.sums, self.elapsed = epoch + 1, 0, {}, 0.0
                self.save_checkpoint()
                self.export()
                if on_epoch:
                    on_epoch(epoch + 1, row)
        except KeyboardInterrupt:
            self.save_checkpoint()
            raise
        finally:
            stop.__exit__()
        return row

    # -- outputs -------------------------------------------------------------------------

    def describe(self) -> dict:
        return {
            "a": self.a.describe(), "b": self.b.describe(),
            "mixed": self.mixed_src.describe() if self.mixed_src else None,
            "train_phrases_per_genre": int(len(self.train_a.rows)),
            "train_songs": {g: len(p["train"]) for g, p in self.split.genres.items()},
            "test_songs": {g: len(p["test"]) for g, p in self.split.genres.items()},
        }

    def _write_config(self) -> None:
        from shared.atomic import write_json
        from shared.version import __version__

        write_json(self.out / "config.json", {
            "train": self.cfg.to_dict(), "model": self.cfg.model.to_dict(), "data": self.describe(),
            "roll_settings": self.roll_settings, "device": str(self.device),
            "package_version": __version__, "torch_version": torch.__version__,
        })
        self.split.save(self.out / "split.json")

    def _append_log(self, row: dict) -> None:
        path = self.out / "log.csv"
        keys = list(row)
        rows = []
        if path.exists():
            with open(path, newline="") as fh:
                rows = [r for r in csv.DictReader(fh) if int(r["epoch"]) < row["epoch"]]  # drop rows a resume redoes
                for r in rows:
                    keys += [k for k in r if k not in keys]
        rows.append(row)
        from shared.atomic import atomic_path

        with atomic_path(path, suffix=".csv") as tmp, open(tmp, "w", newline="") as fh:
            w = csv.DictWriter(fh, fieldnames=keys)
            w.writeheader()
            w.writerows(rows)

    @torch.no_grad()
    def translate(self, x: torch.Tensor, direction: str) -> tuple[torch.Tensor, torch.Tensor]:
        """(transferred, cycled back) for a batch; ``direction`` is "ab" or "ba"."""
        m = self.model
        m.eval()
        g1, g2 = (m.G_AB, m.G_BA) if direction == "ab" else (m.G_BA, m.G_AB)
        x = x.to(self.device)
        y = (g1(x) > 0.5).float()
        return y.cpu(), (g2(y) > 0.5).float().cpu()

    def save_samples(self, path: Path, epoch: int) -> None:
        from shared.plotting import plot_grid

        rows, titles = [], []
        for x, direction, (src, dst) in ((self.samples[0], "ab", (self.a.genre, self.b.genre)),
                                         (self.samples[1], "ba", (self.b.genre, self.a.genre))):
            y, z = self.translate(x, direction)
            for i in range(len(x)):
                rows.append([x[i, 0].numpy(), y[i, 0].numpy(), z[i, 0].numpy()])
                titles.append([f"{src} (test)", f"→ {dst}", f"→ {src} again"])
        plot_grid(rows, titles, path, suptitle=f"epoch {epoch}")

    def export(self) -> Path:
        """Write the generators as a self-describing model (model.safetensors + model.json)."""
        from midigenre.models import save_generators

        return save_generators(self.out, self.model.G_AB, self.model.G_BA, self.cfg.model,
                               genres={"a": self.a.genre, "b": self.b.genre}, roll_settings=self.roll_settings,
                               train=self.cfg.to_dict(), data=self.describe(), epochs_done=self.epoch, metrics={})

    def save_checkpoint(self) -> Path:
        """The whole training state (models, optimisers, pools, RNG, position), atomically."""
        from shared.atomic import atomic_path

        state = {
            "format": 1, "config": self.cfg.to_dict(), "epoch": self.epoch, "step_in_epoch": self.step_in_epoch,
            "sums": self.sums, "elapsed": self.elapsed, "model": self.model.state_dict(),
            "opt_g": self.opt_g.state_dict(), "opt_d": self.opt_d.state_dict(),
            "pool_a": self.pool_a.state(), "pool_b": self.pool_b.state(),
            "torch_rng": torch.get_rng_state(),
            "cuda_rng": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None,
        }
        path = self.out / "checkpoint.pt"
        with atomic_path(path, suffix=".pt") as tmp:
            torch.save(state, tmp)
        return path

    def load_checkpoint(self) -> None:
        path = self.out / "checkpoint.pt"
        if not path.exists():
            raise GenreError(f"nothing to resume: {path} does not exist")
        try:
            state = torch.load(path, map_location="cpu", weights_only=False)  # RNG states must stay on the CPU
            saved = TrainConfig.from_dict(state["config"])
        except GenreError:
            raise
        except Exception as err:
            raise GenreError(f"{path} is damaged and cannot be resumed ({type(err).__name__})") from None
        saved_data = run_config(self.out).get("data", {})
        for key, src in (("a", self.a), ("b", self.b)):
            was = saved_data.get(key) or {}
            if was and (Path(was.get("cache", "")) != src.path or was.get("genre") != src.genre):
                raise GenreError(f"{self.out} was trained with {key.upper()} = {was.get('cache')}:{was.get('genre')}, "
                                 f"not {src.path}:{src.genre}; resume it with the same data")
        if dataclasses.replace(saved, epochs=self.cfg.epochs) != self.cfg:
            raise GenreError(f"{self.out} was trained with other settings; resume it with the same ones (only --epochs may change)")
        self.model.load_state_dict(state["model"])
        self.opt_g.load_state_dict(state["opt_g"])
        self.opt_d.load_state_dict(state["opt_d"])
        self.pool_a.load(state["pool_a"], self.device)
        self.pool_b.load(state["pool_b"], self.device)
        torch.set_rng_state(state["torch_rng"])
        if state.get("cuda_rng") is not None and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(state["cuda_rng"])
        self.epoch, self.step_in_epoch = state["epoch"], state["step_in_epoch"]
        self.sums, self.elapsed = state["sums"], state["elapsed"]
        self.resumed = True


def run_config(run: str | os.PathLike) -> dict:
    """The config.json of a run folder."""
    path = Path(run) / "config.json"
    if not path.exists():
        raise GenreError(f"{run} is not a training run (no config.json)")
    return json.loads(path.read_text())
