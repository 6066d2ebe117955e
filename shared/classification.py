"""The scores of a genre classifier, shared by the symbolic and audio classifiers: accuracy,
per-class precision/recall/F1, the confusion matrix and its PNG. (The listening reports are
``midigenre.report`` and ``audiogenre.report``.)"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

import numpy as np


def classification_report(y_true: np.ndarray, y_pred: np.ndarray, genres: Sequence[str]) -> dict:
    """Accuracy, per-class precision/recall/F1/support and the confusion matrix (rows = true)."""
    n = len(genres)
    cm = np.zeros((n, n), dtype=np.int64)
    np.add.at(cm, (y_true, y_pred), 1)
    per = {}
    for k, g in enumerate(genres):
        tp = cm[k, k]
        prec = tp / cm[:, k].sum() if cm[:, k].sum() else float("nan")
        rec = tp / cm[k, :].sum() if cm[k, :].sum() else float("nan")
        f1 = 2 * prec * rec / (prec + rec) if prec + rec > 0 else float("nan")
        per[g] = {"precision": float(prec), "recall": float(rec), "f1": float(f1), "support": int(cm[k, :].sum())}
    acc = float(np.trace(cm) / cm.sum()) if cm.sum() else float("nan")
    return {"accuracy": acc, "per_class": per, "confusion": cm.tolist(), "genres": list(genres)}


def plot_confusion(report: dict, path: str | os.PathLike, title: str = "") -> Path:
    """Confusion matrix PNG (counts and row percentages)."""
    from shared.plotting import new_figure, save_png

    cm = np.array(report["confusion"])
    genres = report["genres"]
    frac = cm / np.maximum(cm.sum(axis=1, keepdims=True), 1)
    fig, ax = new_figure(figsize=(1.6 + 1.1 * len(genres), 1.2 + 1.0 * len(genres)))
    ax.imshow(frac, cmap="Blues", vmin=0, vmax=1)
    for i in range(len(genres)):
        for j in range(len(genres)):
            ax.text(j, i, f"{cm[i, j]}\n{frac[i, j]:.0%}", ha="center", va="center",
                    color="white" if frac[i, j] > 0.6 else "black", fontsize=9)
    ax.set_xticks(range(len(genres)), genres)
    ax.set_yticks(range(len(genres)), genres)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title or f"accuracy {report['accuracy']:.1%} on held-out songs", fontsize=10)
    fig.tight_layout()
    return save_png(fig, path)
