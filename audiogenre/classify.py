"""Train and evaluate an audio genre classifier on a data set (``genre audio train|evaluate``).

Training: open the data set (folder / FMA-small / GTZAN), take its train/valid/test split
(the official one, or a seeded split by song), encode every clip once into the embedding
cache, train the head from the cache with early stopping on the validation split, then
report on the **test** split (the seed reported its validation split as "test"). The
trainable backends train end to end on segments held in memory, with the settings of
:class:`BackendTrainConfig`. Both run on the shared training loop (``shared/training.py``).
"""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from audiogenre.audio import Preprocess
from audiogenre.config import PAPER_SETTINGS, BackendTrainConfig  # noqa: F401  (re-exported)
from audiogenre.embeddings import EmbeddingCache, HeadConfig, default_cache_folder, encode_items, train_head
from shared.errors import GenreError
from shared.runtime import keeps_random_state
from shared.training import (CSVLog, EarlyStopping, EveryEpoch, ReportProgress, TrainingLoop, permutation,
                             write_run_config)

log = logging.getLogger(__name__)


def _labels(items, genres: Sequence[str]) -> np.ndarray:
    return np.array([genres.index(it.genre) for it in items], dtype=np.int64)


def embed_split(backend, items, preprocess: Preprocess, cache_folder: Path | None, *, batch_size: int = 8,
                progress=None, rng: np.random.Generator | None = None) -> tuple[np.ndarray, list]:
    """Embeddings of ``items`` (through the cache when ``cache_folder`` is given and noise is 0);
    ``progress`` as in :func:`audiogenre.embeddings.encode_items`."""
    cache = None
    if cache_folder is not None and preprocess.noise == 0:
        cache = EmbeddingCache.in_folder(cache_folder, backend.describe(), preprocess)
    emb, ok = encode_items(backend, items, preprocess, cache=cache, batch_size=batch_size, progress=progress, rng=rng)
    return emb, [items[i] for i in ok]


def plot_history(history: list[dict], path: str | os.PathLike, title: str = "") -> Path:
    from shared.plotting import new_figure, save_png

    ep = [h["epoch"] for h in history]
    fig, (a1, a2) = new_figure(1, 2, figsize=(9, 3.2))
    a1.plot(ep, [h["train_loss"] for h in history], label="train")
    a2.plot(ep, [h["train_acc"] for h in history], label="train")
    if "valid_loss" in history[0]:
        a1.plot(ep, [h["valid_loss"] for h in history], label="valid")
        a2.plot(ep, [h["valid_acc"] for h in history], label="valid")
    a1.set_title("cross-entropy")
    a2.set_title("accuracy")
    for a in (a1, a2):
        a.set_xlabel("epoch")
        a.legend()
        a.grid(alpha=0.3)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return save_png(fig, path)


@keeps_random_state
def train_audio_classifier(dataset, out: str | os.PathLike, *, encoder: str, layers: int | None = 7,
                           pooling: str = "mean+max", preprocess: Preprocess = Preprocess(),
                           config: HeadConfig = HeadConfig(), cache_folder: str | os.PathLike | None = None,
                           batch_size: int = 8, device: str = "auto", progress=None,
                           echo: Callable[[str], None] | None = None,
                           on_epoch: Callable[[dict], None] | None = None) -> dict:
    """Train a wav2vec2 + head classifier on ``dataset`` (an :class:`AudioDataset`); returns the test report.

    ``echo(line)`` receives a description of the data and the encoder, ``on_epoch(row)`` and
    ``progress(stage, done, total, note)`` (:mod:`shared.progress`) the clips encoded and the
    training steps.
    """
    import torch

    from audiogenre.models import AudioClassifier, GenreHead, Wav2Vec2Backend
    from shared.atomic import write_json
    from shared.classification import classification_report, plot_confusion
    from shared.runtime import pick_device

    out = Path(out)
    dev = pick_device(device)
    genres = list(dataset.genres)
    splits = dataset.splits(seed=config.seed)
    for name in ("train", "test"):
        if not splits.get(name):
            raise GenreError(f"the {name} split of {dataset.root} is empty; add clips or songs")
    missing = sorted({g for g in genres} - {it.genre for it in splits["train"]})
    if missing:
        raise GenreError(f"no training clips for {', '.join(missing)}; every genre needs clips in the train split")
    backend = Wav2Vec2Backend.from_pretrained(encoder, layers=layers, pooling=pooling).to(dev)
    folder = Path(cache_folder) if cache_folder else default_cache_folder(dataset.root)
    if echo:
        echo(f"{dataset.kind} data set {dataset.root}: " + ", ".join(f"{k} {len(v)}" for k, v in splits.items())
             + f" clips; encoder {encoder} ({backend.layers} layers, dim {backend.dim}); cache {folder}; device {dev}")
    from shared import distributed

    ctx = distributed.context(dev)
    torch.manual_seed(config.seed)
    data = {}
    for turn in ((0, 1) if ctx.active else (None,)):  # several processes: rank 0 fills the cache, then the others read it
        if turn == 1:
            ctx.barrier()
        if turn is not None and (turn == 0) != ctx.main:
            continue
        for name in ("train", "valid", "test"):
            items = splits.get(name) or []
            if items:
                emb, kept = embed_split(backend, items, preprocess, folder, batch_size=batch_size, progress=progress)
                data[name] = (emb, _labels(kept, genres), kept)
    for name in ("train", "test"):
        if name not in data or len(data[name][0]) == 0:
            raise GenreError(f"no readable clips in the {name} split of {dataset.root}")
    head = GenreHead(backend.dim, len(genres), hidden=config.hidden, dropout=config.dropout)
    counts = {k: len(v[2]) for k, v in data.items()}
    if ctx.main:
        out.mkdir(parents=True, exist_ok=True)
        write_run_config(out, train=config.to_dict(), backend={"type": "wav2vec2", "encoder": encoder, "layers": layers,
                                                           "pooling": pooling},
                     preprocess=preprocess.to_dict(), data={"dataset": str(dataset.root), "kind": dataset.kind,
                                                           "clips": counts}, device=str(dev))
    xv, yv = (data["valid"][0], data["valid"][1]) if "valid" in data else (None, None)
    history, best = train_head(head, data["train"][0], data["train"][1], xv, yv, config, device=str(dev),
                               log_csv=out / "log.csv", on_epoch=on_epoch, progress=progress)
    if not ctx.main:
        return {}
    model = AudioClassifier(backend, head, genres).eval()
    with torch.no_grad():
        pred = head(torch.from_numpy(data["test"][0]).to(dev)).argmax(1).cpu().numpy()
    report = classification_report(data["test"][1], pred, genres)
    report.update({"split": "test", "n": int(len(pred)), "best_epoch": best, "epochs_run": len(history)})
    plot_history(history, out / "history.png", title=f"{encoder}: best epoch {best}")
    plot_confusion(report, out / "confusion.png", title=f"test split: accuracy {report['accuracy']:.1%} (n={len(pred)})")
    write_json(out / "report.json", report)
    model.save(out, preprocess=preprocess.to_dict(), extra={
        "train": {**config.to_dict(), "best_epoch": best, "dataset": str(dataset.root), "dataset_kind": dataset.kind,
                  "clips": counts},
        "metrics": {"test_accuracy": report["accuracy"], "n_test": int(len(pred))}})
    return report


def evaluate_audio_classifier(model_dir: str | os.PathLike, dataset, *, split: str = "test", encoder: str | None = None,
                              noise: float = 0.0, seed: int | None = None, cache_folder: str | os.PathLike | None = None,
                              batch_size: int = 8, progress=None, png: str | os.PathLike | None = None) -> dict:
    """Accuracy, per-class P/R/F1 and the confusion matrix of a saved classifier on a split.

    ``progress(stage, done, total)`` (:mod:`shared.progress`) counts the clips encoded."""
    import torch

    from audiogenre.models import AudioClassifier
    from shared.classification import classification_report, plot_confusion

    model, meta = AudioClassifier.load(model_dir, encoder=encoder)
    genres = model.genres
    pre = Preprocess.from_dict({**meta["settings"], "noise": noise})
    split_seed = seed if seed is not None else meta.get("train", {}).get("seed", 24)
    splits = dataset.splits(seed=split_seed)
    items = [it for it in splits.get(split, []) if it.genre in genres]
    unknown = sorted({it.genre for it in splits.get(split, [])} - set(genres))
    if unknown:
        log.warning("left out clips of genres the classifier does not know: %s", ", ".join(unknown))
    if not items:
        raise GenreError(f"no clips of the classifier's genres ({', '.join(genres)}) in the {split} split of {dataset.root}")
    folder = Path(cache_folder) if cache_folder else default_cache_folder(dataset.root)
    seg = model.backend.segment_seconds
    if seg:  # trainable backends are scored on the segments they were trained on (no cache)
        from audiogenre.datasets import segment as cut

        items, folder = cut(items, seg), None
    emb, kept = embed_split(model.backend, items, pre, folder, batch_size=batch_size, progress=progress,
                            rng=np.random.default_rng(split_seed))  # noise, if any, is seeded: reruns agree
    with torch.no_grad():
        pred = model.head(torch.from_numpy(emb)).argmax(1).numpy()
    report = classification_report(_labels(kept, genres), pred, genres)
    report.update({"split": split, "n": int(len(pred)), "noise": noise})
    if png:
        plot_confusion(report, png, title=f"{split} split: accuracy {report['accuracy']:.1%} (n={len(pred)})")
    return report


def format_report(report: dict) -> str:
    lines = [f"accuracy {report['accuracy']:.1%} on {report['n']} clips of the {report['split']} split",
             f"{'genre':<14}{'precision':>10}{'recall':>8}{'F1':>7}{'n':>6}"]
    for g, r in report["per_class"].items():
        lines.append(f"{g:<14}{r['precision']:>10.3f}{r['recall']:>8.3f}{r['f1']:>7.3f}{r['support']:>6d}")
    return "\n".join(lines)


def load_segments(items, seconds: float, *, progress=None, desc: str = "reading") -> tuple[np.ndarray, list]:
    """16 kHz waves ``(n, seconds·16000)`` of ``items`` (each already a segment), skipping unreadable ones.

    ``progress(desc, done, total)`` (:mod:`shared.progress`) counts the segments read."""
    from audiogenre.audio import load_clip
    from shared.progress import progress_callback

    report_progress = progress_callback(progress)
    pre = Preprocess(seconds=seconds)
    waves, kept = [], []
    for done, it in enumerate(items):
        report_progress(desc, done, len(items))
        try:
            waves.append(load_clip(it.path, pre, start=it.start, duration=it.duration))
            kept.append(it)
        except GenreError as err:
            log.warning("skipped: %s", err)
    report_progress(desc, len(items), len(items))
    if not waves:
        return np.zeros((0, pre.length), np.float32), []
    return np.stack(waves), kept


def clip_level(items, probs: np.ndarray) -> tuple[list[str], np.ndarray, dict[str, list[int]]]:
    """Clip-level predictions from segment probabilities.

    The segments are grouped by their source clip (``str(item.path)``); a clip is predicted as
    the class with the highest mean log-probability over its segments (the product of the
    segment probabilities, not their plain mean; 1e-9 is added before the log).

    Returns ``(keys, predicted, groups)``: the clip keys, sorted; the predicted class index of
    each clip, in that order; and for each key the indices of its segments in ``items`` and
    ``probs`` (the caller takes a clip's true class from them).
    """
    groups: dict[str, list[int]] = {}
    for i, it in enumerate(items):
        groups.setdefault(str(it.path), []).append(i)
    keys = sorted(groups)
    return keys, np.array([np.log(probs[groups[k]] + 1e-9).mean(0).argmax() for k in keys]), groups


def training_loss(model, xb, yb, forward=None):
    """Cross-entropy; for the deep softmax autoencoder γ·‖x − g(f(x))‖² + (1 − γ)·CE (the style-encodings paper, eq. 3).
    ``forward``: what runs the model (its DDP wrapper on several processes; default the model)."""
    from torch.nn import functional as F

    logits = (forward or model)(xb)
    ce = F.cross_entropy(logits, yb)
    aux = model.backend.auxiliary_loss() if hasattr(model.backend, "auxiliary_loss") else None
    if aux is None:
        return ce, logits
    gamma = model.backend.gamma
    return gamma * aux + (1 - gamma) * ce, logits


class _BackendTraining:
    """A trainable backend + linear head as a task of the shared training loop: Adam on
    segments in memory; the autoencoder adds its reconstruction loss (see :func:`training_loss`)."""

    def __init__(self, model, data: dict, config: BackendTrainConfig, device):
        import torch

        from shared import distributed

        self.model, self.data, self.cfg, self.device = model, data, config, device
        self.dist = distributed.context(device)
        # DDP on several processes. BatchNorm keeps each process's batch statistics (SyncBatchNorm
        # does not run on the CPU); rank 0's running means are the ones saved.
        self.forward = distributed.wrap(model, device)
        self.opt = torch.optim.Adam(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
        # BatchNorm cannot train on one example: such a last batch (one per process) is left out
        bn = any(isinstance(m, torch.nn.BatchNorm2d) for m in model.modules())
        self.min_batch = (2 if bn else 1) * self.dist.world

    def state(self) -> dict:
        return {"model": self.model, "opt": self.opt}

    def batches(self, epoch: int) -> list:
        order = permutation(len(self.data["train"][0]), self.cfg.seed, epoch, generator="torch")
        batches = [order[i:i + self.cfg.batch_size] for i in range(0, len(order), self.cfg.batch_size)]
        return [b for b in batches if len(b) >= self.min_batch]

    def train_step(self, sel) -> dict:
        x, y, _ = self.data["train"]
        xb, yb = x[sel].to(self.device), y[sel].to(self.device)
        self.model.train()
        loss, logits = training_loss(self.model, xb, yb, self.forward)
        self.opt.zero_grad(set_to_none=True)
        (loss * self.dist.share()).backward()
        self.opt.step()
        return {"train_loss": float(loss.detach()), "train_acc": int((logits.argmax(1) == yb).sum()) / len(sel), "n": len(sel)}

    def validate(self) -> dict:
        if "valid" not in self.data:
            return {}
        loss, p = self.evaluate("valid")
        return {"valid_loss": loss, "valid_acc": float((p.argmax(1) == self.data["valid"][1].numpy()).mean())}

    def evaluate(self, name: str) -> tuple[float, np.ndarray]:
        """Mean cross-entropy and the probabilities of split ``name``."""
        import torch
        from torch.nn import functional as F

        self.model.eval()
        x, y, _ = self.data[name]
        probs, total = [], 0.0
        with torch.no_grad():
            for i in range(0, len(x), 64):
                logits = self.model(x[i:i + 64].to(self.device))
                total += float(F.cross_entropy(logits, y[i:i + 64].to(self.device), reduction="sum"))
                probs.append(torch.softmax(logits, -1).cpu())
        return total / len(x), torch.cat(probs).numpy()


@keeps_random_state
def train_backend_classifier(dataset, out: str | os.PathLike, config: BackendTrainConfig = BackendTrainConfig(), *,
                             device: str = "auto", progress=None, echo: Callable[[str], None] | None = None,
                             on_epoch: Callable[[dict], None] | None = None) -> dict:
    """Train one of the trainable backends (cnn, resnet18, fusion, autoencoder, mlp) end to end.

    Clips are cut into ``config.segment``-second pieces (Mongelli et al.: 3/5/10 s; the style-encodings paper: 1 s), all
    read into memory at 16 kHz; Adam with the backend's paper defaults; early stopping on the
    validation loss; the report is on the test split, per segment and per clip (segment
    probabilities averaged in the log domain). ``echo(line)`` receives a description of the
    data and the model, ``on_epoch(row)`` each epoch, ``progress(stage, done, total, note)``
    (:mod:`shared.progress`) the segments read and the training steps.
    """
    import torch

    from audiogenre.backends import TrainableBackend, n_parameters
    from audiogenre.datasets import segment as cut
    from audiogenre.models import AudioClassifier, LinearHead
    from shared.atomic import write_json
    from shared.classification import classification_report, plot_confusion
    from shared.runtime import pick_device

    from shared import distributed

    cfg, out, dev = config, Path(out), pick_device(device)
    main = distributed.context(dev).main  # on several processes rank 0 writes
    genres = list(dataset.genres)
    splits = dataset.splits(seed=cfg.seed)
    for name in ("train", "test"):
        if not splits.get(name):
            raise GenreError(f"the {name} split of {dataset.root} is empty; add clips or songs")
    torch.manual_seed(cfg.seed)
    data = {}
    for name in ("train", "valid", "test"):
        items = splits.get(name) or []
        if not items:
            continue
        segs = cut(items, cfg.segment)
        x, kept = load_segments(segs, cfg.segment, progress=progress, desc=f"reading {name}")
        if len(kept):
            data[name] = (torch.from_numpy(x), torch.from_numpy(_labels(kept, genres)), kept)
    if "train" not in data or "test" not in data:
        raise GenreError(f"no readable {cfg.segment:g} s segments in the train or test split of {dataset.root}")
    net = TrainableBackend(cfg.backend, segment_seconds=cfg.segment, **({"size": cfg.image_size} if cfg.image_size else {}),
                           **({"imagenet": cfg.imagenet} if cfg.imagenet else {}))
    model = AudioClassifier(net, LinearHead(net.dim, len(genres)), genres).to(dev)
    counts = {k: len(v[2]) for k, v in data.items()}
    if echo:
        echo(f"{cfg.backend}: {n_parameters(model) / 1e6:.2f} M parameters; {cfg.segment:g} s segments: "
             + ", ".join(f"{k} {n}" for k, n in counts.items())
             + f"; Adam lr {cfg.lr:g}, batch {cfg.batch_size}, ≤{cfg.epochs} epochs; device {dev}")
    if main:
        out.mkdir(parents=True, exist_ok=True)
        write_run_config(out, train=cfg.to_dict(), data={"dataset": str(dataset.root), "kind": dataset.kind,
                                                         "segments": counts}, device=str(dev))
    task = _BackendTraining(model, data, cfg, dev)
    stopping = EarlyStopping(model, "valid_loss" if "valid" in data else "train_loss",
                             patience=cfg.patience if "valid" in data else None)
    callbacks = [stopping, CSVLog(out / "log.csv")] + ([ReportProgress(progress)] if callable(progress) else [])
    callbacks += [EveryEpoch(on_epoch)] if on_epoch else []
    t0 = time.perf_counter()
    history = TrainingLoop(task, cfg.epochs, callbacks).run()
    seconds = time.perf_counter() - t0
    if stopping.best_epoch == 0:
        raise GenreError(f"training diverged (the loss was never finite); lower --lr (now {cfg.lr:g})")
    if not main:
        return {}
    model.eval()
    _, p = task.evaluate("test")
    y_test = data["test"][1].numpy()
    report = classification_report(y_test, p.argmax(1), genres)
    keys, pred_clip, groups = clip_level(data["test"][2], p)
    true_clip = np.array([y_test[groups[k][0]] for k in keys])
    clip_report = classification_report(true_clip, pred_clip, genres)
    report.update({"split": "test", "n": int(len(y_test)), "best_epoch": stopping.best_epoch, "epochs_run": len(history),
                   "segment_seconds": cfg.segment, "clip_accuracy": clip_report["accuracy"], "n_clips": len(keys),
                   "backend": cfg.backend, "train_seconds": round(seconds, 1)})
    plot_history(history, out / "history.png", title=f"{cfg.backend}, {cfg.segment:g} s segments: best epoch {stopping.best_epoch}")
    plot_confusion(report, out / "confusion.png",
                   title=f"{cfg.backend}, test segments: accuracy {report['accuracy']:.1%} (n={len(y_test)}); clips {clip_report['accuracy']:.1%}")
    write_json(out / "report.json", report)
    model.save(out, preprocess=Preprocess(seconds=cfg.segment).to_dict(), extra={
        "train": {**cfg.to_dict(), "imagenet": bool(cfg.imagenet), "best_epoch": stopping.best_epoch,
                  "dataset": str(dataset.root), "dataset_kind": dataset.kind, "segments": counts},
        "metrics": {"test_accuracy": report["accuracy"], "test_clip_accuracy": clip_report["accuracy"], "n_test": int(len(y_test))}})
    return report


def pca_2d(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """First two principal components of the rows of ``x`` and their explained-variance ratios."""
    x = np.asarray(x, np.float64)
    xc = x - x.mean(0, keepdims=True)
    if len(x) < 2:
        raise GenreError("PCA needs at least two embeddings")
    _, s, vt = np.linalg.svd(xc, full_matrices=False)
    var = s ** 2 / max(1e-12, float((s ** 2).sum()))
    comps = xc @ vt[:2].T
    if comps.shape[1] < 2:
        comps = np.pad(comps, ((0, 0), (0, 2 - comps.shape[1])))
        var = np.pad(var, (0, 2 - len(var)))
    return comps, var[:2]


def embed_dataset(model_dir: str | os.PathLike, dataset, *, split: str | None = "test", encoder: str | None = None,
                  progress=None) -> dict:
    """Embeddings (backend output) and logits of a data set's clips (segments for trainable backends);
    ``progress(stage, done, total)`` (:mod:`shared.progress`) counts the clips encoded."""
    import torch

    from audiogenre.models import AudioClassifier

    model, meta = AudioClassifier.load(model_dir, encoder=encoder)
    pre = Preprocess.from_dict(meta["settings"])
    seed = meta.get("train", {}).get("seed", 24)
    items = dataset.splits(seed=seed).get(split, []) if split else list(dataset.items)
    items = [it for it in items if it.genre in model.genres]
    if not items:
        raise GenreError(f"no clips of the classifier's genres in {'the ' + split + ' split of ' if split else ''}{dataset.root}")
    seg = model.backend.segment_seconds
    if seg:
        from audiogenre.datasets import segment as cut

        items = cut(items, seg)
    emb, kept = embed_split(model.backend, items, pre, None, progress=progress)
    with torch.no_grad():
        logits = model.head(torch.from_numpy(emb)).numpy()
    return {"embeddings": emb, "logits": logits, "labels": _labels(kept, model.genres), "genres": model.genres,
            "paths": [str(it.path) for it in kept], "starts": [it.start for it in kept], "backend": meta["backend"]["type"]}


def plot_embeddings(result: dict, path: str | os.PathLike, title: str = "") -> Path:
    """Two PCA panels, embeddings and logits, one colour per genre."""
    from shared.plotting import new_figure, save_png

    fig, axes = new_figure(1, 2, figsize=(10, 4.4))
    dim = result["embeddings"].shape[1]
    for ax, key, name in ((axes[0], "embeddings", f"{result['backend']} embedding ({dim}-d)"),
                          (axes[1], "logits", f"logits ({result['logits'].shape[1]}-d)")):
        comps, var = pca_2d(result[key])
        for k, g in enumerate(result["genres"]):
            sel = result["labels"] == k
            ax.scatter(comps[sel, 0], comps[sel, 1], s=9, alpha=0.7, label=f"{g} ({int(sel.sum())})")
        # zoom on where the points are: a few outliers would otherwise squash the clusters
        lo, hi = np.percentile(comps, 1, axis=0), np.percentile(comps, 99, axis=0)
        pad = 0.15 * (hi - lo + 1e-9)
        lo, hi = lo - pad, hi + pad
        outside = int(np.sum(np.any((comps < lo) | (comps > hi), axis=1)))
        ax.set_xlim(lo[0], hi[0])
        ax.set_ylim(lo[1], hi[1])
        ax.set_title(f"PCA of the {name}" + (f"\n({outside} outlying points beyond the frame)" if outside else ""), fontsize=10)
        ax.set_xlabel(f"PC1 ({var[0]:.0%} of variance)")
        ax.set_ylabel(f"PC2 ({var[1]:.0%})")
        ax.grid(alpha=0.3)
    axes[1].legend(fontsize=8, markerscale=1.5)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return save_png(fig, path)
