"""Training on several processes: PyTorch's DistributedDataParallel, started by ``torchrun``
or by :func:`launch` (``--nproc N`` on the command line).

A process takes part in a distributed run when the launcher's environment variables are set
(``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``, ``MASTER_ADDR``, ``MASTER_PORT``: what ``torchrun``
and :func:`launch` set). :func:`context` then joins the process group once — gloo on the CPU,
NCCL for CUDA tensors and gloo for the small CPU messages (``cpu:gloo,cuda:nccl``) — and
every trainer of :mod:`shared.training` behaves as follows:

* **the global batch is kept**: ``--batch-size B`` means B examples per step whatever the
  number of processes; each of N processes takes every N-th example of each batch (the
  striding of ``torch.utils.data.DistributedSampler`` over the epoch's permutation, which is
  drawn again from (seed, epoch) every epoch: its ``set_epoch``). The same steps therefore see
  the same examples on 1 or N processes, learning rates need no change, and a checkpoint
  resumes on any number of processes. To grow the batch with the processes, pass
  ``--batch-size N×b``. Uneven shards (a last batch of 5 on 2 processes) weight each
  process's mean loss by its share (:meth:`Context.share`), so the averaged gradient is the
  gradient of the global batch's mean.
* the trainable modules are wrapped in ``DistributedDataParallel`` (:func:`wrap`): gradients
  are averaged by PyTorch's bucketed all-reduce during the backward pass;
* rank 0 alone writes logs, pictures, checkpoints and models; the others only compute;
* Ctrl-C or SIGTERM on any process stops every process after the same step, and the
  checkpoint holds every process's random generators.

Single-process runs never import ``torch.distributed``'s collectives: :func:`context` returns
a context of one process.
"""

from __future__ import annotations

import logging
import os
import socket
import sys
from dataclasses import dataclass, field
from typing import Any, Callable

from shared.errors import GenreError

log = logging.getLogger(__name__)

ENV_KEYS = ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT")


def launched() -> bool:
    """True in a process started by torchrun or :func:`launch` (the environment names its rank)."""
    return "RANK" in os.environ and "WORLD_SIZE" in os.environ


def env_rank() -> int:
    """This process's rank from the environment (0 outside a distributed run)."""
    return int(os.environ.get("RANK", 0)) if launched() else 0


def local_rank() -> int:
    """The process's index on its machine (its GPU), 0 outside a distributed run."""
    return int(os.environ.get("LOCAL_RANK", 0)) if launched() else 0


@dataclass
class Context:
    """Where this process stands: ``rank`` of ``world`` processes; ``world == 1`` is a plain run."""

    rank: int = 0
    world: int = 1
    backend: str = ""
    device: Any = None  # where the collectives' tensors live ("cpu" for gloo)
    _share: float = field(default=1.0, repr=False)

    @property
    def active(self) -> bool:
        """A process group is in use (torchrun or --nproc, even with one process)."""
        return bool(self.backend)

    @property
    def main(self) -> bool:
        """Rank 0: the process that writes."""
        return self.rank == 0

    # -- the data ------------------------------------------------------------------------

    def shard(self, batch):
        """This process's part of a global batch: every ``world``-th example from ``rank`` of each
        array or tensor in ``batch`` (plain numbers and strings in a tuple are kept). Sets
        :meth:`share`. None for a batch with fewer examples than processes (an epoch's last
        batch can be one): the step is left out on every process."""
        if self.world == 1:
            self._share = 1.0
            return batch
        n = _length(batch)
        if n is not None and n < self.world:
            return None  # a last batch smaller than the processes: left out (the loop skips the step)
        part = _stride(batch, self.rank, self.world)
        mine = _length(part)
        self._share = 1.0 if n is None or mine is None else mine * self.world / n
        return part

    def share(self) -> float:
        """Factor for this process's mean loss of the current step: (examples here) × world /
        (examples in the global batch). 1 when the batch splits evenly; the DDP average of the
        scaled gradients is then the gradient of the global mean."""
        return self._share

    # -- collectives (no-ops in a plain run) ---------------------------------------------

    def any(self, flag: bool) -> bool:
        """True on every process if ``flag`` is true on one."""
        if not self.active:
            return bool(flag)
        import torch
        import torch.distributed as dist

        t = torch.tensor([1 if flag else 0], dtype=torch.int32, device=self.device)
        dist.all_reduce(t, op=dist.ReduceOp.MAX)
        return bool(t.item())

    def sum(self, values: list[float]) -> list[float]:
        """Element-wise sum of ``values`` over the processes (float64)."""
        if not self.active or not values:
            return list(values)
        import torch
        import torch.distributed as dist

        t = torch.tensor(values, dtype=torch.float64, device=self.device)
        dist.all_reduce(t)
        return t.tolist()

    def gather(self, obj) -> list | None:
        """Every process's ``obj`` on rank 0 (a list by rank); None on the others. Plain run: [obj]."""
        if not self.active:
            return [obj]
        import torch.distributed as dist

        out = [None] * self.world if self.main else None
        dist.gather_object(obj, out, dst=0)
        return out

    def broadcast(self, obj):
        """Rank 0's ``obj`` on every process."""
        if not self.active:
            return obj
        import torch.distributed as dist

        box = [obj]
        dist.broadcast_object_list(box, src=0)
        return box[0]

    def barrier(self) -> None:
        if self.active:
            import torch.distributed as dist

            dist.barrier()


_CONTEXT: Context | None = None


def context(device=None) -> Context:
    """This process's :class:`Context`; the first call in a launched process joins the process
    group (gloo, plus NCCL when ``device`` is a CUDA device). Plain runs get one process."""
    global _CONTEXT
    if _CONTEXT is not None:
        if device is not None and _CONTEXT.active and getattr(device, "type", str(device)).startswith("cuda") \
                and "nccl" not in _CONTEXT.backend:
            raise GenreError("the process group was started for the CPU; a CUDA model needs it started for CUDA")
        return _CONTEXT
    if not launched():
        _CONTEXT = Context()
        return _CONTEXT
    import torch
    import torch.distributed as dist

    rank, world = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
    for key in ("MASTER_ADDR", "MASTER_PORT"):
        if key not in os.environ:
            raise GenreError(f"RANK and WORLD_SIZE are set but {key} is not; start the processes with torchrun "
                             "or --nproc")
    cuda = device is not None and str(device).startswith("cuda")
    if cuda:
        torch.cuda.set_device(local_rank())
    backend = "cpu:gloo,cuda:nccl" if cuda else "gloo"
    if not dist.is_initialized():
        try:
            dist.init_process_group(backend, rank=rank, world_size=world)
        except (RuntimeError, ValueError) as err:
            raise GenreError(f"cannot join the process group as rank {rank} of {world}: {str(err).splitlines()[0][:160]}") from None
    import atexit

    atexit.register(_leave)
    _CONTEXT = Context(rank=rank, world=world, backend=backend, device=torch.device("cpu"))
    log.info("rank %d of %d, backend %s", rank, world, backend)
    return _CONTEXT


def wrap(module, device=None, **options):
    """``module`` in ``DistributedDataParallel`` in a distributed run, ``module`` itself otherwise.

    The wrapper shares the module's parameters: keep the plain module for ``state_dict`` (a
    checkpoint is then the same on 1 or N processes) and run the training forward passes
    through the wrapper. ``broadcast_buffers`` defaults to False: the toolkit's buffers are
    spectral norm's power-iteration vectors (updated from the weights, identical on every
    process), BatchNorm running means (each process's own, rank 0's are saved) or none
    (instance norm keeps no statistics); broadcasting them before every forward would cost a
    message per pass and, with two passes before one backward, overwrite a buffer the first
    pass used.
    """
    ctx = context(device)
    if not ctx.active:
        return module
    import inspect

    from torch.nn.parallel import DistributedDataParallel as DDP

    if "forward_sync_buffers" in inspect.signature(DDP).parameters:  # torch >= 2.12 names it so
        options.setdefault("forward_sync_buffers", False)
    else:
        options.setdefault("broadcast_buffers", False)
    dev = next(module.parameters()).device
    ids = [dev.index if dev.index is not None else local_rank()] if dev.type == "cuda" else None
    return DDP(module, device_ids=ids, **options)


def finish() -> None:
    """Wait for every process, then leave the process group (end of a command)."""
    global _CONTEXT
    if _CONTEXT is not None and _CONTEXT.active:
        import torch.distributed as dist

        try:
            dist.barrier()
        finally:
            dist.destroy_process_group()
    _CONTEXT = None


def _leave() -> None:
    import torch.distributed as dist

    if dist.is_initialized():
        dist.destroy_process_group()


def _length(batch):
    import numpy as np

    if isinstance(batch, tuple):
        lengths = [_length(x) for x in batch if not isinstance(x, (int, float, str, np.integer))]
        return lengths[0] if lengths else None
    try:
        return len(batch)
    except TypeError:
        return None


def _stride(batch, rank: int, world: int):
    import numpy as np

    if isinstance(batch, tuple):
        return tuple(x if isinstance(x, (int, float, str, np.integer)) else _stride(x, rank, world) for x in batch)
    return batch[rank::world]


# ----------------------------------------------------------------------------- launching


def free_port() -> int:
    """A TCP port free on this machine now (for MASTER_PORT)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _child(index: int, fn: Callable, args: tuple, env: dict, errors) -> None:
    os.environ.update({k: str(v) for k, v in env.items()})
    os.environ.update(RANK=str(index), LOCAL_RANK=str(index))
    code = 1
    try:
        fn(*args)
        code = 0
    except SystemExit as err:  # a click command ends with sys.exit(0)
        if isinstance(err.code, int):
            code = err.code if 0 <= err.code <= 255 else 1
        elif err.code is None:
            code = 0
        else:  # sys.exit("message"): print it as the interpreter would
            print(err.code, file=sys.stderr)
            code = 1
    except GenreError as err:
        errors.put((index, str(err)))
    except KeyboardInterrupt:
        code = 130
    except BaseException:
        import traceback

        traceback.print_exc()
    finally:
        _end_child(code)


def _end_child(code: int) -> None:
    """Leave the process group, flush and end the process without the interpreter's teardown:
    there the C++ destructors of the gloo store's threads can abort the process ("terminate
    called without an active exception") after the work is done and saved. Everything a command
    writes is renamed into place before it returns, so nothing is lost by skipping it."""
    try:
        _leave()
    except Exception:  # noqa: BLE001 - the group may be broken by a failed peer; the exit code says so
        pass
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except Exception:  # noqa: BLE001
            pass
    os._exit(code)


def usable_processes(device=None) -> tuple[int, str]:
    """How many training processes this machine runs side by side, and of what: its GPUs for a
    CUDA device (``auto`` where CUDA is present), else the CPU cores this process may use."""
    name = str(device or "auto")
    if name.startswith("cuda") or name == "auto":
        import torch

        if torch.cuda.is_available():
            n = torch.cuda.device_count()
            return n, "GPU" if n == 1 else "GPUs"
    try:
        n = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        n = os.cpu_count() or 1
    return max(1, n), "CPU core" if n == 1 else "CPU cores"


def check_nproc(nproc: int, device=None, *, insist: bool = False, flag: str = "--nproc-anyway") -> None:
    """GenreError when ``nproc`` processes are more than this machine's GPUs (CUDA) or CPU cores:
    they would crowd each other, each holding its own copy of the model and data, and a run
    that fits one process fills the memory. ``insist`` (``flag`` on the command line) lets it be."""
    n, what = usable_processes(device)
    if nproc > n and not insist:
        raise GenreError(f"--nproc {nproc} is more than the {n} {what} of this machine (each process holds its own "
                         f"model and data); use --nproc {n} or fewer, or add {flag} to start {nproc} anyway")


def launch(fn: Callable, nproc: int, *args, threads: int | None = None) -> None:
    """Run ``fn(*args)`` in ``nproc`` new processes on this machine, with the environment torchrun
    gives (RANK, LOCAL_RANK, WORLD_SIZE, MASTER_ADDR, MASTER_PORT): the same code path as
    ``torchrun --standalone --nproc-per-node nproc``. ``fn`` must be importable (a module-level
    function). Ctrl-C and SIGTERM reach every process (each stops after the same step and rank 0
    saves the checkpoint). Returns when all have ended; raises KeyboardInterrupt (interrupted),
    GenreError (a process's one-line error) or SystemExit (a process failed otherwise: its
    traceback is on stderr); when one fails the others are stopped.

    ``threads``: OMP_NUM_THREADS for each process (default: the CPUs / nproc, at least 1).
    """
    import signal
    import time

    import torch.multiprocessing as mp

    if nproc < 1:
        raise GenreError(f"--nproc must be at least 1, not {nproc}")
    if launched():
        raise GenreError("this process is already one of a distributed run; use --nproc or torchrun, not both")
    env = {"WORLD_SIZE": nproc, "LOCAL_WORLD_SIZE": nproc, "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": free_port(),
           "OMP_NUM_THREADS": threads or os.environ.get("OMP_NUM_THREADS") or max(1, (os.cpu_count() or 1) // nproc)}
    spawn = mp.get_context("spawn")
    errors = spawn.SimpleQueue()
    procs = [spawn.Process(target=_child, args=(i, fn, args, env, errors), daemon=False) for i in range(nproc)]
    for p in procs:
        p.start()
    interrupted = False

    def forward(signum, frame):  # SIGTERM to the launcher: pass it on (Ctrl-C reaches the children by itself)
        nonlocal interrupted
        interrupted = True
        for p in procs:
            if p.is_alive():
                os.kill(p.pid, signum)

    old = signal.signal(signal.SIGTERM, forward) if _main_thread() else None
    failed = None
    try:
        while any(p.is_alive() for p in procs):
            try:
                time.sleep(0.05)
            except KeyboardInterrupt:
                interrupted = True  # the children got the Ctrl-C too: wait for their checkpoint
            codes = [p.exitcode for p in procs]
            if failed is None and any(c not in (None, 0, 130) for c in codes):
                failed = next(c for c in codes if c not in (None, 0, 130))
                time.sleep(1.0)  # let the others report the same error before they are stopped
                for p in procs:
                    if p.is_alive():
                        p.terminate()
        for p in procs:
            p.join()
    finally:
        if old is not None:
            signal.signal(signal.SIGTERM, old)
    codes = [p.exitcode for p in procs]
    messages = []
    while not errors.empty():
        messages.append(errors.get())
    if messages:
        raise GenreError(sorted(messages)[0][1])
    if failed is not None:
        raise SystemExit(failed if failed > 0 else 1)
    if interrupted or 130 in codes:
        raise KeyboardInterrupt


def _main_thread() -> bool:
    import threading

    return threading.current_thread() is threading.main_thread()
