"""MIDI ⇄ binary piano rolls on the file's own beat grid, and rolls ⇄ 64×84 phrases.

The grid follows Brunner et al. (2018): 4 steps per beat (16 per 4/4 bar), 4-bar phrases of
64 steps, MIDI pitches 24–107 as 84 rows, drum tracks removed, all other tracks merged into
one binary roll (a sounding note is 1, velocity is not kept).

Positions come from MIDI ticks, so the grid follows the file's tempo map: a note at tick
``t`` in a file with ``tpq`` ticks per quarter note starts at step ``round(t * 4 / tpq)``
whatever the tempo is at that point. Seconds are never used.

Parsing uses symusic (a compiled parser, ~100× faster than pretty_midi on real files);
writing uses pretty_midi, whose files carry tempo and time signature so that notation
software reads valid beat timing.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

import numpy as np

from shared.errors import GenreError

#: How to treat time signatures (see ``RollSettings.meter`` and the README).
METER_MODES = ("strict", "lenient", "assume-4/4")


@dataclass(frozen=True)
class RollSettings:
    """Everything that decides which phrases a MIDI file turns into.

    The defaults are the reference's (Brunner et al. 2018). The settings and their hash are
    stored in every cache, and a cache built with other settings is never mixed with these.

    Attributes
    ----------
    steps_per_beat : int
        Grid resolution; 4 gives 16 steps per 4/4 bar.
    bars_per_phrase : int
        Phrase length in 4/4 bars; 4 gives 64-step phrases.
    lowest_pitch, n_pitches : int
        Pitch window: MIDI 24 (C1) to 107 (B7) is 84 rows. Notes outside are dropped.
    meter : {"strict", "lenient", "assume-4/4"}
        ``strict`` (Brunner's rule): exactly one time signature, 4/4, at tick 0 (identical
        events repeated in several tracks count once). ``lenient``: every time signature is
        4/4 and the first is at tick 0 (repeated 4/4 events are fine; a file without any is
        4/4 by the MIDI standard). ``assume-4/4``: ignore time signatures and read 4 beats
        per bar from tick 0 — for collections whose beat grid is right but whose signatures
        are not (POP909 writes 1/4).
    keep_drums : bool
        Keep drum-channel notes (off by default, as in the reference).
    max_bars : int
        Files whose notes reach beyond this many bars are dropped as "too long": a guard
        against corrupt files with absurd note times (4096 bars is over 2 h at 120 bpm).
    """

    steps_per_beat: int = 4
    bars_per_phrase: int = 4
    lowest_pitch: int = 24
    n_pitches: int = 84
    meter: str = "strict"
    keep_drums: bool = False
    max_bars: int = 4096

    beats_per_bar = 4  # the toolkit reads 4/4 only; not a field so it cannot be changed

    def __post_init__(self) -> None:
        if self.meter not in METER_MODES:
            raise GenreError(f"unknown meter mode {self.meter!r}; choose one of {', '.join(METER_MODES)}")
        for name in ("steps_per_beat", "bars_per_phrase", "n_pitches", "max_bars"):
            if getattr(self, name) < 1:
                raise GenreError(f"{name} must be at least 1, got {getattr(self, name)}")
        if not 0 <= self.lowest_pitch <= 127 or self.lowest_pitch + self.n_pitches > 128:
            raise GenreError(
                f"pitch window {self.lowest_pitch}..{self.lowest_pitch + self.n_pitches - 1} is outside MIDI 0..127"
            )

    @property
    def steps_per_bar(self) -> int:
        return self.steps_per_beat * self.beats_per_bar

    @property
    def phrase_steps(self) -> int:
        return self.steps_per_bar * self.bars_per_phrase

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "RollSettings":
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = set(d) - known
        if unknown:
            raise GenreError(f"unknown piano-roll settings {sorted(unknown)} (written by a newer version?)")
        return cls(**d)

    def hash(self) -> str:
        """A short, stable hash of the settings (order-independent JSON, SHA-256)."""
        blob = json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":")).encode()
        return hashlib.sha256(blob).hexdigest()[:16]

    def grid(self) -> dict:
        """The settings that shape a phrase (grid, length, pitch window, drums), without the
        reading rules (``meter``, ``max_bars``) that only decide which files are read: phrases
        of caches with the same grid can be mixed even when their genres were read by other meter
        rules (pop with ``assume-4/4``, the others ``lenient``)."""
        return {k: v for k, v in self.to_dict().items() if k not in READING_RULES}


#: Settings that decide which files are read, not what a phrase is (see :meth:`RollSettings.grid`).
READING_RULES = ("meter", "max_bars")


class Unusable(GenreError):
    """A MIDI file the pipeline skips; ``reason`` is a short key counted in reports."""

    def __init__(self, reason: str, detail: str = ""):
        self.reason = reason
        self.detail = detail
        super().__init__(f"{reason}: {detail}" if detail else reason)


# Reasons a file is dropped, in the order reports list them.
DROP_REASONS = (
    "unreadable",
    "empty file",
    "parse error",
    "no time signature",
    "not 4/4",
    "meter changes",
    "several time signatures",
    "first beat not at 0",
    "no notes",
    "drums only",
    "too long",
    "too short",
    "no notes in pitch range",
    "duplicate",
)


@dataclass
class Song:
    """One MIDI file on the step grid.

    Attributes
    ----------
    roll : (T, n_pitches) bool
        The whole song, T steps from tick 0 to the end of its last note or controller event.
    tempo : float
        Tempo at tick 0 in quarter notes per minute (120 when the file sets none).
    n_notes : int
        Pitched notes read (before the pitch window).
    n_outside : int
        Of those, the notes outside the pitch window: left out of ``roll`` (and of ``notes``).
    """

    roll: np.ndarray
    tempo: float
    n_notes: int
    #: the song's own notes and tracks (``read_song(..., keep_notes=True)``), for writing a result
    #: that keeps the source's instruments, velocities, timing and tempo map
    notes: "SongNotes | None" = None
    n_outside: int = 0


@dataclass
class SongNotes:
    """The pitched notes of a song inside the pitch window, one entry per note, and what a written
    result keeps of the file (:mod:`midigenre.arrangement`).

    Attributes
    ----------
    start, end : grid steps of each note (as in the roll; a note lasts at least one step).
    row : pitch row (MIDI pitch − lowest_pitch).
    start_tick, end_tick, velocity : the note as the file has it.
    track : index into ``tracks`` of the note's track.
    tracks : (name, program) of each pitched track with notes.
    score : the parsed file (``symusic.ScoreTick``): its tempo map, meter, drum tracks.
    """

    start: np.ndarray
    end: np.ndarray
    row: np.ndarray
    start_tick: np.ndarray
    end_tick: np.ndarray
    velocity: np.ndarray
    track: np.ndarray
    tracks: list
    score: object


def check_meter(time_signatures: Iterable[tuple[int, int, int]], mode: str) -> str | None:
    """Return the drop reason for a file's time signatures under ``mode``, or None if it is kept.

    Parameters
    ----------
    time_signatures : iterable of (tick, numerator, denominator)
    mode : one of METER_MODES
    """
    if mode == "assume-4/4":
        return None
    events = sorted(set(time_signatures))  # identical events in several tracks count once
    meters = {(n, d) for _, n, d in events}
    if not events:
        return None if mode == "lenient" else "no time signature"
    if len(meters) > 1:
        return "meter changes"
    if meters != {(4, 4)}:
        return "not 4/4"
    if events[0][0] != 0:
        return "first beat not at 0"
    if mode == "strict" and len(events) > 1:
        return "several time signatures"
    return None


def _parse(source: str | os.PathLike | bytes):
    from symusic import Score  # compiled parser; imported here so `genre --help` stays instant

    if isinstance(source, (bytes, bytearray)):
        data = bytes(source)
    else:
        try:
            data = Path(source).read_bytes()
        except OSError as err:
            raise Unusable("unreadable", f"{source}: {err.strerror or err}") from None
    if not data:
        raise Unusable("empty file")
    try:
        return Score.from_midi(data)
    except Exception as err:  # symusic raises RuntimeError with the parser's message
        msg = str(err).replace("MiniMidi: ", "").replace(": iostream error", "")
        raise Unusable("parse error", msg) from None


def read_song(source: str | os.PathLike | bytes, settings: RollSettings = RollSettings(), *,
              keep_notes: bool = False) -> Song:
    """Parse a MIDI file (path or bytes) into a :class:`Song` on the step grid; ``keep_notes``
    also keeps its notes and tracks (:class:`SongNotes`).

    Raises
    ------
    Unusable
        With the reason the file cannot be used under ``settings``: unreadable, not 4/4 under
        the meter rule, no (pitched) notes, too long, or no note inside the pitch window.
    """
    score = _parse(source)
    tpq = score.tpq
    if tpq <= 0:
        raise Unusable("parse error", f"invalid ticks per quarter note {tpq}")
    reason = check_meter(((ts.time, ts.numerator, ts.denominator) for ts in score.time_signatures), settings.meter)
    if reason:  # meter first: it is the rule users tune with --meter, and it is cheap
        raise Unusable(reason, _meter_text(score))

    starts, ends, pitches, velocities, owners, tracks = [], [], [], [], [], []
    n_drum = 0
    last_control = 0
    for track in score.tracks:
        if len(track.controls) and not (track.is_drum and not settings.keep_drums):
            last_control = max(last_control, int(track.controls.numpy()["time"].max()))
        if not len(track.notes):
            continue
        if track.is_drum and not settings.keep_drums:
            n_drum += len(track.notes)
            continue
        arr = track.notes.numpy()
        t = arr["time"].astype(np.int64)
        starts.append(t)
        ends.append(t + np.maximum(arr["duration"].astype(np.int64), 0))
        pitches.append(arr["pitch"].astype(np.int64))
        if keep_notes:
            velocities.append(arr["velocity"].astype(np.int64))
            owners.append(np.full(len(t), len(tracks), dtype=np.int64))
            tracks.append((str(track.name), int(track.program)))
    n_notes = int(sum(len(s) for s in starts))
    if n_notes == 0:
        raise Unusable("drums only" if n_drum else "no notes")
    start_tick = np.concatenate(starts)
    end_tick = np.concatenate(ends)
    pitch = np.concatenate(pitches)

    if int(start_tick.min()) < 0:
        raise Unusable("parse error", "negative note time")

    # Nearest grid step, halves rounded up; a note lasts at least one step.
    spb = settings.steps_per_beat
    s = (start_tick * spb * 2 + tpq) // (2 * tpq)
    e = (end_tick * spb * 2 + tpq) // (2 * tpq)
    e = np.maximum(e, s + 1)
    # A song lasts to its last note or controller event, so trailing rests written with an
    # end marker (roll_to_midi writes one) survive a round trip.
    total = max(int(e.max()), (last_control * spb * 2 + tpq) // (2 * tpq))
    if total > settings.max_bars * settings.steps_per_bar:  # checked before the roll is allocated
        bars = total // settings.steps_per_bar + 1
        raise Unusable("too long", f"notes reach bar {bars}, the limit is {settings.max_bars} (--max-bars)")
    row = pitch - settings.lowest_pitch
    inside = (row >= 0) & (row < settings.n_pitches)
    if not inside.any():  # an empty roll would "transfer" to nothing and score NaN
        lo, hi = settings.lowest_pitch, settings.lowest_pitch + settings.n_pitches - 1
        raise Unusable("no notes in pitch range", f"all {n_notes} notes lie outside MIDI {lo}..{hi}")
    roll = _fill(s[inside], e[inside], row[inside], total, settings.n_pitches)

    tempo = 120.0
    if len(score.tempos):
        tempos = score.tempos.numpy()
        k = int(np.argmin(tempos["time"]))  # stable: the first event at the earliest tick
        if tempos["time"][k] == 0 and tempos["mspq"][k] > 0:
            tempo = 6e7 / float(tempos["mspq"][k])
    notes = None
    if keep_notes:
        # a written result keeps this tempo map: a tempo of 0 µs per quarter is ignored there too
        # (120 bpm from the start, the earlier tempo on), as render does; pretty_midi divides by it
        if len(score.tempos) and (score.tempos.numpy()["mspq"] <= 0).any():
            score.tempos.filter(lambda t: t.mspq > 0, inplace=True)
        notes = SongNotes(start=s[inside], end=e[inside], row=row[inside], start_tick=start_tick[inside],
                          end_tick=end_tick[inside], velocity=np.concatenate(velocities)[inside],
                          track=np.concatenate(owners)[inside], tracks=tracks, score=score)
    return Song(roll=roll, tempo=tempo, n_notes=n_notes, notes=notes, n_outside=int(n_notes - inside.sum()))


def _meter_text(score) -> str:
    sigs = sorted({(ts.time, ts.numerator, ts.denominator) for ts in score.time_signatures})
    if not sigs:
        return "the file sets none"
    shown = ", ".join(f"{n}/{d} at tick {t}" for t, n, d in sigs[:4])
    return shown + (f" and {len(sigs) - 4} more" if len(sigs) > 4 else "")


def _fill(start: np.ndarray, end: np.ndarray, row: np.ndarray, total: int, n_rows: int) -> np.ndarray:
    """Binary (total, n_rows) roll with row[i] on over [start[i], end[i])."""
    length = end - start
    cells = int(length.sum())
    if cells <= total * n_rows:
        # Usual case: write every covered cell directly (6× faster than the cumsum below).
        roll = np.zeros(total * n_rows, dtype=bool)
        first = np.repeat(start * n_rows + row - np.cumsum(length) * n_rows + length * n_rows, length)
        roll[first + np.arange(cells) * n_rows] = True
        return roll.reshape(total, n_rows)
    # Long overlapping notes (more cells than the roll): +1/−1 at the note edges, then cumsum.
    size = (total + 1) * n_rows
    delta = np.bincount(start * n_rows + row, minlength=size) - np.bincount(end * n_rows + row, minlength=size)
    return np.cumsum(delta.reshape(total + 1, n_rows)[:total], axis=0, dtype=np.int32) > 0


def split_phrases(
    roll: np.ndarray, settings: RollSettings = RollSettings(), *, keep_empty: bool = False, pad_tail: bool = False
) -> tuple[np.ndarray, np.ndarray]:
    """Cut a song roll into non-overlapping phrases.

    Parameters
    ----------
    roll : (T, n_pitches) bool
    keep_empty : bool
        Keep phrases without notes (the cache drops them; whole-song transfer keeps them).
    pad_tail : bool
        Pad the trailing partial phrase with silence instead of dropping it.

    Returns
    -------
    phrases : (N, phrase_steps, n_pitches) bool
    index : (N,) int64
        Position of each phrase in the song (0 = first 4 bars).
    """
    steps = settings.phrase_steps
    n = -(-len(roll) // steps) if pad_tail else len(roll) // steps
    if pad_tail and len(roll) < n * steps:
        roll = np.concatenate([roll, np.zeros((n * steps - len(roll), roll.shape[1]), dtype=roll.dtype)])
    phrases = roll[: n * steps].reshape(n, steps, roll.shape[1]).astype(bool, copy=False)
    index = np.arange(n, dtype=np.int64)
    if not keep_empty:
        keep = phrases.any(axis=(1, 2))
        phrases, index = phrases[keep], index[keep]
    return phrases, index


def join_phrases(phrases: np.ndarray, index: np.ndarray | None = None) -> np.ndarray:
    """Lay phrases back on one time line: phrase ``k`` goes to position ``index[k]``; gaps are silent.

    Parameters
    ----------
    phrases : (N, S, P) array
    index : (N,) int, optional
        Song positions; default ``0..N-1`` (phrases in order, back to back).

    Returns
    -------
    (L * S, P) bool with L = max(index) + 1
    """
    phrases = np.asarray(phrases)
    if phrases.ndim == 2:
        phrases = phrases[None]
    n, steps, pitches = phrases.shape
    if index is None:
        return phrases.reshape(n * steps, pitches).astype(bool)
    index = np.asarray(index, dtype=np.int64)
    if len(index) != n or (n and index.min() < 0):
        raise ValueError("index must hold one non-negative position per phrase")
    length = int(index.max()) + 1 if n else 0
    song = np.zeros((length, steps, pitches), dtype=bool)
    song[index] = phrases > 0
    return song.reshape(length * steps, pitches)


def roll_to_midi(
    roll: np.ndarray,
    tempo: float = 120.0,
    settings: RollSettings = RollSettings(),
    *,
    velocity: int = 100,
    program: int = 0,
    name: str = "Piano",
    resolution: int = 480,
    threshold: float = 0.5,
):
    """Turn a roll (one phrase, several, or a whole song) into a ``pretty_midi.PrettyMIDI``.

    Each run of consecutive on-steps in a row becomes one note at ``velocity`` on a single
    piano track; the file carries the tempo and a 4/4 time signature at tick 0.

    Parameters
    ----------
    roll : (T, n_pitches) or (N, S, n_pitches) array
        Values above ``threshold`` are notes; phrases are played back to back.
    tempo : float
        Quarter notes per minute.
    """
    import pretty_midi

    roll = np.asarray(roll)
    if roll.ndim == 3:
        roll = roll.reshape(-1, roll.shape[-1])
    if roll.ndim != 2 or roll.shape[1] != settings.n_pitches:
        raise ValueError(f"expected a (T, {settings.n_pitches}) roll, got shape {roll.shape}")
    if not (tempo > 0 and np.isfinite(tempo)):
        raise ValueError(f"tempo must be positive, got {tempo}")
    on = roll > threshold
    # Runs per pitch: pad with silence at both ends so every run has an onset and an offset.
    padded = np.zeros((on.shape[0] + 2, on.shape[1]), dtype=np.int8)
    padded[1:-1] = on
    delta = np.diff(padded, axis=0).T  # (pitch, step): +1 at onsets, -1 at offsets
    pitch_on, step_on = np.nonzero(delta == 1)
    pitch_off, step_off = np.nonzero(delta == -1)  # same order: by pitch, then time

    # MIDI stores whole microseconds per quarter note and pretty_midi truncates: hand it a tempo
    # whose truncation is the nearest whole value, so write → read → write does not drift.
    mspq = max(1, round(6e7 / float(tempo)))
    tempo = 6e7 / (mspq + 0.5)
    pm = pretty_midi.PrettyMIDI(resolution=resolution, initial_tempo=tempo)
    pm.time_signature_changes.append(pretty_midi.TimeSignature(4, 4, 0.0))
    inst = pretty_midi.Instrument(program=program, is_drum=False, name=name)
    sec_per_step = 60.0 / (float(tempo) * settings.steps_per_beat)
    for p, a, b in zip(pitch_on.tolist(), step_on.tolist(), step_off.tolist()):
        inst.notes.append(
            pretty_midi.Note(velocity=velocity, pitch=p + settings.lowest_pitch, start=a * sec_per_step, end=b * sec_per_step)
        )
    inst.notes.sort(key=lambda n: (n.start, n.pitch))
    # "All notes off" at the end of the roll marks its length, trailing rests included.
    inst.control_changes.append(pretty_midi.ControlChange(number=123, value=0, time=len(on) * sec_per_step))
    pm.instruments.append(inst)
    return pm


def write_midi(pm, path: str | os.PathLike) -> Path:
    """Write a PrettyMIDI object atomically (temporary file, then rename)."""
    from shared.atomic import atomic_path

    path = Path(path)
    with atomic_path(path, suffix=".mid") as tmp:
        pm.write(str(tmp))
    return path


def phrases_of_file(
    source: str | os.PathLike | bytes, settings: RollSettings = RollSettings()
) -> tuple[np.ndarray, np.ndarray, float]:
    """Phrases of one MIDI file exactly as the cache stores them: ``(phrases, index, tempo)``.

    Raises Unusable("no notes in pitch range") or ("too short") when no phrase is left.
    """
    song = read_song(source, settings)  # raises "no notes in pitch range" for a song with none
    phrases, index = split_phrases(song.roll, settings)
    if len(phrases) == 0:
        bars = len(song.roll) / settings.steps_per_bar
        raise Unusable("too short", f"{bars:.1f} bars with notes in no full {settings.bars_per_phrase}-bar phrase")
    return phrases, index, song.tempo
