"""Train and evaluate an audio genre classifier on a data set (``genre audio train|evaluate``).

Training: open the data set (folder / FMA-small / GTZAN), take its train/valid/test split
(the official one, or a seeded split by song), encode every clip once into the embedding
cache, train the head from the cache with early stopping on the validation split, then
report on the **test** split (the seed reported its validation split as "test").
"""

from __future__ import annotations

import csv
import logging
import os
from pathlib import Path
from typing import Sequence

import numpy as np

from audiogenre.audio import Preprocess
from audiogenre.embeddings import EmbeddingCache, HeadConfig, default_cache_folder, encode_items, train_head
from shared.errors import GenreError

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


def write_log(path: Path, history: list[dict]) -> None:
    """Per-epoch rows as CSV, atomically."""
    from shared.atomic import atomic_path

    with atomic_path(path) as tmp:
        with open(tmp, "w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=list(history[-1].keys()))
            w.writeheader()
            w.writerows(history)


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


def train_audio_classifier(dataset, out: str | os.PathLike, *, encoder: str, layers: int | None = 7,
                           pooling: str = "mean+max", preprocess: Preprocess = Preprocess(),
                           config: HeadConfig = HeadConfig(), cache_folder: str | os.PathLike | None = None,
                           batch_size: int = 8, progress: bool = True, echo=print) -> dict:
    """Train a wav2vec2 + head classifier on ``dataset`` (an :class:`AudioDataset`); returns the test report."""
    import torch

    from audiogenre.models import AudioClassifier, GenreHead, Wav2Vec2Backend
    from shared.atomic import write_json
    from shared.report import classification_report, plot_confusion

    out = Path(out)
    genres = list(dataset.genres)
    splits = dataset.splits(seed=config.seed)
    for name in ("train", "test"):
        if not splits.get(name):
            raise GenreError(f"the {name} split of {dataset.root} is empty; add clips or songs")
    missing = sorted({g for g in genres} - {it.genre for it in splits["train"]})
    if missing:
        raise GenreError(f"no training clips for {', '.join(missing)}; every genre needs clips in the train split")
    backend = Wav2Vec2Backend.from_pretrained(encoder, layers=layers, pooling=pooling)
    folder = Path(cache_folder) if cache_folder else default_cache_folder(dataset.root)
    echo(f"{dataset.kind} data set {dataset.root}: " + ", ".join(f"{k} {len(v)}" for k, v in splits.items())
         + f" clips; encoder {encoder} ({backend.layers} layers, dim {backend.dim}); cache {folder}")
    torch.manual_seed(config.seed)
    data = {}
    for name in ("train", "valid", "test"):
        items = splits.get(name) or []
        if items:
            emb, kept = embed_split(backend, items, preprocess, folder, batch_size=batch_size, progress=progress)
            data[name] = (emb, _labels(kept, genres), kept)
    for name in ("train", "test"):
        if name not in data or len(data[name][0]) == 0:
            raise GenreError(f"no readable clips in the {name} split of {dataset.root}")
    head = GenreHead(backend.dim, len(genres), hidden=config.hidden, dropout=config.dropout)

    def on_epoch(row):
        v = f"  valid loss {row['valid_loss']:.3f} acc {row['valid_acc']:.1%}" if "valid_loss" in row else ""
        echo(f"epoch {row['epoch']:3d}  train loss {row['train_loss']:.3f} acc {row['train_acc']:.1%}{v}")

    xv, yv = (data["valid"][0], data["valid"][1]) if "valid" in data else (None, None)
    history, best = train_head(head, data["train"][0], data["train"][1], xv, yv, config, on_epoch=on_epoch)
    model = AudioClassifier(backend, head, genres).eval()
    with torch.no_grad():
        pred = head(torch.from_numpy(data["test"][0])).argmax(1).numpy()
    report = classification_report(data["test"][1], pred, genres)
    report.update({"split": "test", "n": int(len(pred)), "best_epoch": best})
    out.mkdir(parents=True, exist_ok=True)
    write_log(out / "log.csv", history)
    plot_history(history, out / "history.png", title=f"{encoder}: best epoch {best}")
    plot_confusion(report, out / "confusion.png", title=f"test split: accuracy {report['accuracy']:.1%} (n={len(pred)})")
    write_json(out / "report.json", report)
    counts = {k: len(v[2]) for k, v in data.items()}
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
    from shared.report import classification_report, plot_confusion

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


def clip_level(items, probs: np.ndarray) -> tuple[np.ndarray, np.ndarray, list]:
    """Average segment probabilities per source clip (path) → (true, predicted, clip keys)."""
    groups: dict[str, list[int]] = {}
    for i, it in enumerate(items):
        groups.setdefault(str(it.path), []).append(i)
    keys = sorted(groups)
    return keys, np.array([np.log(probs[groups[k]] + 1e-9).mean(0).argmax() for k in keys]), groups


def training_loss(model, xb, yb):
    """Cross-entropy; for the deep softmax autoencoder γ·‖x − g(f(x))‖² + (1 − γ)·CE (seed 001, eq. 3)."""
    from torch.nn import functional as F

    logits = model(xb)
    ce = F.cross_entropy(logits, yb)
    aux = model.backend.auxiliary_loss() if hasattr(model.backend, "auxiliary_loss") else None
    if aux is None:
        return ce, logits
    gamma = model.backend.gamma
    return gamma * aux + (1 - gamma) * ce, logits


def train_backend_classifier(dataset, out: str | os.PathLike, *, backend: str, segment: float | None = None,
                             epochs: int | None = None, lr: float | None = None, batch_size: int | None = None,
                             patience: int = 5, seed: int = 24, imagenet: str | None = None, weight_decay: float = 0.0,
                             backend_config: dict | None = None, progress: bool = True, echo=print) -> dict:
    """Train one of the trainable backends (cnn, resnet18, fusion, autoencoder, mlp) end to end.

    Clips are cut into ``segment``-second pieces (seed 003: 3/5/10 s; seed 001: 1 s), all read
    into memory at 16 kHz; Adam with the backend's paper defaults; early stopping on the
    validation loss; the report is on the test split, per segment and per clip (segment
    probabilities averaged in the log domain).
    """
    import time

    import torch
    from torch.nn import functional as F

    from audiogenre.backends import TRAIN_DEFAULTS, TrainableBackend, n_parameters
    from audiogenre.datasets import segment as cut
    from audiogenre.models import AudioClassifier, LinearHead
    from shared.atomic import write_json
    from shared.report import classification_report, plot_confusion

    if backend not in TRAIN_DEFAULTS:
        raise GenreError(f"unknown backend {backend!r}: use wav2vec2 or one of {', '.join(TRAIN_DEFAULTS)}")
    d = TRAIN_DEFAULTS[backend]
    segment = segment or d["segment"]
    epochs = epochs or d["epochs"]
    lr = lr or d["lr"]
    batch_size = batch_size or d["batch_size"]
    out = Path(out)
    genres = list(dataset.genres)
    splits = dataset.splits(seed=seed)
    for name in ("train", "test"):
        if not splits.get(name):
            raise GenreError(f"the {name} split of {dataset.root} is empty; add clips or songs")
    torch.manual_seed(seed)
    data = {}
    for name in ("train", "valid", "test"):
        items = splits.get(name) or []
        if not items:
            continue
        segs = cut(items, segment)
        x, kept = load_segments(segs, segment, progress=progress, desc=f"reading {name}")
        if len(kept):
            data[name] = (torch.from_numpy(x), torch.from_numpy(_labels(kept, genres)), kept)
    if "train" not in data or "test" not in data:
        raise GenreError(f"no readable {segment:g} s segments in the train or test split of {dataset.root}")
    net = TrainableBackend(backend, **(backend_config or {}), **({"imagenet": imagenet} if imagenet else {}))
    head = LinearHead(net.dim, len(genres))
    model = AudioClassifier(net, head, genres)
    echo(f"{backend}: {n_parameters(model) / 1e6:.2f} M parameters; {segment:g} s segments: "
         + ", ".join(f"{k} {len(v[2])}" for k, v in data.items()) + f"; Adam lr {lr:g}, batch {batch_size}, ≤{epochs} epochs")
    opt = torch.optim.Adam(model.parameters(), lr=lr, weight_decay=weight_decay)
    gen = torch.Generator().manual_seed(seed)

    def loss_of(xb, yb):
        return training_loss(model, xb, yb)

    def run_eval(name):
        model.eval()
        x, y, _ = data[name]
        probs, total = [], 0.0
        with torch.no_grad():
            for i in range(0, len(x), 64):
                logits = model(x[i:i + 64])
                total += float(F.cross_entropy(logits, y[i:i + 64], reduction="sum"))
                probs.append(torch.softmax(logits, -1))
        p = torch.cat(probs).numpy()
        return total / len(x), p

    history, best, best_state, best_epoch, stale = [], float("inf"), None, 0, 0
    t0 = time.perf_counter()
    for epoch in range(1, epochs + 1):
        model.train()
        x, y, _ = data["train"]
        order = torch.randperm(len(x), generator=gen)
        tl, tc = 0.0, 0
        from tqdm import tqdm

        for i in tqdm(range(0, len(order), batch_size), desc=f"epoch {epoch}", unit="batch", leave=False,
                      disable=not progress, dynamic_ncols=True):
            sel = order[i:i + batch_size]
            if len(sel) < 2 and any(isinstance(m, torch.nn.BatchNorm2d) for m in model.modules()):
                continue  # BatchNorm cannot train on one example
            loss, logits = loss_of(x[sel], y[sel])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            tl += float(loss.detach()) * len(sel)
            tc += int((logits.argmax(1) == y[sel]).sum())
        row = {"epoch": epoch, "train_loss": tl / len(x), "train_acc": tc / len(x), "seconds": time.perf_counter() - t0}
        if "valid" in data:
            vl, vp = run_eval("valid")
            row.update(valid_loss=vl, valid_acc=float((vp.argmax(1) == data["valid"][1].numpy()).mean()))
        history.append(row)
        v = f"  valid loss {row['valid_loss']:.3f} acc {row['valid_acc']:.1%}" if "valid_loss" in row else ""
        echo(f"epoch {epoch:3d}  train loss {row['train_loss']:.3f} acc {row['train_acc']:.1%}{v}  ({row['seconds']:.0f} s)")
        score = row.get("valid_loss", row["train_loss"])
        if score < best - 1e-6:
            best, best_epoch, stale = score, epoch, 0
            best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
        else:
            stale += 1
            if "valid" in data and stale >= patience:
                echo(f"early stop: no better validation loss for {patience} epochs (best epoch {best_epoch})")
                break
    if best_state is None:
        raise GenreError(f"training diverged (the loss was never finite); lower --lr (now {lr:g})")
    model.load_state_dict(best_state)
    model.eval()
    _, p = run_eval("test")
    y_test = data["test"][1].numpy()
    report = classification_report(y_test, p.argmax(1), genres)
    keys, pred_clip, groups = clip_level(data["test"][2], p)
    true_clip = np.array([y_test[groups[k][0]] for k in keys])
    clip_report = classification_report(true_clip, pred_clip, genres)
    report.update({"split": "test", "n": int(len(y_test)), "best_epoch": best_epoch, "segment_seconds": segment,
                   "clip_accuracy": clip_report["accuracy"], "n_clips": len(keys), "backend": backend,
                   "train_seconds": history[-1]["seconds"]})
    out.mkdir(parents=True, exist_ok=True)
    write_log(out / "log.csv", history)
    plot_history(history, out / "history.png", title=f"{backend}, {segment:g} s segments: best epoch {best_epoch}")
    plot_confusion(report, out / "confusion.png",
                   title=f"{backend}, test segments: accuracy {report['accuracy']:.1%} (n={len(y_test)}); clips {clip_report['accuracy']:.1%}")
    write_json(out / "report.json", report)
    model.save(out, preprocess=Preprocess(seconds=segment).to_dict(), extra={
        "train": {"backend": backend, "segment": segment, "epochs": epochs, "lr": lr, "batch_size": batch_size, "seed": seed,
                  "patience": patience, "best_epoch": best_epoch, "dataset": str(dataset.root), "dataset_kind": dataset.kind,
                  "segments": {k: len(v[2]) for k, v in data.items()}, "imagenet": bool(imagenet)},
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
