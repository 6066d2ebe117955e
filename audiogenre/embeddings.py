"""Encode each clip once into an HDF5 embedding cache, then train the genre head from it.

The seed re-ran its frozen wav2vec2 over every clip in every epoch (~10 hours on FMA-small).
A frozen encoder in eval mode gives each clip one fixed embedding, so this module encodes
every clip once and trains the head on the stored vectors: the same model, 20 epochs for the
price of one (``benchmarks/head_training_speed.py`` measures the ratio).

Cache file (``emb-<backend>-<settings>.h5``, one per backend identity and preprocessing), in the
one cache scheme of :mod:`shared.cache` (root attributes kind, schema_version, settings,
settings_hash, package_version, created; written atomically by :func:`shared.cache.rewrite`)::

    attrs: kind="audio-embeddings", schema_version, settings (JSON: backend, preprocess,
           backend_identity, preprocess_key), settings_hash (of the identity and the key),
           package_version, created; backend_identity, preprocess_key, dim
    keys   (N,)   S40      sha1 of the clip: file content + segment
    emb    (N, D) float32

A cache is only used when the backend identity (a hash of the encoder's weights, depth and
pooling) and the preprocessing key match; anything else is a different file, so a stale
cache is never read. Caches written before the shared scheme (no settings_hash) are still
read, checked by their backend_identity and preprocess_key attributes. Rows are added as new
clips appear; the file is rewritten atomically (temporary file + rename) every minute and at
the end, so Ctrl-C keeps the work done and never leaves a broken cache.
"""

from __future__ import annotations

import hashlib
import logging
import os
import time
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from audiogenre.audio import Preprocess, file_sha1, load_clip
from audiogenre.config import HeadConfig  # noqa: F401  (re-exported)
from shared.errors import GenreError
from shared.runtime import keeps_random_state
from shared.training import permutation

log = logging.getLogger(__name__)

CACHE_KIND = "audio-embeddings"


def item_key(path: str | os.PathLike, start: float = 0.0, duration: float | None = None, _memo: dict = {}) -> str:
    """Content key of a clip: sha1 of the file bytes plus the segment (a renamed file keeps it)."""
    p = str(Path(path).resolve())
    st = os.stat(p)
    memo_key = (p, st.st_size, st.st_mtime_ns)
    if memo_key not in _memo:
        _memo[memo_key] = file_sha1(p)
    seg = "" if (start == 0.0 and duration is None) else f":{start:.6f}:{duration}"
    return hashlib.sha1(f"{_memo[memo_key]}{seg}".encode()).hexdigest()


def cache_settings(backend_info: dict, preprocess: Preprocess) -> tuple[dict, str]:
    """The ``settings`` and ``settings_hash`` of an embedding cache: what made the embeddings, and a
    hash of the two things that change them (the backend identity and the preprocessing key)."""
    identity, key = str(backend_info["identity"]), preprocess.key()
    settings = {"backend": backend_info, "preprocess": preprocess.to_dict(), "backend_identity": identity,
                "preprocess_key": key}
    return settings, hashlib.sha1(f"{CACHE_KIND}:{identity}:{key}".encode()).hexdigest()[:16]


class EmbeddingCache:
    """Embeddings by clip key for one backend identity and one preprocessing."""

    def __init__(self, path: str | os.PathLike, backend_info: dict, preprocess: Preprocess):
        self.path = Path(path)
        self.backend_info = backend_info
        self.preprocess = preprocess
        self.settings, self.settings_hash = cache_settings(backend_info, preprocess)
        self._rows: dict[str, np.ndarray] = {}
        self._dirty = False
        if self.path.exists():
            self._read()

    @staticmethod
    def file_name(backend_info: dict, preprocess: Preprocess) -> str:
        return f"emb-{backend_info['identity'][:12]}-{preprocess.key()[:8]}.h5"

    @classmethod
    def in_folder(cls, folder: str | os.PathLike, backend_info: dict, preprocess: Preprocess) -> EmbeddingCache:
        return cls(Path(folder) / cls.file_name(backend_info, preprocess), backend_info, preprocess)

    def _read(self) -> None:
        """Load the rows when the file was made by this backend and preprocessing; a damaged file is
        rebuilt, a file of another kind is an error, a newer schema asks for an upgrade."""
        import h5py

        from shared.cache import CacheUnreadable, read_header

        try:
            header = read_header(self.path)
        except CacheUnreadable as err:
            log.warning("embedding cache %s cannot be read (%s); it will be rebuilt", self.path, err)
            return
        if header.kind != CACHE_KIND:
            raise GenreError(f"{self.path} is not an audio embedding cache (it holds {header.kind!r} data)")
        try:
            with h5py.File(self.path, "r") as f:
                if header.settings_hash:
                    same = header.settings_hash == self.settings_hash
                else:  # written before the shared cache scheme: the identity attributes say it
                    same = (f.attrs.get("backend_identity") == self.settings["backend_identity"]
                            and f.attrs.get("preprocess_key") == self.settings["preprocess_key"])
                if not same:
                    log.warning("%s was made by another encoder or preprocessing; it is not used", self.path)
                    return
                keys = [k.decode() for k in f["keys"][:]]
                emb = f["emb"][:]
        except (OSError, KeyError, ValueError) as err:
            log.warning("embedding cache %s cannot be read (%s); it will be rebuilt", self.path, err)
            return
        if len(keys) != len(emb):
            log.warning("embedding cache %s has %d keys for %d rows; it will be rebuilt", self.path, len(keys), len(emb))
            return
        self._rows = dict(zip(keys, emb))

    def __contains__(self, key: str) -> bool:
        return key in self._rows

    def __len__(self) -> int:
        return len(self._rows)

    def get(self, keys: Sequence[str]) -> np.ndarray:
        return np.stack([self._rows[k] for k in keys]).astype(np.float32)

    def put(self, key: str, emb: np.ndarray) -> None:
        self._rows[key] = np.asarray(emb, dtype=np.float32)
        self._dirty = True

    def flush(self) -> None:
        """Rewrite the file atomically (:func:`shared.cache.rewrite`) if anything was added."""
        if not self._dirty:
            return
        from shared.cache import rewrite

        keys = sorted(self._rows)
        with rewrite(self.path, kind=CACHE_KIND, settings=self.settings, settings_hash=self.settings_hash) as f:
            f.attrs["backend_identity"] = self.settings["backend_identity"]
            f.attrs["preprocess_key"] = self.settings["preprocess_key"]
            f.attrs["dim"] = int(self.backend_info.get("dim", 0))
            f.create_dataset("keys", data=np.array(keys, dtype="S40"))
            f.create_dataset("emb", data=np.stack([self._rows[k] for k in keys]).astype(np.float32),
                             chunks=True, compression="gzip", compression_opts=1)
        self._dirty = False


def default_cache_folder(dataset_root: str | os.PathLike) -> Path:
    """``ROOT/.genre-cache`` when the data set folder is writable, else ``~/.cache/genre-transfer``."""
    folder = Path(dataset_root) / ".genre-cache"
    try:
        folder.mkdir(parents=True, exist_ok=True)
        probe = folder / ".write-test"
        probe.write_bytes(b"")
        probe.unlink()
        return folder
    except OSError:
        home = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "genre-transfer"
        try:
            home.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise GenreError(f"cannot write an embedding cache in {folder} (read-only data set) nor in {home} "
                             f"({err.strerror or err}); give a writable cache folder") from None
        return home


def encode_items(backend, items: Sequence, preprocess: Preprocess, *, cache: EmbeddingCache | None = None,
                 batch_size: int = 8, device: str = "cpu", progress=None, flush_every: float = 60.0,
                 on_error: str = "skip", rng: np.random.Generator | None = None) -> tuple[np.ndarray, list[int]]:
    """Embeddings ``(n_ok, D)`` of ``items`` (objects with ``path``, ``start``, ``duration``) and
    the indices of the items they belong to (unreadable clips are skipped with a warning when
    ``on_error="skip"``). Clips already in ``cache`` are not encoded again.
    ``progress(stage, done, total)`` (:mod:`shared.progress`) counts the clips encoded now."""
    import torch

    from shared.progress import progress_callback

    report_progress = progress_callback(progress)

    if cache is not None and preprocess.noise > 0:
        raise GenreError("embeddings with random noise cannot be cached; use noise 0 with the cache")
    keys: list[str | None] = []
    for it in items:
        try:
            keys.append(item_key(it.path, it.start, it.duration))
        except OSError as err:
            if on_error != "skip":
                raise GenreError(f"cannot read {it.path}: {err.strerror}") from None
            log.warning("skipped %s: %s", it.path, err.strerror)
            keys.append(None)
    todo = [i for i, k in enumerate(keys) if k is not None and (cache is None or k not in cache)]
    fresh: dict[int, np.ndarray] = {}
    bad: set[int] = {i for i, k in enumerate(keys) if k is None}
    last_flush = time.monotonic()
    if todo:
        report_progress("encoding", 0, len(todo))
    was_training = backend.training
    backend.eval()
    try:
        for b0 in range(0, len(todo), batch_size):
            idx, waves = [], []
            for i in todo[b0:b0 + batch_size]:
                it = items[i]
                try:
                    waves.append(load_clip(it.path, preprocess, start=it.start, duration=it.duration, rng=rng))
                    idx.append(i)
                except GenreError as err:
                    if on_error != "skip":
                        raise
                    log.warning("skipped: %s", err)
                    bad.add(i)
            if waves:
                with torch.inference_mode():
                    emb = backend(torch.from_numpy(np.stack(waves)).to(device)).float().cpu().numpy()
                for i, e in zip(idx, emb):
                    if cache is not None:
                        cache.put(keys[i], e)
                    else:
                        fresh[i] = e
            report_progress("encoding", min(b0 + batch_size, len(todo)), len(todo))
            if cache is not None and time.monotonic() - last_flush > flush_every:
                cache.flush()
                last_flush = time.monotonic()
    finally:
        backend.train(was_training)
        if cache is not None:
            cache.flush()
    ok = [i for i in range(len(items)) if i not in bad]
    if not ok:
        return np.zeros((0, getattr(backend, "dim", 0)), np.float32), []
    rows = [cache.get([keys[i]])[0] if cache is not None else fresh[i] for i in ok]
    return np.stack(rows).astype(np.float32), ok


class _HeadTraining:
    """The head as a task of the shared training loop: AdamW + StepLR on embeddings in memory."""

    def __init__(self, head, x, y, xv, yv, config: HeadConfig, device):
        import torch

        from shared import distributed

        self.head, self.cfg, self.device = head, config, device
        self.dist = distributed.context(device)
        self.forward = distributed.wrap(head, device)  # DDP on several processes, the head itself on one
        self.x = torch.from_numpy(np.asarray(x, np.float32))
        self.y = torch.from_numpy(np.asarray(y, np.int64))
        self.has_valid = xv is not None and len(xv) > 0
        if self.has_valid:
            self.xv = torch.from_numpy(np.asarray(xv, np.float32)).to(device)
            self.yv = torch.from_numpy(np.asarray(yv, np.int64)).to(device)
        self.opt = torch.optim.AdamW(head.parameters(), lr=config.lr, weight_decay=config.weight_decay)
        self.sched = torch.optim.lr_scheduler.StepLR(self.opt, step_size=config.step_size, gamma=config.gamma)

    def state(self) -> dict:
        return {"head": self.head, "opt": self.opt, "sched": self.sched}

    def batches(self, epoch: int) -> list:
        order = permutation(len(self.x), self.cfg.seed, epoch, generator="torch")
        return [order[b0:b0 + self.cfg.batch_size] for b0 in range(0, len(order), self.cfg.batch_size)]

    def train_step(self, sel) -> dict:
        from torch.nn import functional as F

        self.head.train()
        xb, yb = self.x[sel].to(self.device), self.y[sel].to(self.device)
        logits = self.forward(xb)
        loss = F.cross_entropy(logits, yb)
        self.opt.zero_grad(set_to_none=True)
        (loss * self.dist.share()).backward()
        self.opt.step()
        return {"train_loss": float(loss.detach()), "train_acc": int((logits.argmax(1) == yb).sum()) / len(sel), "n": len(sel)}

    def validate(self) -> dict:
        import torch
        from torch.nn import functional as F

        if not self.has_valid:
            return {}
        self.head.eval()
        with torch.no_grad():
            lv = self.head(self.xv)
            return {"valid_loss": float(F.cross_entropy(lv, self.yv)), "valid_acc": float((lv.argmax(1) == self.yv).float().mean())}


@keeps_random_state
def train_head(head, x_train: np.ndarray, y_train: np.ndarray, x_valid: np.ndarray | None, y_valid: np.ndarray | None,
               config: HeadConfig = HeadConfig(), *, device: str = "cpu", log_csv: str | os.PathLike | None = None,
               on_epoch: Callable[[dict], None] | None = None, progress=None) -> tuple[list[dict], int]:
    """AdamW + StepLR on cached embeddings; early stopping on the validation loss (patience).

    The head ends with the weights of its best validation epoch (of its best training loss
    without a validation set, which also never stops early). ``log_csv``: a CSV file for the
    per-epoch rows. Returns the per-epoch rows and the best epoch (1-based).
    """
    import torch

    from shared.runtime import pick_device
    from shared.training import CSVLog, EarlyStopping, EveryEpoch, LearningRate, ReportProgress, TrainingLoop

    dev = pick_device(device)
    torch.manual_seed(config.seed)
    head.to(dev)
    task = _HeadTraining(head, x_train, y_train, x_valid, y_valid, config, dev)
    stopping = EarlyStopping(head, "valid_loss" if task.has_valid else "train_loss",
                             patience=config.patience if task.has_valid else None)
    callbacks = [LearningRate(scheduler=task.sched), stopping] + ([CSVLog(log_csv)] if log_csv else [])
    callbacks += ([ReportProgress(progress)] if callable(progress) else []) + ([EveryEpoch(on_epoch)] if on_epoch else [])
    history = TrainingLoop(task, config.epochs, callbacks).run()
    if len(history) < config.epochs:
        log.info("early stop at epoch %d (best %d)", len(history), stopping.best_epoch)
    head.eval()
    return history, stopping.best_epoch
