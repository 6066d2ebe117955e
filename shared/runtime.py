"""Where and how a job runs: device choice, seeding, threads and Ctrl-C / ``kill`` handling.

Both paths use these; nothing here imports model code.
"""

from __future__ import annotations

import functools
import random
import signal
import threading

from shared.errors import GenreError

DEVICE_HELP = "auto (CUDA, then Apple MPS, then CPU), cpu, cuda, cuda:N or mps."


def pick_device(name: str = "auto"):
    """``auto``: CUDA, then Apple MPS, then CPU; otherwise the named device, checked. In a
    distributed run (torchrun, ``--nproc``) ``cuda`` is this process's GPU, ``cuda:LOCAL_RANK``."""
    dev = _pick_device(name)
    if dev.type == "cuda" and dev.index is None:
        from shared.distributed import launched, local_rank

        if launched():
            import torch

            if local_rank() >= torch.cuda.device_count():
                raise GenreError(f"process {local_rank()} of this machine has no GPU: torch sees "
                                 f"{torch.cuda.device_count()}; start at most that many processes per machine")
            dev = torch.device("cuda", local_rank())
    return dev


def _pick_device(name: str = "auto"):
    import torch

    name = str(name or "auto")
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
    """Seed Python's, NumPy's and torch's global generators.

    This changes the caller's random state: library code calls it only inside
    :class:`RandomStates` (or a function marked :func:`keeps_random_state`)."""
    import numpy as np
    import torch

    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def _global_states() -> dict:
    import numpy as np
    import torch

    cuda = torch.cuda.is_available() and torch.cuda.is_initialized()  # never start CUDA just to read its generators
    return {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state(),
            "cuda": torch.cuda.get_rng_state_all() if cuda else None}


def _set_global_states(states: dict) -> None:
    import numpy as np
    import torch

    random.setstate(states["python"])
    np.random.set_state(states["numpy"])
    torch.set_rng_state(states["torch"])
    if states["cuda"] is not None and torch.cuda.is_initialized():
        torch.cuda.set_rng_state_all(states["cuda"])


class RandomStates:
    """The global random generators (Python's, NumPy's, torch's CPU and CUDA) of one job, kept
    apart from its caller's, so that a seeded, reproducible job leaves the caller's random draws
    as they were.

    ``with states:`` puts the job's generators in place (the first time: seeded with ``seed``,
    or, with ``seed=None``, copies of the caller's) and on leaving keeps them for the next
    ``with`` and gives the caller's back. A training object that seeds in its constructor and
    draws in ``fit`` enters the same ``RandomStates`` in both::

        self.rng = RandomStates(config.seed)
        with self.rng:
            self.model = build(config)       # seeded weights
        ...
        with self.rng:
            loop.run()                       # dropout, noise: the job's stream, continued

    CUDA generators are kept apart where CUDA is already in use when the job is entered; a job
    that starts CUDA itself leaves the new CUDA generators as the job set them.
    """

    def __init__(self, seed: int | None = None):
        self.seed = seed
        self._job: dict | None = None
        self._callers: list[dict] = []

    def __enter__(self) -> "RandomStates":
        self._callers.append(_global_states())
        if self._job is not None:
            _set_global_states(self._job)
        elif self.seed is not None:
            seed_everything(self.seed)
        return self

    def __exit__(self, *exc) -> None:
        self._job = _global_states()
        _set_global_states(self._callers.pop())


def keeps_random_state(fn):
    """Mark a library function that seeds or draws from the global generators (a training
    entry point seeding for a reproducible run): it runs inside its own :class:`RandomStates`,
    a copy of the caller's, so the caller's generators are as they were after it returns or raises."""

    @functools.wraps(fn)
    def run(*args, **kwargs):
        with RandomStates():
            return fn(*args, **kwargs)

    return run


def set_threads(n: int | None) -> None:
    """CPU threads for torch (None: leave torch's choice)."""
    if n:
        import torch

        torch.set_num_threads(int(n))


class DeferredInterrupt:
    """While active, Ctrl-C and SIGTERM only set ``requested``; the caller stops at a safe point
    (between two training steps), so a checkpoint never holds a half-done step.

    A second Ctrl-C while the first is being handled raises KeyboardInterrupt at once.
    Outside the main thread (some test runners, notebooks' worker threads) it does nothing.
    """

    def __init__(self):
        self.requested = False
        self._old: dict = {}

    def _handler(self, signum, frame):
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True

    def __enter__(self) -> "DeferredInterrupt":
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                self._old[sig] = signal.signal(sig, self._handler)
        return self

    def __exit__(self, *exc) -> None:
        for sig, old in self._old.items():
            signal.signal(sig, old)
        self._old = {}


def sigterm_as_interrupt() -> None:
    """Let ``kill`` (SIGTERM) stop a command the way Ctrl-C does (KeyboardInterrupt), so finished
    work is kept. For command-line entry points; libraries never install signal handlers."""

    def handler(signum, frame):
        raise KeyboardInterrupt

    try:
        signal.signal(signal.SIGTERM, handler)
    except ValueError:  # not in the main thread: keep the default
        pass


#: The signals whose default action ends the process and that a program can catch.
STOP_SIGNALS = ("SIGTERM", "SIGHUP", "SIGQUIT", "SIGUSR1", "SIGUSR2", "SIGALRM", "SIGVTALRM", "SIGPROF", "SIGXCPU")


class SignalInterrupt(KeyboardInterrupt):
    """Raised by :func:`signals_as_interrupt` where a signal arrived; ``signum`` and ``name`` say which."""

    def __init__(self, signum: int):
        super().__init__(signal.Signals(signum).name)
        self.signum = signum
        self.name = signal.Signals(signum).name


class signals_as_interrupt:
    """While inside, every catchable signal that would end the process (``kill``'s SIGTERM, a
    closed terminal's SIGHUP, Ctrl-\\'s SIGQUIT, ``timeout -s …``; :data:`STOP_SIGNALS`) raises
    :class:`SignalInterrupt`, a KeyboardInterrupt, as Ctrl-C does: ``finally`` blocks and the
    atomic writes of :mod:`shared.atomic` then remove their temporary files. Only signals still at
    their default action are taken (a test runner's or profiler's handler stays); all are restored
    on leaving. For command-line entry points; outside the main thread it does nothing."""

    def __enter__(self) -> "signals_as_interrupt":
        self._old: dict = {}
        if threading.current_thread() is not threading.main_thread():
            return self

        def handler(signum, frame):
            raise SignalInterrupt(signum)

        for name in STOP_SIGNALS:
            sig = getattr(signal, name, None)
            if sig is None:
                continue
            try:
                if signal.getsignal(sig) is signal.SIG_DFL:
                    self._old[sig] = signal.signal(sig, handler)
            except (OSError, ValueError):
                pass
        return self

    def __exit__(self, *exc) -> None:
        for sig, old in self._old.items():
            signal.signal(sig, old)
        self._old = {}
