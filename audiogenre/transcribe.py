"""Recorded audio → MIDI on the 16th-note grid: basic-pitch (ONNX) notes, a beat grid, quantisation.

Three steps, each a function of its own:

1. **Notes** (:func:`detect_notes`): Spotify's basic-pitch (Bittner et al., ICASSP 2022), the
   model file ``nmp.onnx`` (230 KB) that ships inside the ``basic-pitch`` wheel, run by
   onnxruntime on 2-second windows of 22 050 Hz mono audio exactly as basic-pitch's own
   ``run_inference`` does (same window, hop, overlap and unwrapping); the frame/onset
   activations are turned into notes by basic-pitch's own ``output_to_notes_polyphonic``
   (its defaults: onset threshold 0.5, frame threshold 0.3, notes ≥ 11 frames ≈ 128 ms).
   TensorFlow is never imported: basic-pitch is installed without its dependencies
   (README, "Transcription").
2. **Grid** (:func:`beat_grid`): a constant-tempo 4/4 grid fitted to the note onsets. The
   first tempo estimate is the toolkit's own (:func:`tempo_from_onsets`: a comb over 40–240 bpm
   of the weighted onsets on the beat, 8th and 16th, with a log-normal prior around 120 bpm) or,
   with ``tracker="librosa"``, librosa's beat tracker (Ellis 2007); either is then refined on all
   onsets to a hundredth of a bpm (:func:`fit_onsets`), and the downbeat is the beat phase (of
   four) on which the most note weight falls. ``bpm`` and ``downbeat`` override.
   ``benchmarks/transcription.py`` measures the two trackers, with and without the refinement.
3. **Quantisation** (:func:`quantise`): each note start and end goes to the nearest 16th of that
   grid; the MIDI (:func:`grid_midi`) carries the tempo and a 4/4 signature from bar 1, so
   ``genre midi prepare`` and the symbolic transfer read it as they read any 4/4 song.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import logging
import os
from pathlib import Path

import numpy as np

from shared.errors import GenreError

#: basic-pitch's model input: 22 050 Hz mono, windows of 43 844 samples, 256-sample frames.
BP_RATE = 22_050
BP_HOP = 256
BP_WINDOW = BP_RATE * 2 - BP_HOP
BP_OVERLAP_FRAMES = 30
BP_MIDI_OFFSET = 21  # the lowest row of the note activations is A0
BP_VERSION = "0.4.0"

INSTALL_HINT = (f"install the transcription extra: pip install --no-deps basic-pitch=={BP_VERSION} && "
                "pip install -e '.[transcribe]' (scripts/setup.sh does both)")

#: Below this peak (−66 dBFS) a file is taken as silence.
SILENCE_PEAK = 5e-4
#: "No pitched music" (noise, drums only): fewer than MIN_NOTES notes, or fewer than
#: MIN_PITCHED of the frames with a note activation above 0.5. Measured on 20 s clips: white and
#: brown noise and a FluidSynth drum kit (with toms) 0.0–0.6 %, five rendered jazz, classical,
#: folk and pop songs 64–99 % (the few notes found in noise and drums are quiet and short).
MIN_NOTES = 8
MIN_PITCHED = 0.05

STEPS_PER_BEAT = 4
BEATS_PER_BAR = 4
PHRASE_BARS = 4

logger = logging.getLogger(__name__)


# ----------------------------------------------------------------------------- basic-pitch

def _basic_pitch_folder() -> Path:
    """The installed basic_pitch package folder, found without importing it (its ``__init__``
    imports TensorFlow, CoreML and TFLite when present and logs a warning for each one missing)."""
    spec = importlib.util.find_spec("basic_pitch")
    if spec is None or not spec.submodule_search_locations:
        raise GenreError(f"basic-pitch is not installed: {INSTALL_HINT}")
    return Path(next(iter(spec.submodule_search_locations)))


def model_path() -> Path:
    """``basic_pitch/saved_models/icassp_2022/nmp.onnx`` of the installed wheel."""
    path = _basic_pitch_folder() / "saved_models" / "icassp_2022" / "nmp.onnx"
    if not path.is_file():
        raise GenreError(f"basic-pitch is installed but its ONNX model {path} is missing: {INSTALL_HINT}")
    return path


_SESSIONS: dict[int, object] = {}


def _session(threads: int | None = None):
    """A process-wide onnxruntime session of the model (per thread count)."""
    key = int(threads or 0)
    if key not in _SESSIONS:
        try:
            import onnxruntime as ort
        except ImportError:
            raise GenreError(f"onnxruntime is not installed: {INSTALL_HINT}") from None
        opts = ort.SessionOptions()
        if threads:
            opts.intra_op_num_threads = int(threads)
            opts.inter_op_num_threads = 1
        opts.log_severity_level = 3
        _SESSIONS[key] = ort.InferenceSession(str(model_path()), sess_options=opts, providers=["CPUExecutionProvider"])
    return _SESSIONS[key]


def activations(wave: np.ndarray, *, threads: int | None = None, batch: int = 8, progress=None) -> dict[str, np.ndarray]:
    """basic-pitch's frame-wise outputs for 22 050 Hz mono audio.

    Returns ``{"note": (T, 88), "onset": (T, 88), "contour": (T, 264)}`` float32, T frames of
    256 samples; the windowing and unwrapping are those of ``basic_pitch.inference.run_inference``.
    """
    from shared.progress import progress_callback

    report = progress_callback(progress)
    sess = _session(threads)
    wave = np.asarray(wave, dtype=np.float32)
    overlap = BP_OVERLAP_FRAMES * BP_HOP
    hop = BP_WINDOW - overlap
    padded = np.concatenate([np.zeros(overlap // 2, np.float32), wave])
    starts = list(range(0, len(padded), hop))
    outs: dict[str, list[np.ndarray]] = {"note": [], "onset": [], "contour": []}
    names = ["StatefulPartitionedCall:1", "StatefulPartitionedCall:2", "StatefulPartitionedCall:0"]
    report("transcribing", 0, len(starts))
    for i in range(0, len(starts), batch):
        chunk = np.zeros((len(starts[i:i + batch]), BP_WINDOW, 1), np.float32)
        for j, s in enumerate(starts[i:i + batch]):
            w = padded[s:s + BP_WINDOW]
            chunk[j, :len(w), 0] = w
        for k, v in zip(("note", "onset", "contour"), sess.run(names, {"serving_default_input_2:0": chunk})):
            outs[k].append(v)
        report("transcribing", min(i + batch, len(starts)), len(starts))
    n_frames = int(np.floor(len(wave) * ((BP_RATE // BP_HOP) / BP_RATE)))
    half = BP_OVERLAP_FRAMES // 2
    result = {}
    for k, v in outs.items():
        v = np.concatenate(v)[:, half:-half, :]
        result[k] = v.reshape(-1, v.shape[-1])[:n_frames]
    return result


def frame_times(n_frames: int) -> np.ndarray:
    """Seconds of each output frame (basic-pitch's ``model_frames_to_time``: the unwrapped
    windows are 172 frames for 171.27 frames of audio, so each window shifts its frames a little)."""
    window_frames = 2 * (BP_RATE // BP_HOP)
    window_offset = (BP_HOP / BP_RATE) * (window_frames - BP_WINDOW / BP_HOP) + 0.0018  # basic-pitch's alignment constant
    idx = np.arange(n_frames)
    return idx * BP_HOP / BP_RATE - window_offset * np.floor(idx / window_frames)


def _inferred_onsets(onsets: np.ndarray, frames: np.ndarray, n_diff: int = 2) -> np.ndarray:
    """Onsets where the frame activation jumps, rescaled to the onsets' maximum, merged by max."""
    diffs = []
    for n in range(1, n_diff + 1):
        shifted = np.concatenate([np.zeros((n, frames.shape[1])), frames])
        diffs.append(shifted[n:, :] - shifted[:-n, :])
    diff = np.min(diffs, axis=0)
    diff[diff < 0] = 0
    diff[:n_diff, :] = 0
    top = np.max(diff)
    if top > 0:
        diff = np.max(onsets) * diff / top
    return np.maximum(onsets, diff)


def _walk(energy: np.ndarray, t: int, f: int, step: int, stop: int, threshold: float, tol: int, clear: bool) -> tuple[int, int]:
    """Follow pitch row ``f`` from frame ``t`` in direction ``step`` until ``tol`` frames in a row fall
    below ``threshold``; returns (the frame reached, frames below threshold at the end)."""
    last = energy.shape[1] - 1
    i, k = t, 0
    while (i < stop if step > 0 else i > stop) and k < tol:
        k = k + 1 if energy[i, f] < threshold else 0
        if clear:
            energy[i, f] = 0
            if f < last:
                energy[i, f + 1] = 0
            if f > 0:
                energy[i, f - 1] = 0
        i += step
    return i, k


def decode_notes(frames: np.ndarray, onsets: np.ndarray, *, onset_threshold: float = 0.5, frame_threshold: float = 0.3,
                 min_note_frames: int = 11, energy_tol: int = 11, melodia_trick: bool = True) -> list[tuple[int, int, int, float]]:
    """basic-pitch's ``output_to_notes_polyphonic`` (basic-pitch 0.4.0, note_creation.py,
    Copyright 2022 Spotify AB, Apache License 2.0), ported so that its module, which imports
    resampy, mir_eval and librosa at import time, is not needed: ``(start frame, end frame,
    MIDI pitch, amplitude)`` per note.

    Onset peaks above ``onset_threshold`` start notes (latest first), each lasting while the frame
    activation stays above ``frame_threshold`` (``energy_tol`` frames of grace); with the
    "melodia trick" the strongest remaining activations then become notes too.
    """
    n_frames = frames.shape[0]
    onsets = _inferred_onsets(onsets, frames)
    # scipy.signal.argrelmax(onsets, axis=0) (strict local maxima in time, never the first or last
    # frame) in NumPy: importing scipy.signal takes seconds
    peaks = np.zeros(onsets.shape)
    inner = onsets[1:-1]
    at = np.nonzero((inner > onsets[:-2]) & (inner > onsets[2:]))
    at = (at[0] + 1, at[1])
    peaks[at] = onsets[at]
    t_idx, f_idx = np.where(peaks >= onset_threshold)
    energy = frames.astype(np.float64).copy()
    last = frames.shape[1] - 1
    events = []
    for t, f in zip(t_idx[::-1], f_idx[::-1]):  # backwards in time
        if t >= n_frames - 1:
            continue
        i, k = _walk(energy, t + 1, f, 1, n_frames - 1, frame_threshold, energy_tol, clear=False)
        i -= k
        if i - t <= min_note_frames:
            continue
        energy[t:i, f] = 0
        if f < last:
            energy[t:i, f + 1] = 0
        if f > 0:
            energy[t:i, f - 1] = 0
        events.append((int(t), int(i), int(f) + BP_MIDI_OFFSET, float(np.mean(frames[t:i, f]))))
    if melodia_trick:
        while np.max(energy) > frame_threshold:
            t, f = np.unravel_index(np.argmax(energy), energy.shape)
            energy[t, f] = 0
            i, k = _walk(energy, t + 1, f, 1, n_frames - 1, frame_threshold, energy_tol, clear=True)
            end = i - 1 - k
            i, k = _walk(energy, t - 1, f, -1, 0, frame_threshold, energy_tol, clear=True)
            start = i + 1 + k
            if end - start <= min_note_frames:
                continue
            events.append((int(start), int(end), int(f) + BP_MIDI_OFFSET, float(np.mean(frames[start:end, f]))))
    return events


def pitched_share(act: dict[str, np.ndarray], threshold: float = 0.5) -> float:
    """Share of frames in which some pitch's note activation is above ``threshold``."""
    return float((act["note"].max(axis=1) > threshold).mean()) if len(act["note"]) else 0.0


def detect_notes(act: dict[str, np.ndarray], *, onset_threshold: float = 0.5, frame_threshold: float = 0.3,
                 min_note_frames: int = 11) -> np.ndarray:
    """Notes from :func:`activations` (basic-pitch's defaults): float64 ``(n, 4)`` start s, end s,
    MIDI pitch, amplitude in [0, 1], in time order."""
    if len(act["note"]) < 3:
        return np.zeros((0, 4))
    events = decode_notes(act["note"], act["onset"], onset_threshold=onset_threshold,
                          frame_threshold=frame_threshold, min_note_frames=min_note_frames)
    if not events:
        return np.zeros((0, 4))
    times = frame_times(act["note"].shape[0])
    ev = np.asarray([(times[s], times[e], p, a) for s, e, p, a in events], dtype=np.float64)
    return ev[np.lexsort((ev[:, 2], ev[:, 0]))]


# ----------------------------------------------------------------------------- beat grid

@dataclasses.dataclass(frozen=True)
class Grid:
    """A constant-tempo 4/4 grid: bar 1 starts at ``origin`` seconds (may be negative)."""

    tempo: float
    origin: float
    beats: np.ndarray  # the tracker's beat times (for reports); empty when none were tracked
    source: str  # how the tempo was found: "onsets", "librosa+onsets", "librosa" (beats alone), "given"

    @property
    def step_seconds(self) -> float:
        return 60.0 / (self.tempo * STEPS_PER_BEAT)

    @property
    def phrase_seconds(self) -> float:
        return PHRASE_BARS * BEATS_PER_BAR * 60.0 / self.tempo


def track_beats(wave: np.ndarray, rate: int, *, bpm: float | None = None) -> tuple[float, np.ndarray]:
    """librosa's beat tracker: ``(tempo in bpm, beat times in s)``; with ``bpm`` the tempo is fixed
    and only the beats are placed."""
    try:
        import librosa
    except ImportError:
        raise GenreError(f"librosa is not installed: {INSTALL_HINT}") from None
    kw = {"bpm": float(bpm)} if bpm else {}
    tempo, beats = librosa.beat.beat_track(y=np.asarray(wave, np.float32), sr=rate, hop_length=512, units="time", **kw)
    return float(np.atleast_1d(tempo)[0]), np.asarray(beats, dtype=np.float64)


def fit_grid(beats: np.ndarray, fallback_tempo: float) -> tuple[float, float]:
    """``(tempo, phase)``: the least-squares line through beat times against beat number.

    The line averages out the frame grid (23 ms) the beats are placed on, but not the tracker's
    own tempo: its beats follow its estimate, which was 3 % off on a rendered chorale here (the
    notes drift off a 16th within a few bars), hence :func:`fit_onsets`. Fewer than four beats:
    the tracker's tempo and the first beat (or 0).
    """
    beats = np.asarray(beats, dtype=np.float64)
    if len(beats) < 4:
        return float(fallback_tempo), float(beats[0]) if len(beats) else 0.0
    # number the beats by the median period, so a beat the tracker skipped keeps the count right
    period = float(np.median(np.diff(beats)))
    k = np.round((beats - beats[0]) / period)
    slope, intercept = np.polyfit(k, beats, 1)
    return 60.0 / float(slope), float(intercept)


#: Added to the share of note weight of the beat phase the first clear note falls on (see
#: :func:`choose_downbeat`). One value tried, on 100 training songs' true notes at their true tempo
#: (25 per genre): bar lines right in 84 % of the songs, against 61 % by weight alone and 56 % by
#: the first note alone (Bach chorales put their weight off the file's bar lines; reels start with
#: a pickup).
FIRST_NOTE_BONUS = 0.15


def choose_downbeat(notes: np.ndarray, tempo: float, phase: float) -> float:
    """The first downbeat: of the four beat phases of the grid ``phase + k·beat``, the one with the
    largest share of the note weight (:func:`onset_weights`: long and loud notes, bass and chords,
    count most) plus :data:`FIRST_NOTE_BONUS` for the phase of the first clear note (the first
    at least as loud as the median: a piece usually starts on a bar line), moved back by whole
    bars to before the first note."""
    beat = 60.0 / tempo
    if len(notes) == 0:
        return phase
    k = (notes[:, 0] - phase) / beat
    near = np.abs(k - np.round(k)) < 0.125  # within a 32nd of a beat
    w = onset_weights(notes, tempo)
    idx = np.round(k).astype(np.int64) % BEATS_PER_BAR
    score = np.bincount(idx[near], weights=w[near], minlength=BEATS_PER_BAR)
    score = score / score.sum() if score.sum() > 0 else score
    clear = notes[:, 3] >= np.median(notes[:, 3])
    first = int(np.argmin(np.where(clear, notes[:, 0], np.inf)))
    if near[first]:
        score[idx[first]] += FIRST_NOTE_BONUS
    origin = phase + int(np.argmax(score)) * beat
    return bar_before(origin, float(notes[:, 0].min()), tempo)


def bar_before(origin: float, first_onset: float, tempo: float) -> float:
    """``origin`` moved by whole bars to the last bar line at or before ``first_onset`` (less
    half a 16th, so a note played a little early still falls on the bar)."""
    bar = BEATS_PER_BAR * 60.0 / tempo
    half_step = 60.0 / (tempo * STEPS_PER_BEAT) / 2
    return origin - np.ceil((origin - (first_onset + half_step)) / bar) * bar


def onset_weights(notes: np.ndarray, tempo: float) -> np.ndarray:
    """Weight of each note in the grid fits: amplitude × (1 + its length in beats, at most 4), so
    long and loud notes (bass, chords, melody on the beat) count more than quick passing notes."""
    beat = 60.0 / tempo
    return notes[:, 3] * (1.0 + np.minimum((notes[:, 1] - notes[:, 0]) / beat, 4.0))


def _comb(t: np.ndarray, w: np.ndarray, cands: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(score, z_1)`` per candidate tempo: ``z_h = Σ w_i exp(2πi·h·t_i·T/60)``,
    ``score = (|z_1| + |z_2|/2 + |z_4|/4) / Σw`` (1.75 when every onset is on a beat)."""
    score = np.empty(len(cands))
    z1 = np.empty(len(cands), complex)
    total = float(w.sum()) or 1.0
    for i in range(0, len(cands), 256):  # (candidates × notes) in blocks: bounded memory for long songs
        angle = 2 * np.pi * t[None, :] * cands[i:i + 256, None] / 60.0
        z = (w * np.exp(1j * angle)).sum(axis=1)
        score[i:i + 256] = (np.abs(z) + np.abs((w * np.exp(2j * angle)).sum(axis=1)) / 2
                            + np.abs((w * np.exp(4j * angle)).sum(axis=1)) / 4) / total
        z1[i:i + 256] = z
    return score, z1


def fit_onsets(notes: np.ndarray, tempo: float, *, span: float = 0.06, resolution: float = 0.01,
               fixed: bool = False) -> tuple[float, float]:
    """``(tempo, phase)`` of the constant-tempo grid the note onsets fit best, near ``tempo``.

    For each candidate tempo T within ±``span`` (steps of ``resolution`` bpm) the onsets
    ``t_i`` with weights ``w_i`` are wrapped onto the beat, the 8th and the 16th:
    ``z_h(T) = Σ w_i exp(2πi·h·t_i·T/60)``, score ``|z_1| + |z_2|/2 + |z_4|/4``. Over a clip of
    N beats the sums stay coherent only within about 1/N of the true tempo, so this corrects the
    few per cent a beat tracker can be off (its beats are placed on 23 ms frames and follow its
    own tempo estimate), which would otherwise drift notes off the grid within a few bars.
    ``fixed``: keep ``tempo``, fit only the phase. The phase is the time of a beat, from ``z_1``.
    """
    t = notes[:, 0]
    w = onset_weights(notes, tempo)
    cands = np.array([float(tempo)]) if fixed else np.arange(tempo * (1 - span), tempo * (1 + span), resolution)
    score, z1 = _comb(t, w, cands)
    k = int(np.argmax(score))
    best = float(cands[k])
    beat = 60.0 / best
    return best, float((np.angle(z1[k]) / (2 * np.pi)) * beat % beat)


#: The tempo prior of :func:`tempo_from_onsets`: log-normal around 120 bpm, one octave wide
#: (librosa's beat tracker uses the same), to choose among a tempo, its double and its half.
PRIOR_BPM, PRIOR_OCTAVES = 120.0, 1.0


def tempo_from_onsets(notes: np.ndarray, *, lo: float = 40.0, hi: float = 240.0, window: float = 45.0) -> float:
    """The toolkit's own tempo estimate: the comb of :func:`fit_onsets` over every tempo from
    ``lo`` to ``hi`` (steps of 0.2 %) on the note onsets of the first ``window`` seconds of notes,
    times a log-normal prior around 120 bpm; :func:`fit_onsets` then refines it on all notes."""
    first = notes[:, 0].min()
    part = notes[notes[:, 0] < first + window]
    cands = lo * np.exp(np.arange(0, np.log(hi / lo), 0.002))
    score, _ = _comb(part[:, 0], onset_weights(part, PRIOR_BPM), cands)
    prior = np.exp(-0.5 * (np.log2(cands / PRIOR_BPM) / PRIOR_OCTAVES) ** 2)
    return float(cands[int(np.argmax(score * prior))])


#: How the tempo is found: ``onsets`` (the toolkit's own: :func:`tempo_from_onsets`, no
#: audio analysis beyond the notes) or ``librosa`` (librosa's beat tracker, then the onset fit).
TRACKERS = ("onsets", "librosa")


def beat_grid(wave: np.ndarray | None, rate: int, notes: np.ndarray, *, bpm: float | None = None,
              downbeat: float | None = None, tracker: str = "onsets", refine: bool = True) -> Grid:
    """The 4/4 grid of a recording (see the module docstring).

    ``tracker`` gives the first tempo estimate: ``onsets`` (:func:`tempo_from_onsets`) or
    ``librosa`` (the line through librosa's beats); with ``refine`` (the default) the tempo and
    phase are then fitted to the note onsets (:func:`fit_onsets`). ``bpm`` fixes the tempo (only the
    phase is fitted). ``benchmarks/transcription.py`` measures the trackers against each other.
    """
    if tracker not in TRACKERS:
        raise GenreError(f"unknown tracker {tracker!r}: use one of {', '.join(TRACKERS)}")
    beats = np.zeros(0)
    if len(notes) < 4 and not bpm:
        raise GenreError("too few notes to find the tempo; pass --bpm")
    if bpm:
        tempo = float(bpm)
    elif tracker == "librosa":
        tracked, beats = track_beats(wave, rate)
        tempo, _ = fit_grid(beats, tracked)
    else:
        tempo = tempo_from_onsets(notes)
    if not (np.isfinite(tempo) and tempo > 0):
        raise GenreError("no tempo could be estimated; pass --bpm")
    if refine or bpm:
        tempo, phase = fit_onsets(notes, tempo, fixed=bool(bpm))
    elif tracker == "librosa":  # the tracker's grid as it is: the line through its beats
        tempo, phase = fit_grid(beats, tempo)
    else:  # the comb's tempo as it is (0.2 % steps), only the phase fitted
        tempo, phase = fit_onsets(notes, tempo, fixed=True)
    first = float(notes[:, 0].min()) if len(notes) else 0.0
    if downbeat is not None:
        origin = bar_before(float(downbeat), first, tempo)
    else:
        origin = choose_downbeat(notes, tempo, phase)
    source = "given" if bpm else tracker + ("+onsets" if refine and tracker == "librosa" else "")
    return Grid(tempo=float(tempo), origin=float(origin), beats=beats, source=source)


# ----------------------------------------------------------------------------- quantisation

def quantise(notes: np.ndarray, tempo: float, origin: float = 0.0, *, steps_per_beat: int = STEPS_PER_BEAT) -> np.ndarray:
    """Put notes on the grid: int64 ``(n, 4)`` start step, end step, pitch, velocity (1..127).

    Step ``s`` is the time ``origin + s·60/(tempo·steps_per_beat)``; starts and ends go to the
    nearest step (a note keeps at least one), velocity is ``round(127·amplitude)``. Notes of one
    pitch that now start on one step become one (the longest, loudest), and a note is cut where
    the next one of its pitch starts (MIDI cannot hold one pitch twice on one channel). Steps
    before 0 (notes before ``origin``) are dropped.
    """
    notes = np.asarray(notes, dtype=np.float64).reshape(-1, 4)
    step = 60.0 / (tempo * steps_per_beat)
    on = np.floor((notes[:, 0] - origin) / step + 0.5).astype(np.int64)
    off = np.floor((notes[:, 1] - origin) / step + 0.5).astype(np.int64)
    off = np.maximum(off, on + 1)
    vel = np.clip(np.round(127 * notes[:, 3]), 1, 127).astype(np.int64)
    q = np.stack([on, off, notes[:, 2].astype(np.int64), vel], axis=1)
    q = q[q[:, 0] >= 0]
    if len(q) == 0:
        return q.reshape(0, 4)
    # by pitch, then start, longest and loudest first: keep the first of each (pitch, start)
    q = q[np.lexsort((-q[:, 3], -q[:, 1], q[:, 0], q[:, 2]))]
    first = np.ones(len(q), bool)
    first[1:] = (q[1:, 2] != q[:-1, 2]) | (q[1:, 0] != q[:-1, 0])
    q = q[first]
    same = np.zeros(len(q), bool)
    same[:-1] = q[1:, 2] == q[:-1, 2]
    nxt = np.roll(q[:, 0], -1)
    q[same, 1] = np.minimum(q[same, 1], nxt[same])
    return q[np.lexsort((q[:, 2], q[:, 0]))]


def grid_midi(qnotes: np.ndarray, tempo: float, *, program: int = 0, name: str = "Transcription",
              steps_per_beat: int = STEPS_PER_BEAT):
    """A ``pretty_midi.PrettyMIDI`` of quantised notes: one track, the tempo and 4/4 at bar 1,
    and an "all notes off" at the end of the last bar, so the song lasts whole bars."""
    import pretty_midi

    # as midigenre.pianoroll.roll_to_midi: a tempo whose truncation by pretty_midi is the nearest
    # whole µs per quarter note, so reading the file back gives the same grid
    mspq = max(1, round(6e7 / float(tempo)))
    tempo = 6e7 / (mspq + 0.5)
    pm = pretty_midi.PrettyMIDI(resolution=480, initial_tempo=tempo)
    pm.time_signature_changes.append(pretty_midi.TimeSignature(4, 4, 0.0))
    inst = pretty_midi.Instrument(program=program, is_drum=False, name=name)
    step = 60.0 / (tempo * steps_per_beat)
    for on, off, pitch, vel in np.asarray(qnotes, dtype=np.int64).tolist():
        if 0 <= pitch <= 127:
            inst.notes.append(pretty_midi.Note(velocity=int(vel), pitch=int(pitch), start=on * step, end=off * step))
    if len(qnotes):
        bar = steps_per_beat * BEATS_PER_BAR
        end = int(np.ceil(int(np.max(qnotes[:, 1])) / bar) * bar)
        inst.control_changes.append(pretty_midi.ControlChange(number=123, value=0, time=end * step))
    pm.instruments.append(inst)
    return pm


# ----------------------------------------------------------------------------- the whole step

@dataclasses.dataclass
class Transcription:
    """A recording on the grid.

    Attributes
    ----------
    notes : (n, 4) float64, start s, end s, pitch, amplitude, as heard (in the file's time).
    grid : the 4/4 grid (tempo, first downbeat).
    qnotes : (m, 4) int64, start step, end step, pitch, velocity, on that grid (step 0 = ``grid.origin``).
    seconds, rate : the recording's length and sample rate.
    """

    notes: np.ndarray
    grid: Grid
    qnotes: np.ndarray
    seconds: float
    rate: int

    @property
    def tempo(self) -> float:
        return self.grid.tempo

    def midi(self):
        return grid_midi(self.qnotes, self.grid.tempo)

    def summary(self) -> dict:
        return {"tempo": round(self.grid.tempo, 2), "tempo_source": self.grid.source,
                "downbeat": round(self.grid.origin, 3), "notes": len(self.notes),
                "notes_on_grid": len(self.qnotes), "seconds": round(self.seconds, 3), "rate": self.rate}


def transcribe_audio(samples: np.ndarray, rate: int, *, bpm: float | None = None, downbeat: float | None = None,
                     tracker: str = "onsets", name: str = "the audio", threads: int | None = None,
                     progress=None) -> Transcription:
    """Transcribe ``(frames[, channels])`` float audio onto a 4/4 16th-note grid.

    Raises GenreError (one line) for silence, for audio in which no pitched music is found
    (noise, drums only), and for a clip shorter than one 4-bar phrase at its tempo.
    """
    from audiogenre.audio import resample, to_mono

    if bpm is not None and not (20 <= bpm <= 400):
        raise GenreError(f"--bpm {bpm:g} is outside 20..400")
    mono = to_mono(samples)
    seconds = len(mono) / float(rate)
    if len(mono) == 0 or float(np.max(np.abs(mono))) < SILENCE_PEAK:
        raise GenreError(f"{name} is silent (peak below {20 * np.log10(SILENCE_PEAK):.0f} dBFS): nothing to transcribe")
    peak = float(np.max(np.abs(mono)))
    if peak > 1.0:  # a float file beyond full scale: heard as it would be played, normalised
        mono = mono / peak
    wave = resample(mono, int(rate), BP_RATE)
    act = activations(wave, threads=threads, progress=progress)
    notes = detect_notes(act)
    pitched = pitched_share(act)
    if len(notes) < MIN_NOTES or pitched < MIN_PITCHED:
        raise GenreError(f"no pitched music found in {name} ({len(notes)} notes in {seconds:.1f} s, a clear pitch in "
                         f"{pitched:.1%} of it): is it noise, or drums only? Transcription needs melody or chords")
    grid = beat_grid(wave, BP_RATE, notes, bpm=bpm, downbeat=downbeat, tracker=tracker)
    if seconds < grid.phrase_seconds:
        raise GenreError(f"{name} is {seconds:.1f} s long, shorter than one {PHRASE_BARS}-bar phrase at "
                         f"{grid.tempo:.0f} bpm ({grid.phrase_seconds:.1f} s); the transfer works on {PHRASE_BARS}-bar phrases"
                         + ("" if bpm else " (pass --bpm if the tempo is wrong)"))
    qnotes = quantise(notes, grid.tempo, grid.origin)
    return Transcription(notes=notes, grid=grid, qnotes=qnotes, seconds=seconds, rate=int(rate))


def transcribe_file(song: str | os.PathLike, output: str | os.PathLike | None = None, *, bpm: float | None = None,
                    downbeat: float | None = None, tracker: str = "onsets", threads: int | None = None,
                    progress=None) -> Transcription:
    """Transcribe an audio file; with ``output``, write the grid MIDI there (atomically)."""
    from audiogenre.audio import load_audio
    from midigenre.pianoroll import write_midi
    from shared.atomic import check_writable_dir, refuse_overwriting_input

    if output is not None:
        refuse_overwriting_input([song], output)
        if Path(output).suffix.lower() not in (".mid", ".midi"):
            raise GenreError(f"-o {output}: the transcription is MIDI, name it .mid")
        check_writable_dir(output)
    audio = load_audio(song)
    result = transcribe_audio(audio.samples, audio.rate, bpm=bpm, downbeat=downbeat, tracker=tracker, name=str(song),
                              threads=threads, progress=progress)
    if output is not None:
        write_midi(result.midi(), output)
    return result
