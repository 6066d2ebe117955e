"""Pictures of phrases and songs: the panel layout shared by ``genre midi plot``, ``explain`` and ``transfer --png``.

A selection of phrases (:mod:`midigenre.phrases`) is laid out as panels: cache rows, which
may come from different songs, one panel each; phrases of one song (a MIDI file or a cached
song) in lines of four phrase places, read like a score, with silent gaps where phrases are
missing. The drawing itself is :func:`shared.plotting.plot_rolls`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

#: Lines drawn at most for one song (a picture stays readable).
MAX_LINES = 12
#: Phrase places per line when a song is drawn.
PHRASES_PER_LINE = 4


@dataclass
class Panel:
    """One row of a picture.

    name : the phrase's title (cache rows) or the song's name (lines of a song).
    roll : (T, 84) roll; overlay : (T, 84) values in [0, 1] or None.
    places : the phrase numbers shown (phrase places of the song; one for a cache row).
    rows : indices into the selection's items shown in this panel.
    first_bar, last_bar : bar numbers (from 1) of the panel's first and last bar.
    """

    name: str
    roll: np.ndarray
    places: range
    rows: list[int]
    first_bar: int
    last_bar: int
    overlay: np.ndarray | None = None


@dataclass
class Drawing:
    """What was drawn: the PNG, the panels drawn and how many there were in all."""

    path: Path
    panels: list[Panel]
    total: int


def layout_panels(selection, overlays: np.ndarray | None = None, per_line: int = PHRASES_PER_LINE) -> list[Panel]:
    """Panels for a :class:`~midigenre.phrases.Selection` (and optional per-phrase overlays, ``(N, 64, 84)``).

    Phrases of one song go in lines of ``per_line`` phrase places from the first selected one,
    missing places silent; cache rows get a panel each.
    """
    s = selection.settings
    phrases = selection.phrases.astype(bool)
    pos = selection.numbers
    bars = s.bars_per_phrase
    if selection.song is None:
        return [Panel(it.title, phrases[k], range(it.number, it.number + 1), [k], it.number * bars + 1,
                      (it.number + 1) * bars, None if overlays is None else overlays[k])
                for k, it in enumerate(selection.items)]
    pitches = phrases.shape[-1]
    song_roll = np.zeros((int(pos.max()) + 1, s.phrase_steps, pitches), dtype=bool)
    song_roll[pos] = phrases
    song_map = None
    if overlays is not None:
        song_map = np.zeros(song_roll.shape, dtype=np.float32)
        song_map[pos] = overlays
    panels = []
    for start in range(int(pos.min()), int(pos.max()) + 1, per_line):
        places = range(start, min(start + per_line, len(song_roll)))
        first = start * bars + 1
        panels.append(Panel(
            selection.song, song_roll[places.start : places.stop].reshape(-1, pitches), places,
            [k for k, p in enumerate(pos.tolist()) if p in places], first, first + len(places) * bars - 1,
            None if song_map is None else song_map[places.start : places.stop].reshape(-1, pitches)))
    return panels


def _draw(panels: list[Panel], titles: list[str], path, settings) -> Path:
    from shared.plotting import plot_rolls

    overlays = [p.overlay for p in panels]
    return plot_rolls([(t, p.roll) for t, p in zip(titles, panels)], path, lowest_pitch=settings.lowest_pitch,
                      steps_per_bar=settings.steps_per_bar, phrase_steps=settings.phrase_steps,
                      overlays=None if all(o is None for o in overlays) else overlays,
                      first_bars=[p.first_bar for p in panels])


def plot_phrases(selection, path: str | os.PathLike, *, max_lines: int = MAX_LINES) -> Drawing:
    """Draw a selection as a PNG: cache rows one panel each, a song in lines of four phrases
    (at most ``max_lines`` lines; :attr:`Drawing.total` tells how many there were)."""
    panels = layout_panels(selection)
    total = len(panels)
    if selection.song is not None:
        panels = panels[:max_lines]
        titles = [f"{p.name}, bars {p.first_bar}–{p.last_bar}" for p in panels]
    else:
        titles = [p.name for p in panels]
    return Drawing(_draw(panels, titles, path, selection.settings), panels, total)


@dataclass
class Explanation(Drawing):
    """A saliency picture and the classifier's probability of the genre for each selected phrase."""

    probabilities: np.ndarray | None = None  # (N,) P(target) per selected phrase
    target: str = ""
    method: str = ""


def plot_attribution(selection, classifier, target: str, path: str | os.PathLike, *, method: str = "saliency",
                     max_lines: int = MAX_LINES) -> Explanation:
    """Draw which notes drive ``classifier``'s score for ``target`` over the selected phrases.

    Attributions (:func:`midigenre.attribution.attribute`) are laid over the notes; titles give
    P(target) per phrase. At most ``max_lines`` panels are drawn.
    """
    from midigenre.attribution import attribute

    col = classifier.index(target)
    phrases = selection.phrases.astype(bool)
    maps = attribute(classifier, phrases, target, method=method)
    probs = classifier.probabilities(phrases)[:, col]
    panels = layout_panels(selection, overlays=maps)
    total = len(panels)
    panels = panels[:max_lines]
    if selection.song is None:
        titles = [f"{p.name}: P({target}) = {probs[p.rows[0]]:.2f}" for p in panels]
    else:
        prob_at = dict(zip(selection.numbers.tolist(), probs.tolist()))
        titles = []
        for p in panels:
            shown = ", ".join(f"{prob_at[q]:.2f}" if q in prob_at else "–" for q in p.places)
            titles.append(f"{p.name}, phrases {p.places[0]}–{p.places[-1]}: P({target}) = {shown}")
    path = _draw(panels, titles, path, selection.settings)
    return Explanation(path, panels, total, probabilities=probs, target=target, method=method)


def plot_transfer(result, path: str | os.PathLike, name: str, *, bars: int = 16) -> Path:
    """Source, transferred (and cycled-back) song of a :class:`~midigenre.transfer.SongTransfer`,
    their first ``bars`` bars (readable at a glance), one panel each."""
    from shared.plotting import plot_rolls

    s = result.settings
    panels = [(f"{name} ({result.source_genre})", result.source), (f"→ {result.target_genre}", result.transferred)]
    if result.cycled is not None:
        panels.append((f"→ {result.source_genre} again", result.cycled))
    steps = bars * s.steps_per_bar
    return plot_rolls([(t, r[:steps]) for t, r in panels], path, lowest_pitch=s.lowest_pitch,
                      steps_per_bar=s.steps_per_bar, phrase_steps=s.phrase_steps)


__all__ = ["Drawing", "Explanation", "MAX_LINES", "Panel", "layout_panels", "plot_attribution", "plot_phrases",
           "plot_transfer"]
