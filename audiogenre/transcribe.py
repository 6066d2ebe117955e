"""Recorded audio → MIDI on the 16th-note grid: basic-pitch (ONNX) notes, a beat grid, quantisation.

Three steps, each a function of its own:

1. **Notes** (:func:`detect_notes`): Spotify's basic-pitch (Bittner et al., ICASSP 2022), the
   model file ``nmp.onnx`` (230 KB) that ships inside the ``basic-pitch`` wheel, run by
   onnxruntime on 2-second windows of 22 050 Hz mono audio exactly as basic-pitch's own
   ``run_inference`` does (same window, hop, overlap and unwrapping); the frame/onset
   activations are turned into notes by basic-pitch's own ``output_to_notes_polyphonic``
   (its defaults: onset threshold 0.5, frame threshold 0.3, notes ≥ 11 frames ≈ 128 ms).
   TensorFlow is never imported: basic-pitch is installed without its dependencies
   (docs/recordings.md).
2. **Grid** (:func:`beat_grid`): the overall tempo first — the toolkit's own estimate
   (:func:`tempo_from_onsets`: a comb over 40–240 bpm of the weighted onsets on the beat, 8th and
   16th, with a log-normal prior around 120 bpm) or, with ``tracker="librosa"``, librosa's beat
   tracker (Ellis 2007), refined on all onsets to a hundredth of a bpm (:func:`fit_onsets`).
   By default (``grid="follow"``) the beats then follow the recording: a dynamic programme over
   the note onsets whose beat period may drift (:func:`follow_beats`), put between frames by
   least squares (:func:`refine_beats`), bar lines on the beat phase with the most note weight
   (:func:`bar_lines`). With ``grid="constant"`` the grid keeps the one tempo, and the downbeat
   is the beat phase (of four) on which the most note weight falls. ``bpm`` and ``downbeat``
   override. ``benchmarks/transcription.py`` measures the two grids and the trackers
   (docs/transcription.md).
3. **Quantisation** (:func:`quantise`): each note start and end goes to the nearest 16th of that
   grid (the four 16ths between two beats evenly spaced); the MIDI (:func:`grid_midi`) carries
   the tempo map (a tempo event on every beat, so its beats are the recording's) or the one
   tempo, and a 4/4 signature from bar 1, so ``genre midi prepare`` and the symbolic transfer
   read it as they read any 4/4 song.
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
    """A 4/4 grid: bar 1 starts at ``origin`` seconds (may be negative).

    A *constant* grid has one ``tempo`` and no ``beats``; a *tempo-following* grid has ``beats``,
    the recording's own beat times from bar 1 on (``beats[0] == origin``; beat ``k`` is the
    ``k``-th quarter note of the MIDI), between which the four 16ths are spaced evenly, and
    ``tempo`` is the median of its tempos (for messages and the phrase length). Steps beyond
    the last beat continue at the last beat's length.
    """

    tempo: float
    origin: float
    beats: np.ndarray  # the tempo map (beat times from bar 1); empty for a constant grid
    source: str  # how the tempo was found: "onsets", "librosa+onsets", "librosa" (beats alone), "given", + "+follow"

    @property
    def follows(self) -> bool:
        return len(self.beats) >= 2

    @property
    def step_seconds(self) -> float:
        return 60.0 / (self.tempo * STEPS_PER_BEAT)

    @property
    def phrase_seconds(self) -> float:
        """Length of the first 4-bar phrase (the shortest a recording may be)."""
        if self.follows:
            steps = PHRASE_BARS * BEATS_PER_BAR * STEPS_PER_BEAT
            return float(self.times(np.array([steps]))[0] - self.origin)
        return PHRASE_BARS * BEATS_PER_BAR * 60.0 / self.tempo

    def steps(self, times: np.ndarray) -> np.ndarray:
        """Fractional 16th steps (step 0 = bar 1) of times in seconds."""
        times = np.asarray(times, dtype=np.float64)
        if not self.follows:
            return (times - self.origin) / self.step_seconds
        return STEPS_PER_BEAT * _beat_index(times, self.beats)

    def times(self, steps: np.ndarray) -> np.ndarray:
        """Seconds of (fractional) 16th steps."""
        steps = np.asarray(steps, dtype=np.float64)
        if not self.follows:
            return self.origin + steps * self.step_seconds
        return _beat_time(steps / STEPS_PER_BEAT, self.beats)

    def tempos(self) -> np.ndarray:
        """bpm of each beat of the map (one value for a constant grid)."""
        return 60.0 / np.diff(self.beats) if self.follows else np.array([self.tempo])


def _beat_index(times: np.ndarray, beats: np.ndarray) -> np.ndarray:
    """Fractional beat numbers of ``times`` on the beat times ``beats`` (linear between beats,
    the first and last beat lengths continued outside)."""
    k = np.interp(times, beats, np.arange(len(beats), dtype=np.float64))
    before, after = times < beats[0], times > beats[-1]
    k[before] = (times[before] - beats[0]) / (beats[1] - beats[0])
    k[after] = len(beats) - 1 + (times[after] - beats[-1]) / (beats[-1] - beats[-2])
    return k


def _beat_time(k: np.ndarray, beats: np.ndarray) -> np.ndarray:
    """Seconds of fractional beat numbers ``k`` (the inverse of :func:`_beat_index`)."""
    t = np.interp(k, np.arange(len(beats), dtype=np.float64), beats)
    n = len(beats) - 1
    t[k < 0] = beats[0] + k[k < 0] * (beats[1] - beats[0])
    t[k > n] = beats[-1] + (k[k > n] - n) * (beats[-1] - beats[-2])
    return t


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


# ----------------------------------------------------------------------------- following the tempo

#: The onset envelope that :func:`follow_beats` reads: frames per second, and the width (standard
#: deviation, s) given to each note onset.
FOLLOW_RATE = 200
FOLLOW_SIGMA = 0.015
#: Beat lengths the tracker may take, relative to the overall tempo's: less than an octave either
#: way, so it cannot slip to double or half tempo.
FOLLOW_RANGE = (0.7, 1.45)
FOLLOW_PERIODS = 80
#: Cost of a beat ``r`` times as long as the one before: TIGHTNESS · ln(r)², and of a beat ``r``
#: times the overall tempo's beat: PULL · ln(r)² (in units of a typical onset's evidence).
FOLLOW_TIGHTNESS = 100.0
FOLLOW_PULL = 2.0
#: Evidence of a beat: the envelope on the beat, plus these shares of it on the 8th and the 16ths
#: between it and the beat before (as :func:`fit_onsets` weighs beat, 8th and 16th).
FOLLOW_SUBDIVISIONS = ((0.5, 0.5), (0.25, 0.25), (0.75, 0.25))


def onset_envelope(notes: np.ndarray, tempo: float, start: float, n_frames: int, *, rate: int = FOLLOW_RATE,
                   sigma: float = FOLLOW_SIGMA) -> np.ndarray:
    """The weighted note onsets (:func:`onset_weights`) as a smooth curve, ``n_frames`` frames of
    ``1/rate`` s from ``start``: a Gaussian of width ``sigma`` per onset, scaled so that a typical
    onset peaks near 1."""
    w = onset_weights(notes, tempo)
    pos = (notes[:, 0] - start) * rate
    env = np.zeros(n_frames + 2)
    i = np.clip(np.floor(pos).astype(np.int64), 0, n_frames)
    frac = np.clip(pos - i, 0.0, 1.0)
    np.add.at(env, i, w * (1 - frac))
    np.add.at(env, i + 1, w * frac)
    half = int(np.ceil(4 * sigma * rate))
    x = np.arange(-half, half + 1) / (sigma * rate)
    env = np.convolve(env[:n_frames], np.exp(-0.5 * x * x), mode="same")
    peak = np.median(env[np.clip(np.round(pos).astype(np.int64), 0, n_frames - 1)]) if len(pos) else 0.0
    return env / peak if peak > 0 else env


def follow_beats(notes: np.ndarray, tempo: float, *, tightness: float = FOLLOW_TIGHTNESS, pull: float = FOLLOW_PULL,
                 rate: int = FOLLOW_RATE) -> np.ndarray:
    """The recording's beat times, following its tempo: a dynamic programme over the note onsets.

    Ellis's beat tracker (2007, librosa's ``beat_track``) chooses beats that fall on strong
    onsets and are spaced by one fixed period; here each beat also carries its own period (one of
    :data:`FOLLOW_PERIODS` from :data:`FOLLOW_RANGE` times ``60/tempo``), so the beat may speed up
    and slow down: a beat at frame ``f`` with period ``d`` scores the onset envelope
    (:func:`onset_envelope`) at ``f`` and at the 8th and 16ths before it, less
    ``tightness · ln(d/d')²`` for a change from the previous beat's period ``d'`` and
    ``pull · ln(d·tempo/60)²`` for straying from the overall tempo. The best-scoring path from the
    first notes to the last is the answer, in seconds, one beat before the first note to one after
    the last. ``tempo`` is the overall tempo (bpm), e.g. from :func:`fit_onsets`.
    """
    first, last = float(notes[:, 0].min()), float(notes[:, 0].max())
    beat = 60.0 / float(tempo)
    lo, hi = FOLLOW_RANGE
    start = first - hi * beat
    n_frames = int(np.ceil((last - start + hi * beat) * rate)) + 1
    env = onset_envelope(notes, tempo, start, n_frames, rate=rate)
    periods = np.unique(np.round(beat * rate * np.exp(np.linspace(np.log(lo), np.log(hi), FOLLOW_PERIODS)))).astype(np.int64)
    periods = periods[periods >= 2]
    logp = np.log(periods)
    change = -tightness * (logp[:, None] - logp[None, :]) ** 2  # [period now, period before]
    stray = -pull * (logp - np.log(beat * rate)) ** 2
    # local evidence of each (frame, period): the envelope on the beat and between it and the beat before
    frames = np.arange(n_frames)
    padded = np.concatenate([env, [0.0]])  # index -1 → 0
    local = env[:, None] + stray[None, :]
    for share, weight in FOLLOW_SUBDIVISIONS:
        at = frames[:, None] - np.round(share * periods[None, :]).astype(np.int64)
        local = local + weight * padded[np.where(at >= 0, at, -1)]
    score = np.full((n_frames, len(periods)), -np.inf)
    back = np.full((n_frames, len(periods)), -1, dtype=np.int32)  # the previous beat's period; -1: first beat
    may_start = int(np.ceil((first - start + 0.5 * beat) * rate))  # a path starts within half a beat of the first note
    block = int(periods.min())
    for a in range(0, n_frames, block):  # every beat in a block has its previous beat before the block
        f = frames[a:a + block]
        prev = f[:, None] - periods[None, :]
        ok = prev >= 0
        cand = score[np.where(ok, prev, 0)] + change[None, :, :]  # (frames, period, period before)
        arg = np.argmax(cand, axis=2)
        best = np.take_along_axis(cand, arg[..., None], axis=2)[..., 0]
        best[~ok] = -np.inf
        arg[~ok] = -1
        fresh = (f < may_start)[:, None] & (best < 0)
        best[fresh], arg[fresh] = 0.0, -1
        score[a:a + block] = local[a:a + block] + best
        back[a:a + block] = arg
    # the last beat: the best path ending at or after the last note (less half a beat)
    tail = int(np.floor((last - start - 0.5 * beat) * rate))
    f, j = np.unravel_index(int(np.argmax(score[tail:])), score[tail:].shape)
    f = int(f) + tail
    path = []
    while True:
        path.append(f)
        jb = int(back[f, j])
        if jb < 0:
            break
        f, j = f - int(periods[j]), jb
    return start + np.asarray(path[::-1], dtype=np.float64) / rate


#: :func:`refine_beats`: onsets within this fraction of a beat of a 16th count (swung 8ths, at
#: a third of a beat from the 16th, do not), the weight of an even tempo against them, and passes.
REFINE_NEAR = 1 / 12
REFINE_SMOOTH = 10.0
REFINE_PASSES = 2


def refine_beats(notes: np.ndarray, beats: np.ndarray, *, smooth: float = REFINE_SMOOTH,
                 passes: int = REFINE_PASSES) -> np.ndarray:
    """Beat times moved so that the onsets near a 16th fall on it, between frames.

    :func:`follow_beats` places beats on 5 ms frames; here each onset within
    :data:`REFINE_NEAR` of a beat of a 16th step, a fraction ``u`` of the way from beat ``k`` to
    ``k + 1``, asks for ``(1 - u)·b_k + u·b_{k+1}`` to be its time, weighted as
    :func:`onset_weights` weighs it (relative to the median), and ``smooth`` asks each beat's
    length to equal its neighbours' (the second difference of the beat times); the weighted
    least-squares solution, ``passes`` times with the steps chosen anew. Beats without onsets
    nearby follow their neighbours.
    """
    beats = np.asarray(beats, dtype=np.float64).copy()
    n = len(beats)
    if n < 3 or len(notes) == 0:
        return beats
    t = notes[:, 0]
    w = onset_weights(notes, float(60.0 / np.median(np.diff(beats))))
    w = w / (np.median(w) or 1.0)
    second = np.zeros((n - 2, n))
    idx = np.arange(n - 2)
    second[idx, idx], second[idx, idx + 1], second[idx, idx + 2] = 1.0, -2.0, 1.0
    for _ in range(passes):
        k = _beat_index(t, beats)
        pos = np.round(k * STEPS_PER_BEAT) / STEPS_PER_BEAT
        use = (np.abs(k - pos) < REFINE_NEAR) & (pos >= 0) & (pos <= n - 1)
        if use.sum() < 2:
            break
        lo = np.minimum(np.floor(pos[use]).astype(np.int64), n - 2)
        u = pos[use] - lo
        a = np.zeros((int(use.sum()), n))
        rows = np.arange(len(lo))
        a[rows, lo], a[rows, lo + 1] = 1 - u, u
        sw = np.sqrt(w[use])
        lhs = np.vstack([a * sw[:, None], np.sqrt(smooth) * second])
        rhs = np.concatenate([t[use] * sw, np.zeros(n - 2)])
        fitted, *_ = np.linalg.lstsq(lhs, rhs, rcond=None)
        if not (np.all(np.isfinite(fitted)) and np.all(np.diff(fitted) > 0)):
            break
        beats = fitted
    return beats


def bar_lines(notes: np.ndarray, beats: np.ndarray, *, downbeat: float | None = None) -> np.ndarray:
    """The tempo map from bar 1: ``beats`` (tracked beat times) cut to start on a bar line at or
    before the first note, and continued to the end of the last note's bar.

    The bar lines are chosen as :func:`choose_downbeat` chooses them on a constant grid (the beat
    phase of four with the most note weight, plus :data:`FIRST_NOTE_BONUS` for the first clear
    note's); ``downbeat`` (seconds) makes the beat nearest to it a bar line instead. Beats added
    before the first or after the last tracked beat continue the nearest beat length.
    """
    beats = np.asarray(beats, dtype=np.float64)
    if len(beats) < 2:
        raise GenreError("too few beats to follow the tempo; pass --bpm or use --grid constant")
    onsets = notes[:, 0]
    k = _beat_index(onsets, beats)
    if downbeat is not None:
        phase = int(np.round(_beat_index(np.array([float(downbeat)]), beats)[0])) % BEATS_PER_BAR
    else:
        near = np.abs(k - np.round(k)) < 0.125
        w = onset_weights(notes, float(60.0 / np.median(np.diff(beats))))
        idx = np.round(k).astype(np.int64) % BEATS_PER_BAR
        score = np.bincount(idx[near], weights=w[near], minlength=BEATS_PER_BAR)
        score = score / score.sum() if score.sum() > 0 else score
        clear = notes[:, 3] >= np.median(notes[:, 3])
        first = int(np.argmin(np.where(clear, onsets, np.inf)))
        if near[first]:
            score[idx[first]] += FIRST_NOTE_BONUS
        phase = int(np.argmax(score))
    # bar 1: the last bar line at or before the first note (less half a 16th, for a note played early)
    start_k = float(np.min(k)) + 0.5 / STEPS_PER_BEAT
    k0 = phase + int(np.floor((start_k - phase) / BEATS_PER_BAR)) * BEATS_PER_BAR
    if k0 < 0:  # before the first tracked beat: continue its length backwards
        beats = np.concatenate([beats[0] + np.arange(k0, 0) * (beats[1] - beats[0]), beats])
        k0 = 0
    beats = beats[k0:]
    # to the end of the bar in which the last note ends (and a beat more, so the map covers it)
    last = float(_beat_index(np.array([float(notes[:, 1].max())]), beats)[0])
    n = int(np.ceil((last + 1e-9) / BEATS_PER_BAR)) * BEATS_PER_BAR + 1
    if n > len(beats):
        step = float(np.median(np.diff(beats[-5:])))
        beats = np.concatenate([beats, beats[-1] + np.arange(1, n - len(beats) + 1) * step])
    return beats[:n]


#: How the tempo is found: ``onsets`` (the toolkit's own: :func:`tempo_from_onsets`, no
#: audio analysis beyond the notes) or ``librosa`` (librosa's beat tracker, then the onset fit).
TRACKERS = ("onsets", "librosa")
#: The grid: ``follow`` the recording's beats (:func:`follow_beats`, the default) or one
#: ``constant`` tempo for the whole recording.
GRIDS = ("follow", "constant")


def beat_grid(wave: np.ndarray | None, rate: int, notes: np.ndarray, *, bpm: float | None = None,
              downbeat: float | None = None, tracker: str = "onsets", refine: bool = True,
              grid: str = "follow") -> Grid:
    """The 4/4 grid of a recording (see the module docstring).

    ``tracker`` gives the first tempo estimate: ``onsets`` (:func:`tempo_from_onsets`) or
    ``librosa`` (the line through librosa's beats); with ``refine`` (the default) the tempo and
    phase are then fitted to the note onsets (:func:`fit_onsets`). ``bpm`` fixes the tempo (only the
    phase is fitted). With ``grid="follow"`` (the default) that tempo is only the overall one: the
    beats then follow the recording (:func:`follow_beats`, :func:`bar_lines`).
    ``benchmarks/transcription.py`` measures the trackers and the two grids against each other.
    """
    if tracker not in TRACKERS:
        raise GenreError(f"unknown tracker {tracker!r}: use one of {', '.join(TRACKERS)}")
    if grid not in GRIDS:
        raise GenreError(f"unknown grid {grid!r}: use one of {', '.join(GRIDS)}")
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
    source = "given" if bpm else tracker + ("+onsets" if refine and tracker == "librosa" else "")
    if grid == "follow" and len(notes):
        mapped = bar_lines(notes, refine_beats(notes, follow_beats(notes, tempo)), downbeat=downbeat)
        return Grid(tempo=float(np.median(60.0 / np.diff(mapped))), origin=float(mapped[0]), beats=mapped,
                    source=source + "+follow")
    first = float(notes[:, 0].min()) if len(notes) else 0.0
    if downbeat is not None:
        origin = bar_before(float(downbeat), first, tempo)
    else:
        origin = choose_downbeat(notes, tempo, phase)
    return Grid(tempo=float(tempo), origin=float(origin), beats=np.zeros(0), source=source)


# ----------------------------------------------------------------------------- quantisation

def quantise(notes: np.ndarray, tempo: float, origin: float = 0.0, *, beats: np.ndarray | None = None,
             steps_per_beat: int = STEPS_PER_BEAT) -> np.ndarray:
    """Put notes on the grid: int64 ``(n, 4)`` start step, end step, pitch, velocity (1..127).

    Step ``s`` is the time ``origin + s·60/(tempo·steps_per_beat)``, or, with ``beats`` (a tempo
    map: the times of beats 0, 1, 2, … from bar 1, :attr:`Grid.beats`), the time a fraction
    ``(s mod steps_per_beat)/steps_per_beat`` of the way from beat ``s // steps_per_beat`` to the
    next (``tempo`` and ``origin`` are then not used); starts and ends go to the nearest step (a
    note keeps at least one), velocity is ``round(127·amplitude)``. Notes of one
    pitch that now start on one step become one (the longest, loudest), and a note is cut where
    the next one of its pitch starts (MIDI cannot hold one pitch twice on one channel). Steps
    before 0 (notes before ``origin``) are dropped.
    """
    notes = np.asarray(notes, dtype=np.float64).reshape(-1, 4)
    if beats is not None and len(beats) >= 2:
        on = np.floor(steps_per_beat * _beat_index(notes[:, 0], np.asarray(beats, np.float64)) + 0.5).astype(np.int64)
        off = np.floor(steps_per_beat * _beat_index(notes[:, 1], np.asarray(beats, np.float64)) + 0.5).astype(np.int64)
    else:
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


def grid_midi(qnotes: np.ndarray, tempo: float, *, beats: np.ndarray | None = None, program: int = 0,
              name: str = "Transcription", steps_per_beat: int = STEPS_PER_BEAT, end_step: int | None = None):
    """A ``pretty_midi.PrettyMIDI`` of quantised notes: one track, 4/4 at bar 1, and an "all notes
    off" at the end of the last bar (or at ``end_step``, rounded up to a bar), so the song lasts
    whole bars.

    Without ``beats`` the file has one tempo, ``tempo``. With ``beats`` (a tempo map,
    :attr:`Grid.beats`) it has a tempo event on every beat, so that the MIDI's beat ``k`` falls
    ``beats[k] - beats[0]`` seconds after its start: played from ``beats[0]`` in the recording's
    time, its notes are on the recording's beats (the tempos are rounded to whole µs per quarter
    note with the error carried on, so the beat times stay within 1 µs).
    """
    import io

    import mido
    import pretty_midi

    qnotes = np.asarray(qnotes, dtype=np.int64).reshape(-1, 4)
    bar = steps_per_beat * BEATS_PER_BAR
    last = max(int(np.max(qnotes[:, 1])) if len(qnotes) else 0, int(end_step or 0))
    end = int(np.ceil(last / bar) * bar)
    if beats is None or len(beats) < 2:
        # as midigenre.pianoroll.roll_to_midi: a tempo whose truncation by pretty_midi is the nearest
        # whole µs per quarter note, so reading the file back gives the same grid
        mspq = max(1, round(6e7 / float(tempo)))
        tempo = 6e7 / (mspq + 0.5)
        pm = pretty_midi.PrettyMIDI(resolution=480, initial_tempo=tempo)
        pm.time_signature_changes.append(pretty_midi.TimeSignature(4, 4, 0.0))
        inst = pretty_midi.Instrument(program=program, is_drum=False, name=name)
        step = 60.0 / (tempo * steps_per_beat)
        for on, off, pitch, vel in qnotes.tolist():
            if 0 <= pitch <= 127:
                inst.notes.append(pretty_midi.Note(velocity=int(vel), pitch=int(pitch), start=on * step, end=off * step))
        if len(qnotes):
            inst.control_changes.append(pretty_midi.ControlChange(number=123, value=0, time=end * step))
        pm.instruments.append(inst)
        return pm
    # a tempo map: written with mido (pretty_midi has no public way to add tempo changes), read back
    tpq = 480
    tick = tpq // steps_per_beat
    beats = np.asarray(beats, dtype=np.float64)
    n_beats = max(len(beats) - 1, end // steps_per_beat)
    lengths = np.diff(beats)
    lengths = np.concatenate([lengths, np.full(max(0, n_beats - len(lengths)), lengths[-1])])[:n_beats]
    due = np.round(np.cumsum(lengths) * 1e6).astype(np.int64)  # µs from bar 1 to the end of each beat
    mspq = np.maximum(np.diff(np.concatenate([[0], due])), 1)
    meta = mido.MidiTrack()
    meta.append(mido.MetaMessage("time_signature", numerator=4, denominator=4, time=0))
    events = [(k * tpq, 0, mido.MetaMessage("set_tempo", tempo=int(min(m, 0xFFFFFF)))) for k, m in enumerate(mspq.tolist())]
    track = mido.MidiTrack()
    track.append(mido.MetaMessage("track_name", name=name, time=0))
    track.append(mido.Message("program_change", program=int(program), channel=0, time=0))
    notes = []
    for on, off, pitch, vel in qnotes.tolist():
        if 0 <= pitch <= 127:
            notes.append((off * tick, 0, mido.Message("note_off", note=int(pitch), velocity=0, channel=0)))
            notes.append((on * tick, 1, mido.Message("note_on", note=int(pitch), velocity=int(vel), channel=0)))
    if len(qnotes):
        notes.append((end * tick, 2, mido.Message("control_change", control=123, value=0, channel=0)))
    for target, evs in ((meta, events), (track, notes)):
        now = 0
        for at, _, msg in sorted(evs, key=lambda e: (e[0], e[1])):
            target.append(msg.copy(time=at - now))
            now = at
        target.append(mido.MetaMessage("end_of_track", time=0))
    mid = mido.MidiFile(type=1, ticks_per_beat=tpq)
    mid.tracks.extend([meta, track])
    buf = io.BytesIO()
    mid.save(file=buf)
    buf.seek(0)
    return pretty_midi.PrettyMIDI(buf)


def on_grid(pm, grid: Grid, *, program: int | None = None):
    """A one-tempo ``pretty_midi.PrettyMIDI`` whose notes lie on 16th steps (e.g. what
    :meth:`midigenre.transfer.SongTransfer.midi` makes of a transferred roll), put on ``grid``: the
    same steps, on the grid's tempo map when it follows the recording (:func:`grid_midi`). All
    instruments become one track (``program``, default the first instrument's)."""
    _, tempi = pm.get_tempo_changes()
    step = 60.0 / (float(tempi[0]) * STEPS_PER_BEAT) if len(tempi) else 60.0 / (120.0 * STEPS_PER_BEAT)
    rows, end = [], 0
    for inst in pm.instruments:
        for n in inst.notes:
            rows.append((round(n.start / step), round(n.end / step), n.pitch, n.velocity))
        for c in inst.control_changes:
            end = max(end, round(c.time / step))
    q = np.asarray(rows, dtype=np.int64).reshape(-1, 4)
    q[:, 1] = np.maximum(q[:, 1], q[:, 0] + 1)
    q = q[np.lexsort((q[:, 2], q[:, 0]))]
    first = pm.instruments[0] if pm.instruments else None
    prog = int(program) if program is not None else (first.program if first else 0)
    return grid_midi(q, grid.tempo, beats=grid.beats if grid.follows else None, program=prog,
                     name=first.name if first and first.name else "Transcription", end_step=end)


# ----------------------------------------------------------------------------- the whole step

@dataclasses.dataclass
class Transcription:
    """A recording on the grid.

    Attributes
    ----------
    notes : (n, 4) float64, start s, end s, pitch, amplitude, as heard (in the file's time).
    grid : the 4/4 grid (first downbeat, and the tempo or the tempo map).
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
        """The grid MIDI: bar 1 at its time 0; with a tempo-following grid its tempo map puts
        every beat where the recording's is (``grid.origin`` seconds later in the recording)."""
        return grid_midi(self.qnotes, self.grid.tempo, beats=self.grid.beats if self.grid.follows else None)

    def summary(self) -> dict:
        tempos = self.grid.tempos()
        return {"tempo": round(self.grid.tempo, 2), "tempo_source": self.grid.source,
                "grid": "follow" if self.grid.follows else "constant",
                "tempo_range": [round(float(tempos.min()), 2), round(float(tempos.max()), 2)],
                "tempo_events": len(tempos),
                "downbeat": round(self.grid.origin, 3), "notes": len(self.notes),
                "notes_on_grid": len(self.qnotes), "seconds": round(self.seconds, 3), "rate": self.rate}


def transcribe_audio(samples: np.ndarray, rate: int, *, bpm: float | None = None, downbeat: float | None = None,
                     tracker: str = "onsets", grid: str = "follow", name: str = "the audio", threads: int | None = None,
                     progress=None, for_transfer: bool = True) -> Transcription:
    """Transcribe ``(frames[, channels])`` float audio onto a 4/4 16th-note grid.

    ``grid``: ``follow`` (the default) puts the 16ths between the recording's own beats
    (:func:`follow_beats`); ``constant`` fits one tempo to the whole recording.

    Raises GenreError (one line) for silence, for audio in which no pitched music is found
    (noise, drums only), and, ``for_transfer``, for a clip shorter than one 4-bar phrase at its
    tempo (the transfer's unit; a transcription alone takes any length with music in it).
    """
    from audiogenre.audio import resample, to_mono

    if bpm is not None and not (20 <= bpm <= 400):
        raise GenreError(f"--bpm {bpm:g} is outside 20..400")
    if grid not in GRIDS:
        raise GenreError(f"unknown grid {grid!r}: use one of {', '.join(GRIDS)}")
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
    found = beat_grid(wave, BP_RATE, notes, bpm=bpm, downbeat=downbeat, tracker=tracker, grid=grid)
    if for_transfer and seconds < found.phrase_seconds:
        raise GenreError(f"{name} is {seconds:.1f} s long, shorter than one {PHRASE_BARS}-bar phrase at "
                         f"{found.tempo:.0f} bpm ({found.phrase_seconds:.1f} s); the transfer works on {PHRASE_BARS}-bar phrases"
                         + ("" if bpm else " (pass --bpm if the tempo is wrong)"))
    qnotes = quantise(notes, found.tempo, found.origin, beats=found.beats if found.follows else None)
    return Transcription(notes=notes, grid=found, qnotes=qnotes, seconds=seconds, rate=int(rate))


def transcribe_file(song: str | os.PathLike, output: str | os.PathLike | None = None, *, bpm: float | None = None,
                    downbeat: float | None = None, tracker: str = "onsets", grid: str = "follow",
                    threads: int | None = None, progress=None) -> Transcription:
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
    result = transcribe_audio(audio.samples, audio.rate, bpm=bpm, downbeat=downbeat, tracker=tracker, grid=grid,
                              name=str(song), threads=threads, progress=progress, for_transfer=False)
    if output is not None:
        write_midi(result.midi(), output)
    return result
