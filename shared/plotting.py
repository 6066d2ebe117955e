"""Piano-roll pictures a musician can read: pitch names on the axis, bar and phrase lines.

matplotlib is imported inside the functions. Figures are made with matplotlib's
object-oriented API (:class:`matplotlib.figure.Figure` on an Agg canvas), never through
pyplot, so drawing a PNG neither needs a display nor changes the backend of a notebook or
application that imports this module.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

import numpy as np

NOTE_NAMES = ("C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B")


def pitch_name(midi: int) -> str:
    """Scientific pitch name: 60 → C4, 24 → C1."""
    return f"{NOTE_NAMES[midi % 12]}{midi // 12 - 1}"


def new_figure(nrows: int = 1, ncols: int = 1, *, figsize: tuple[float, float] | None = None, squeeze: bool = True,
               **subplot_kw):
    """``(figure, axes)`` like ``pyplot.subplots``, but on its own Agg canvas: nothing global
    (pyplot's figure list, the backend) is touched, and the figure is freed with its last reference."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=figsize)
    FigureCanvasAgg(fig)
    axes = fig.subplots(nrows, ncols, squeeze=squeeze, **subplot_kw)
    return fig, axes


def _release(fig) -> None:
    """Close a figure that pyplot manages (one a caller made with pyplot); ours need nothing."""
    import sys

    plt = sys.modules.get("matplotlib.pyplot")  # never imported here: only if the caller uses pyplot
    if plt is not None and getattr(fig.canvas, "manager", None) is not None:
        plt.close(fig)


def save_png(fig, path: str | os.PathLike, dpi: int = 110) -> Path:
    """Save a matplotlib figure as a PNG atomically (and close it if pyplot manages it)."""
    from shared.atomic import atomic_path

    path = Path(path)
    try:
        with atomic_path(path, suffix=".png") as tmp:
            fig.savefig(tmp, dpi=dpi, format="png")
    finally:
        _release(fig)
    return path


def draw_roll(
    ax,
    roll: np.ndarray,
    *,
    lowest_pitch: int = 24,
    steps_per_bar: int = 16,
    phrase_steps: int = 64,
    title: str | None = None,
    overlay: np.ndarray | None = None,
    first_bar: int = 1,
    melody: np.ndarray | None = None,
) -> None:
    """Draw one roll on a matplotlib axis.

    Parameters
    ----------
    roll : (T, P) array
        Time along x, pitch along y (low notes at the bottom).
    overlay : (T, P) array, optional
        Values in [0, 1] drawn as a heat map over the notes (e.g. saliency).
    first_bar : int
        Number of the first bar, for the x-axis labels.
    melody : (T, P) bool array, optional
        Cells drawn in red over the roll (the song's melody).
    """
    roll = np.asarray(roll, dtype=float)
    steps, pitches = roll.shape
    extent = (0, steps, lowest_pitch - 0.5, lowest_pitch + pitches - 0.5)
    ax.imshow(roll.T, origin="lower", aspect="auto", cmap="Greys", vmin=0, vmax=1, extent=extent, interpolation="nearest")
    if overlay is not None:
        masked = np.ma.masked_less_equal(np.asarray(overlay, dtype=float).T, 0)
        ax.imshow(masked, origin="lower", aspect="auto", cmap="autumn_r", vmin=0, vmax=1, extent=extent,
                  interpolation="nearest", alpha=0.85)
    if melody is not None:
        from matplotlib.colors import ListedColormap

        masked = np.ma.masked_less_equal(np.asarray(melody, dtype=float).T, 0)
        ax.imshow(masked, origin="lower", aspect="auto", cmap=ListedColormap(["#d62728"]), vmin=0, vmax=1,
                  extent=extent, interpolation="nearest")
    for x in range(0, steps + 1, steps_per_bar):
        strong = phrase_steps and x % phrase_steps == 0
        ax.axvline(x, color="tab:blue" if strong else "0.6", lw=1.4 if strong else 0.6, zorder=3)
    cs = [p for p in range(lowest_pitch, lowest_pitch + pitches) if p % 12 == 0]
    ax.set_yticks(cs)
    ax.set_yticklabels([pitch_name(p) for p in cs], fontsize=8)
    for p in cs:
        ax.axhline(p - 0.5, color="0.85", lw=0.5, zorder=2)
    n_bars = steps // steps_per_bar
    every = max(1, int(np.ceil(n_bars / 16)))
    ticks = list(range(0, n_bars, every))
    ax.set_xticks([b * steps_per_bar + steps_per_bar / 2 for b in ticks])
    ax.set_xticklabels([str(first_bar + b) for b in ticks], fontsize=8)
    ax.set_xlim(0, steps)
    ax.set_xlabel("bar")
    ax.set_ylabel("pitch")
    if title:
        ax.set_title(title, fontsize=10, loc="left")


def plot_rolls(
    panels: Sequence[tuple[str, np.ndarray]],
    path: str | os.PathLike,
    *,
    lowest_pitch: int = 24,
    steps_per_bar: int = 16,
    phrase_steps: int = 64,
    overlays: Sequence[np.ndarray | None] | None = None,
    first_bars: Sequence[int] | None = None,
    dpi: int = 110,
    melodies: Sequence[np.ndarray | None] | None = None,
) -> Path:
    """Save one row per ``(title, roll)`` panel as a PNG (atomically); ``melodies`` (one per panel,
    or None) are drawn in red over their rolls."""
    n = len(panels)
    widest = max(np.asarray(r).shape[0] for _, r in panels)
    width = min(24.0, 3.0 + 2.2 * widest / phrase_steps * 2)
    fig, axes = new_figure(n, 1, figsize=(width, 2.6 * n + 0.4), squeeze=False)
    for i, (title, roll) in enumerate(panels):
        draw_roll(
            axes[i, 0], roll, lowest_pitch=lowest_pitch, steps_per_bar=steps_per_bar, phrase_steps=phrase_steps,
            title=title, overlay=None if overlays is None else overlays[i],
            first_bar=1 if first_bars is None else first_bars[i],
            melody=None if melodies is None else melodies[i],
        )
    fig.tight_layout()
    return save_png(fig, path, dpi)


def plot_grid(
    rows: Sequence[Sequence[np.ndarray]],
    titles: Sequence[Sequence[str]],
    path: str | os.PathLike,
    *,
    lowest_pitch: int = 24,
    steps_per_bar: int = 16,
    suptitle: str | None = None,
    dpi: int = 90,
) -> Path:
    """Save a grid of single phrases (e.g. source | transferred | cycled back per row) as a PNG."""
    n_rows, n_cols = len(rows), max(len(r) for r in rows)
    fig, axes = new_figure(n_rows, n_cols, figsize=(4.2 * n_cols, 2.3 * n_rows + 0.5), squeeze=False)
    for i, row in enumerate(rows):
        for j in range(n_cols):
            ax = axes[i, j]
            if j >= len(row):
                ax.axis("off")
                continue
            draw_roll(ax, row[j], lowest_pitch=lowest_pitch, steps_per_bar=steps_per_bar,
                      phrase_steps=len(row[j]), title=titles[i][j])
            if j:
                ax.set_ylabel("")
            if i < n_rows - 1:
                ax.set_xlabel("")
    if suptitle:
        fig.suptitle(suptitle)
    fig.tight_layout()
    return save_png(fig, path, dpi)
