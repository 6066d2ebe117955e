"""A transferred song written as an arrangement, not a piano roll.

The written MIDI keeps what the source file has and the transfer did not change:

* its tempo map, time and key signatures and markers (the grid follows the file's ticks, so the
  result lies on the same beats);
* the melody's notes exactly (their track's name and instrument, velocities, timing, durations);
* every accompaniment note the transfer kept (its grid onset cell is still a note of the result),
  with its own track, instrument, velocity and timing;
* the drum tracks, or not (``drums``: ``keep``, ``drop``, or the target genre's default).

The notes the transfer added go to the target genre's instruments (:data:`INSTRUMENTS`, an
editable table: a chord instrument and a bass instrument per genre; added notes below
``bass_below`` go to the bass), at the source's local loudness (the mean velocity of the source's
notes that start within a bar of them).

    >>> from midigenre.arrangement import instruments
    >>> instruments("jazz")
    {'chords': 0, 'bass': 32, 'drums': 'keep', 'bass_below': 48}
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

from shared.errors import GenreError

#: Per genre: General MIDI programs (0-based) of the instrument that plays the added chords and of
#: the one that plays the added bass notes (below ``bass_below``, a MIDI pitch), and whether the
#: source's drums stay (``keep``) or go (``drop``). Genres not listed take ``"*"``.
INSTRUMENTS: dict[str, dict] = {
    "pop": {"chords": 4, "bass": 33, "drums": "keep", "bass_below": 48},        # electric piano, finger bass
    "jazz": {"chords": 0, "bass": 32, "drums": "keep", "bass_below": 48},       # grand piano, acoustic bass
    "classical": {"chords": 48, "bass": 42, "drums": "drop", "bass_below": 48},  # string ensemble, cello
    "folk": {"chords": 25, "bass": 32, "drums": "drop", "bass_below": 48},      # steel guitar, acoustic bass
    "*": {"chords": 0, "bass": 32, "drums": "keep", "bass_below": 48},
}
DRUMS = ("auto", "keep", "drop")
_KEYS = {"chords": int, "bass": int, "drums": str, "bass_below": int}


def load_instruments(path: str | os.PathLike) -> dict[str, dict]:
    """An instrument table from a JSON or YAML file ``{genre: {chords, bass, drums, bass_below}}``
    (any key left out keeps its default), checked; GenreError with the reason otherwise."""
    p = Path(path)
    try:
        text = p.read_text()
    except OSError as err:
        raise GenreError(f"cannot read the instrument table {path}: {err.strerror or err}") from None
    try:
        if p.suffix.lower() in (".yaml", ".yml"):
            import yaml

            table = yaml.safe_load(text)
        else:
            table = json.loads(text)
    except Exception as err:  # noqa: BLE001 - any parse error is the file's
        raise GenreError(f"{path} is not a valid {'YAML' if p.suffix.lower() in ('.yaml', '.yml') else 'JSON'} "
                         f"instrument table: {str(err).splitlines()[0]}") from None
    if not isinstance(table, dict):
        raise GenreError(f"{path}: an instrument table maps genre names to {{chords, bass, drums, bass_below}}")
    out = {}
    for genre, row in table.items():
        if not isinstance(row, dict) or set(row) - set(_KEYS):
            raise GenreError(f"{path}: genre {genre!r} must map some of {', '.join(_KEYS)} to values, not {row!r}")
        out[str(genre)] = _checked({**INSTRUMENTS.get(str(genre), INSTRUMENTS["*"]), **row}, f"{path}: {genre}")
    return {**INSTRUMENTS, **out}


def _checked(row: dict, where: str) -> dict:
    for key in ("chords", "bass", "bass_below"):
        v = row[key]
        if isinstance(v, bool) or not isinstance(v, int) or not 0 <= v <= 127:
            raise GenreError(f"{where}: {key} must be a whole number 0-127 (a General MIDI program or pitch), not {v!r}")
    if row["drums"] not in ("keep", "drop"):
        raise GenreError(f"{where}: drums must be keep or drop, not {row['drums']!r}")
    return row


def instruments(genre: str, table: dict[str, dict] | None = None) -> dict:
    """The instrument row of ``genre`` (the ``"*"`` row for a genre the table does not name)."""
    table = table or INSTRUMENTS
    return dict(table.get(genre, table.get("*", INSTRUMENTS["*"])))


def _runs(roll: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(start step, end step, row) of every run of on-cells of a (T, P) bool roll."""
    padded = np.zeros((roll.shape[0] + 2, roll.shape[1]), dtype=np.int8)
    padded[1:-1] = roll
    delta = np.diff(padded, axis=0).T
    row_on, start = np.nonzero(delta == 1)
    _, end = np.nonzero(delta == -1)
    return start, end, row_on


def local_velocity(start_step: np.ndarray, notes, steps_per_bar: int, default: int = 80) -> np.ndarray:
    """The source's loudness around each step: the mean velocity of the source's notes that start
    within one bar of it (the whole song's mean where none do)."""
    if len(notes.velocity) == 0:
        return np.full(len(start_step), default, dtype=np.int64)
    bars = notes.start // steps_per_bar
    n_bars = int(max(bars.max(), (start_step.max() // steps_per_bar) if len(start_step) else 0)) + 3
    total = np.bincount(bars + 1, weights=notes.velocity, minlength=n_bars)
    count = np.bincount(bars + 1, minlength=n_bars).astype(float)
    # one bar either side
    total = total + np.roll(total, 1) + np.roll(total, -1)
    count = count + np.roll(count, 1) + np.roll(count, -1)
    mean_all = float(notes.velocity.mean())
    per_bar = np.where(count > 0, total / np.maximum(count, 1), mean_all)
    return np.clip(np.round(per_bar[start_step // steps_per_bar + 1]), 1, 127).astype(np.int64)


def arrange(notes, melody: np.ndarray, result: np.ndarray, target: str, settings, *, drums: str = "auto",
            table: dict[str, dict] | None = None):
    """The arrangement of a transfer as a ``symusic.ScoreTick`` (write it with ``dump_midi``).

    Parameters
    ----------
    notes : the source's :class:`midigenre.pianoroll.SongNotes` (``read_song(..., keep_notes=True)``).
    melody : (n_notes,) bool, which source notes are the melody (written as they are).
    result : (T, P) bool, the transfer on the song's grid (melody included).
    target : the target genre (its row of ``table`` gives the added notes' instruments).
    settings : the piano-roll settings the song was read with.
    drums : ``keep``/``drop`` the source's drum tracks, or ``auto`` (the target genre's default).
    """
    from symusic import Note, Track

    if drums not in DRUMS:
        raise GenreError(f"unknown drums choice {drums!r}; choose {', '.join(DRUMS)}")
    row = instruments(target, table)
    keep_drums = row["drums"] == "keep" if drums == "auto" else drums == "keep"
    score = notes.score
    out = score.copy()
    out.tracks.clear()
    tpq, spb = score.tpq, settings.steps_per_beat
    result = np.asarray(result, dtype=bool)
    steps = len(result)
    melody = np.asarray(melody, dtype=bool)

    # the source's accompaniment notes the result still holds at their onset cell keep themselves
    inside = notes.start < steps
    cell = np.zeros(len(notes.start), dtype=bool)
    cell[inside] = result[notes.start[inside], notes.row[inside]]
    kept = cell & ~melody
    covered = np.zeros_like(result)
    for mask in (melody, kept):
        for s, e, r in zip(notes.start[mask], np.minimum(notes.end[mask], steps), notes.row[mask]):
            covered[s:e, r] = True
    added = result & ~covered

    def track_of(mask, name, program, is_drum=False):
        t = Track(name=name, program=int(program), is_drum=is_drum)
        if mask.any():
            t.notes = Note.from_numpy(
                time=notes.start_tick[mask].astype(np.int32),
                duration=np.maximum(notes.end_tick[mask] - notes.start_tick[mask], 1).astype(np.int32),
                pitch=(notes.row[mask] + settings.lowest_pitch).astype(np.int8),
                velocity=np.clip(notes.velocity[mask], 1, 127).astype(np.int8))
        return t

    for k, (name, program) in enumerate(notes.tracks):
        mine = notes.track == k
        if (melody & mine).any():
            out.tracks.append(track_of(melody & mine, name or "melody", program))
        if (kept & mine).any():
            out.tracks.append(track_of(kept & mine, name or f"track {k + 1}", program))

    start, end, rows = _runs(added)
    if len(start):
        velocity = local_velocity(start, notes, settings.steps_per_bar)
        pitch = rows + settings.lowest_pitch
        for part, mask in (("chords", pitch >= row["bass_below"]), ("bass", pitch < row["bass_below"])):
            if not mask.any():
                continue
            t = Track(name=f"{target} {part}", program=int(row[part]), is_drum=False)
            t.notes = Note.from_numpy(
                time=(start[mask] * tpq // spb).astype(np.int32),
                duration=np.maximum((end[mask] - start[mask]) * tpq // spb, 1).astype(np.int32),
                pitch=pitch[mask].astype(np.int8), velocity=velocity[mask].astype(np.int8))
            out.tracks.append(t)
    if keep_drums:
        for t in score.tracks:
            if t.is_drum and len(t.notes):
                out.tracks.append(t.copy())
    return out


def score_to_pretty_midi(score):
    """A ``symusic`` score as ``pretty_midi.PrettyMIDI`` (through its MIDI bytes)."""
    import io

    import pretty_midi

    return pretty_midi.PrettyMIDI(io.BytesIO(score.dumps_midi()))
