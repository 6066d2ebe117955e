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
                progress: bool = True) -> tuple[np.ndarray, list]:
    """Embeddings of ``items`` (through the cache when ``cache_folder`` is given and noise is 0)."""
    cache = None
    if cache_folder is not None and preprocess.noise == 0:
        cache = EmbeddingCache.in_folder(cache_folder, backend.describe(), preprocess)
    emb, ok = encode_items(backend, items, preprocess, cache=cache, batch_size=batch_size, progress=progress)
    return emb, [items[i] for i in ok]


def plot_history(history: list[dict], path: str | os.PathLike, title: str = "") -> Path:
    from shared.plotting import _pyplot, save_png

    plt = _pyplot()
    ep = [h["epoch"] for h in history]
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(9, 3.2))
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
    from shared.atomic import atomic_path, write_json
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
    with atomic_path(out / "log.csv") as tmp:
        with open(tmp, "w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=list(history[-1].keys()))
            w.writeheader()
            w.writerows(history)
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
                              batch_size: int = 8, progress: bool = True, png: str | os.PathLike | None = None) -> dict:
    """Accuracy, per-class P/R/F1 and the confusion matrix of a saved classifier on a split."""
    import torch

    from audiogenre.models import AudioClassifier
    from shared.report import classification_report, plot_confusion

    model, meta = AudioClassifier.load(model_dir, encoder=encoder)
    genres = model.genres
    pre = Preprocess.from_dict({**meta["preprocess"], "noise": noise})
    split_seed = seed if seed is not None else meta.get("train", {}).get("seed", 24)
    splits = dataset.splits(seed=split_seed)
    items = [it for it in splits.get(split, []) if it.genre in genres]
    unknown = sorted({it.genre for it in splits.get(split, [])} - set(genres))
    if unknown:
        log.warning("left out clips of genres the classifier does not know: %s", ", ".join(unknown))
    if not items:
        raise GenreError(f"no clips of the classifier's genres ({', '.join(genres)}) in the {split} split of {dataset.root}")
    folder = Path(cache_folder) if cache_folder else default_cache_folder(dataset.root)
    emb, kept = embed_split(model.backend, items, pre, folder, batch_size=batch_size, progress=progress)
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
