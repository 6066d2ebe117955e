"""One training loop for every model of the toolkit.

A *task* says what one training step is; :class:`TrainingLoop` runs the epochs, writes the
checkpoints and resumes them exactly. The CycleGAN, the MIDI genre classifier, the wav2vec2
head and the end-to-end audio backends are tasks on this loop. A task provides::

    state() -> {name: object}     what a checkpoint keeps: modules, optimisers, schedulers
                                  (anything with state_dict() and load_state_dict())
    batches(epoch) -> Sequence    the epoch's batches, the same for the same (seed, epoch), so
                                  a resumed run can skip to the step where it stopped
    train_step(batch) -> dict     one update (the losses already weighted, see weighted());
                                  named floats for the log. An optional "n" (examples in
                                  the batch) weights the epoch's means.
    validate() -> dict            optional: named values after each epoch (valid_loss, …)
    extra_state() -> dict         optional, with load_extra_state(d): anything else to
                                  checkpoint (e.g. the CycleGAN's image pools)

Everything else is a :class:`Callback`: the CSV log, pictures, the learning-rate schedule,
early stopping and progress reports. Libraries never print; a command line draws its
progress bar from :class:`ReportProgress`.

The checkpoint (``torch.save`` to a temporary file, then rename) is written after every epoch
and when Ctrl-C or SIGTERM stops the run — between two steps, never inside one. It holds the
task's state, the callbacks' state, the position in the epoch with its partial sums and the
random generators of torch (CPU and CUDA), NumPy and Python, so a resumed run ends with the
same weights as a run that was never stopped.

Several processes (``torchrun`` or ``--nproc N``, see :mod:`shared.distributed`): every process
runs the same loop; each takes its share of every global batch (:meth:`Context.shard`), the
epoch's means are summed over the processes, ``validate()`` runs on rank 0 and its values are
sent to the others, callbacks run on rank 0 only unless they set ``every_rank`` (the learning
rate and early stopping do), the checkpoint holds every process's random generators and
``extra_state()`` and is written by rank 0, and a stop request on any process stops all of
them after the same step. A checkpoint resumes on any number of processes.
"""

from __future__ import annotations

import dataclasses
import random
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

from shared.errors import GenreError
from shared.runtime import DeferredInterrupt

CHECKPOINT_FORMAT = 2


def weighted(losses: dict, lambdas: dict[str, float]):
    """``Σ lambdas[name] · losses[name]``; a loss without a weight counts once, weight 0 leaves it out."""
    return sum(lambdas.get(k, 1.0) * v for k, v in losses.items() if lambdas.get(k, 1.0) != 0.0)


def permutation(n: int, seed: int, epoch: int, *, generator: str = "numpy"):
    """The order of ``n`` examples in ``epoch`` (0-based): the (epoch+1)-th permutation drawn
    from a generator seeded once with ``seed``, replayed from the seed so that it depends on
    (seed, epoch) alone. ``generator``: "numpy" (an ndarray) or "torch" (a tensor)."""
    if generator == "torch":
        import torch

        gen = torch.Generator().manual_seed(seed)
        return [torch.randperm(n, generator=gen) for _ in range(epoch + 1)][-1]
    rng = np.random.default_rng(seed)
    return [rng.permutation(n) for _ in range(epoch + 1)][-1]


def linear_decay(lr: float, epochs: int, hold: int) -> Callable[[int], float]:
    """``lr`` for the first ``hold`` epochs, then linearly down to 0 at epoch ``epochs``."""
    return lambda epoch: lr if epoch < hold else lr * max(0.0, (epochs - epoch) / max(1, epochs - hold))


def write_run_config(folder: str | Path, **parts) -> Path:
    """``folder/config.json``: the given parts (settings as plain dicts) and the versions."""
    import torch

    from shared.atomic import write_json
    from shared.version import __version__

    path = Path(folder) / "config.json"
    write_json(path, {**parts, "package_version": __version__, "torch_version": torch.__version__})
    return path


# ----------------------------------------------------------------------------- callbacks


class Callback:
    """Hooks of the loop; override the ones you need. ``row`` is the finished epoch's log row
    (epoch, lr, the means of the step values, validate()'s values, seconds); callbacks run in
    the order given and may add keys to it. Callbacks with a state return it from state_dict().

    In a run of several processes a callback runs on rank 0 only (it writes or reports), unless
    ``every_rank`` is True (it changes the training: learning rate, early stopping)."""

    every_rank = False

    def on_epoch_start(self, loop: TrainingLoop, epoch: int) -> None: ...

    def on_step(self, loop: TrainingLoop, epoch: int, step: int, n_steps: int, values: dict) -> None: ...

    def on_epoch_end(self, loop: TrainingLoop, row: dict) -> None: ...

    def on_train_end(self, loop: TrainingLoop) -> None: ...

    def state_dict(self) -> dict:
        return {}

    def load_state_dict(self, state: dict) -> None: ...


class EveryStep(Callback):
    """``fn(epoch, step, n_steps, values)`` after every step (epoch 0-based, step 1-based)."""

    def __init__(self, fn: Callable[[int, int, int, dict], None]):
        self.fn = fn

    def on_step(self, loop, epoch, step, n_steps, values):
        self.fn(epoch, step, n_steps, values)


class ReportProgress(Callback):
    """Each step as ``progress(f"epoch {e}/{epochs}", step, n_steps, note)``, the protocol of
    :mod:`shared.progress` (the command line draws a bar from it); the note lists the step's values."""

    def __init__(self, progress):
        self.progress = progress

    def on_step(self, loop, epoch, step, n_steps, values):
        note = ", ".join(f"{k} {v:.3f}" for k, v in values.items() if k != "n")
        self.progress(f"epoch {epoch + 1}/{loop.epochs}", step, n_steps, note)


class EveryEpoch(Callback):
    """``fn(row)`` at the end of every epoch (pictures, export, progress lines)."""

    def __init__(self, fn: Callable[[dict], None]):
        self.fn = fn

    def on_epoch_end(self, loop, row):
        self.fn(row)


class EpochSnapshot(Callback):
    """Keep every epoch's exported model: after the export, copy ``files`` of ``folder`` into
    ``folder/epochs/epoch_NNN/`` (a loadable model folder), so the epoch can be chosen later on
    validation songs. Each snapshot is written whole or not at all (a temporary folder, renamed);
    a resumed run that redoes an epoch replaces that epoch's snapshot. Goes after the export."""

    def __init__(self, folder: str | Path, files=("model.json", "model.safetensors", "split.json", "config.json")):
        self.folder, self.files = Path(folder), tuple(files)

    def on_epoch_end(self, loop, row):
        import shutil

        from shared.atomic import atomic_folder

        final = self.folder / "epochs" / f"epoch_{row['epoch']:03d}"
        final.parent.mkdir(parents=True, exist_ok=True)
        with atomic_folder(final, marker="model.json") as tmp:
            for name in self.files:
                if (self.folder / name).is_file():
                    shutil.copy2(self.folder / name, tmp / name)


class CSVLog(Callback):
    """One row per epoch in a CSV file, rewritten atomically; rows that a resumed run redoes are dropped."""

    def __init__(self, path: str | Path):
        self.path = Path(path)

    def on_epoch_end(self, loop, row):
        import csv

        from shared.atomic import atomic_path

        keys, rows = list(row), []
        if self.path.exists():
            with open(self.path, newline="") as fh:
                rows = [r for r in csv.DictReader(fh) if int(r["epoch"]) < row["epoch"]]
            for r in rows:
                keys += [k for k in r if k not in keys]
        with atomic_path(self.path, suffix=".csv") as tmp, open(tmp, "w", newline="") as fh:
            writer = csv.DictWriter(fh, fieldnames=keys)
            writer.writeheader()
            writer.writerows(rows + [row])


class LearningRate(Callback):
    """The learning-rate schedule: ``lr_at(epoch)`` set on every optimiser of the task at each
    epoch start, or a torch ``scheduler`` stepped at each epoch end (keep it in the task's state)."""

    every_rank = True

    def __init__(self, lr_at: Callable[[int], float] | None = None, *, scheduler=None):
        self.lr_at, self.scheduler = lr_at, scheduler

    def on_epoch_start(self, loop, epoch):
        if self.lr_at is not None:
            for opt in loop.optimizers():
                for group in opt.param_groups:
                    group["lr"] = self.lr_at(epoch)

    def on_epoch_end(self, loop, row):
        if self.scheduler is not None:
            self.scheduler.step()


class EarlyStopping(Callback):
    """Stop when ``row[monitor]`` has not improved by ``min_delta`` for ``patience`` epochs
    (``None``: never stop); at the end put back ``module``'s weights of the best epoch."""

    every_rank = True

    def __init__(self, module, monitor: str = "valid_loss", patience: int | None = 5, min_delta: float = 1e-6):
        self.module, self.monitor, self.patience, self.min_delta = module, monitor, patience, min_delta
        self.best, self.best_epoch, self.stale, self.best_state = float("inf"), 0, 0, None

    def on_epoch_end(self, loop, row):
        score = row[self.monitor]
        if score < self.best - self.min_delta:
            self.best, self.best_epoch, self.stale = score, row["epoch"], 0
            self.best_state = {k: v.detach().clone() for k, v in self.module.state_dict().items()}
        else:
            self.stale += 1
            if self.patience is not None and self.stale >= self.patience:
                loop.stop = True

    def on_train_end(self, loop):
        if self.best_state is not None:
            self.module.load_state_dict(self.best_state)

    def state_dict(self):
        return {"best": self.best, "best_epoch": self.best_epoch, "stale": self.stale, "best_state": self.best_state}

    def load_state_dict(self, state):
        self.best, self.best_epoch, self.stale, self.best_state = (
            state["best"], state["best_epoch"], state["stale"], state["best_state"])


# ----------------------------------------------------------------------------- the loop


@dataclass
class Position:
    """Where a run stands; part of the checkpoint."""

    epoch: int = 0  # epochs finished
    step: int = 0  # steps finished in the current epoch
    sums: dict = field(default_factory=dict)  # Σ n · value over the current epoch's steps
    weight: float = 0.0  # Σ n
    seconds: float = 0.0  # time spent in the current epoch's steps
    stopped: bool = False  # early stopping ended the run
    history: list = field(default_factory=list)  # the rows of the finished epochs


class TrainingLoop:
    """Runs ``task`` to ``epochs`` with ``callbacks``; checkpoints to ``checkpoint`` (None: no
    file). ``meta`` (e.g. the settings as a dict) is stored in the checkpoint for a resume to check.

    ``alone``: train in this process only, even inside a distributed run: for a small model that
    a process builds for itself (a judge), which must not be split across the processes or wait
    for the others."""

    def __init__(self, task, epochs: int, callbacks=(), *, checkpoint: str | Path | None = None, meta: dict | None = None,
                 alone: bool = False):
        self.task, self.epochs, self.callbacks = task, epochs, list(callbacks)
        self.checkpoint = Path(checkpoint) if checkpoint else None
        self.meta = meta or {}
        self.alone = alone
        self.position = Position()
        self.stop = False  # a callback sets it to end the run after the current epoch
        self._own_rng = False  # resume() restored this process's own generators

    @property
    def dist(self):
        """This process's :class:`shared.distributed.Context` (one process in a plain run, or ``alone``)."""
        from shared.distributed import Context, context

        return Context() if self.alone else context()

    def optimizers(self) -> list:
        import torch

        return [o for o in self.task.state().values() if isinstance(o, torch.optim.Optimizer)]

    def _call(self, hook: str, *args) -> None:
        main = self.dist.main
        for cb in self.callbacks:
            if main or cb.every_rank:
                getattr(cb, hook)(self, *args)

    def run_reporting(self, progress=None, on_epoch=None) -> list[dict]:
        """:meth:`run` with, for this run only, ``progress(stage, step, steps, note)`` after every
        step (:mod:`shared.progress`) and ``on_epoch(epoch, row)`` after every epoch."""
        extra = ([ReportProgress(progress)] if callable(progress) else []) + (
            [EveryEpoch(lambda row: on_epoch(row["epoch"], row))] if on_epoch else [])
        self.callbacks += extra
        try:
            return self.run()
        finally:
            del self.callbacks[len(self.callbacks) - len(extra):]

    def run(self) -> list[dict]:
        """Train to ``epochs`` (or an early stop); returns the rows of every epoch.

        Ctrl-C or SIGTERM stops the run after the current step, saves the checkpoint and raises
        KeyboardInterrupt."""
        pos, interrupt, dist = self.position, DeferredInterrupt(), self.dist
        between_steps = True
        if dist.main and self.checkpoint is not None and self.checkpoint.exists():  # a resume: what the killed run left half-written
            from shared.atomic import remove_stale_temporaries

            remove_stale_temporaries(Path(self.checkpoint).parent)
        if dist.rank > 0 and not self._own_rng:
            _seed_for_rank(dist.rank)
        try:
            with interrupt:
                for epoch in range(pos.epoch, self.epochs):
                    if pos.stopped:
                        break
                    self._call("on_epoch_start", epoch)
                    opts = self.optimizers()
                    lr = opts[0].param_groups[0]["lr"] if opts else None
                    batches = self.task.batches(epoch)
                    while pos.step < len(batches):
                        t0 = time.perf_counter()
                        between_steps = False
                        local = dist.shard(batches[pos.step])
                        if local is None:  # fewer examples than processes: no process trains on it
                            pos.step += 1
                            between_steps = True
                            continue
                        values = self.task.train_step(local)
                        n = values.get("n", 1)
                        for k, v in values.items():
                            if k != "n":
                                pos.sums[k] = pos.sums.get(k, 0.0) + float(v) * n
                        pos.weight += n
                        pos.step += 1
                        pos.seconds += time.perf_counter() - t0
                        between_steps = True
                        self._call("on_step", epoch, pos.step, len(batches), values)
                        if dist.any(interrupt.requested):  # every process stops after the same step
                            raise KeyboardInterrupt
                    between_steps = False  # an epoch's end is done whole or redone on resume
                    self._end_epoch(epoch, lr)
                    between_steps = True
                    if dist.any(interrupt.requested):
                        raise KeyboardInterrupt
        except KeyboardInterrupt:
            if between_steps:
                self.save()
                dist.barrier()  # nobody leaves before rank 0 has written the checkpoint
            raise
        self._call("on_train_end")
        return pos.history

    def _end_epoch(self, epoch: int, lr: float | None) -> None:
        pos, dist = self.position, self.dist
        keys = sorted(pos.sums)
        *sums, weight = dist.sum([pos.sums[k] for k in keys] + [pos.weight])  # the means over every process's examples
        row: dict[str, Any] = {"epoch": epoch + 1, **({"lr": lr} if lr is not None else {})}
        row.update({k: v / max(weight, 1e-12) for k, v in zip(keys, sums)})
        if hasattr(self.task, "validate"):
            row.update(dist.broadcast(self.task.validate() if dist.main else None))
        row["seconds"] = round(pos.seconds, 2)
        self._call("on_epoch_end", row)
        pos.history.append(row)
        pos.epoch, pos.step, pos.sums, pos.weight, pos.seconds = epoch + 1, 0, {}, 0.0, 0.0
        pos.stopped = dist.broadcast(self.stop)
        self.save()

    # -- checkpoints ---------------------------------------------------------------------

    def save(self) -> Path | None:
        """Write the whole training state to the checkpoint file, atomically. With several
        processes every one calls it (their generators and extra state are gathered) and rank 0
        writes; the file then also holds ``ranks``: each process's ``rng`` and ``extra``."""
        if self.checkpoint is None:
            return None
        import torch

        from shared.atomic import atomic_path

        dist = self.dist
        mine = {"rng": _rng_state(), "extra": self.task.extra_state() if hasattr(self.task, "extra_state") else None}
        ranks = dist.gather(mine)
        if not dist.main:
            return None
        state = {
            "format": CHECKPOINT_FORMAT, "meta": self.meta, "position": dataclasses.asdict(self.position),
            "state": {name: obj.state_dict() for name, obj in self.task.state().items()},
            "extra": mine["extra"],
            "callbacks": {type(cb).__name__: cb.state_dict() for cb in self.callbacks if cb.state_dict()},
            "rng": mine["rng"],
            **({"ranks": ranks} if len(ranks) > 1 else {}),
        }
        with atomic_path(self.checkpoint, suffix=".pt") as tmp:
            torch.save(state, tmp)
        return self.checkpoint

    def resume(self, check: Callable[[dict], None] | None = None) -> Position:
        """Load the checkpoint into the task, the callbacks and the loop; ``check(meta)`` may
        refuse it (raise GenreError) before anything is changed."""
        import torch

        path = self.checkpoint
        if path is None or not path.exists():
            raise GenreError(f"nothing to resume: {path} does not exist")
        try:
            state = torch.load(path, map_location="cpu", weights_only=False)  # RNG states must stay on the CPU
            fmt = state.get("format")
        except Exception as err:  # noqa: BLE001 - any damage gives the same one-line answer
            raise GenreError(f"{path} is damaged and cannot be resumed ({type(err).__name__})") from None
        if fmt != CHECKPOINT_FORMAT:
            raise GenreError(f"{path} was written by another version of the toolkit (checkpoint format {fmt}, "
                             f"this one reads {CHECKPOINT_FORMAT}); start a new run")
        if check is not None:
            check(state["meta"])
        # Written by N processes, resumed by M: rank r takes process r's generators and extra
        # state; a rank the run did not have takes rank 0's extra state and fresh generators.
        rank = self.dist.rank
        ranks = state.get("ranks") or [{"rng": state["rng"], "extra": state["extra"]}]
        own = ranks[rank] if rank < len(ranks) else None
        for name, obj in self.task.state().items():
            obj.load_state_dict(state["state"][name])
        if hasattr(self.task, "load_extra_state"):
            self.task.load_extra_state((own or ranks[0])["extra"])
        for cb in self.callbacks:
            if type(cb).__name__ in state["callbacks"]:
                cb.load_state_dict(state["callbacks"][type(cb).__name__])
        if own is not None:
            rng = own["rng"]
            torch.set_rng_state(rng["torch"])
            np.random.set_state(rng["numpy"])
            random.setstate(rng["python"])
            if rng["cuda"] is not None and torch.cuda.is_available():
                torch.cuda.set_rng_state_all(rng["cuda"])
        else:
            _seed_for_rank(rank, state["position"]["epoch"] * 1_000 + state["position"]["step"])
        self._own_rng = True
        self.position = Position(**state["position"])
        return self.position


def _rng_state() -> dict:
    import torch

    return {"torch": torch.get_rng_state(), "numpy": np.random.get_state(), "python": random.getstate(),
            "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None}


def _seed_for_rank(rank: int, salt: int = 0) -> None:
    """Generators of rank > 0 drawn apart from rank 0's (noise, image pools, dropout): the model
    was built from the same seed on every process, its random draws must not be the same."""
    import torch

    from shared.runtime import seed_everything

    seed_everything((torch.initial_seed() + 1_000_003 * rank + 7_919 * salt) % 2**63)
