"""Audio → MIDI (basic-pitch ONNX, beat grid, quantiser) → genre transfer → audio.

The quantiser and the grid fits are tested on note times made here; the transcription, the
bridge and the bad inputs on short clips rendered with FluidSynth from MIDI made here (so the
true notes are known). Those skip, with the reason, only where basic-pitch, onnxruntime, librosa
or FluidSynth is missing (scripts/setup.sh installs them all).
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from audiogenre.transcribe import (
    Grid,
    bar_before,
    bar_lines,
    choose_downbeat,
    fit_onsets,
    follow_beats,
    grid_midi,
    quantise,
    refine_beats,
)
from cli.main import main
from shared.errors import GenreError


def _missing() -> str | None:
    for mod, what in (("onnxruntime", "onnxruntime"), ("basic_pitch", "basic-pitch"), ("librosa", "librosa")):
        if importlib.util.find_spec(mod) is None:
            return f"{what} is not installed (bash scripts/setup.sh installs the transcription extra)"
    try:
        from audiogenre.render import _fluidsynth, find_soundfont

        _fluidsynth()
        find_soundfont()
    except GenreError as err:
        return f"FluidSynth not usable: {err}"
    return None


needs_transcription = pytest.mark.skipif(_missing() is not None, reason=str(_missing()))

TEMPO = 120.0
STEP = 60.0 / (TEMPO * 4)


def run(*args):
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


# ----------------------------------------------------------------------------- quantiser


def test_quantise_puts_played_notes_on_their_16ths():
    rng = np.random.default_rng(0)
    steps = np.array([0, 2, 4, 5, 8, 12, 14, 16, 19, 24])
    lengths = np.array([2, 2, 1, 3, 4, 2, 2, 3, 5, 8])
    origin = 0.731
    jitter = rng.uniform(-0.4, 0.4, size=(len(steps), 2)) * STEP  # under half a 16th
    start = origin + steps * STEP + jitter[:, 0]
    end = origin + (steps + lengths) * STEP + jitter[:, 1]
    pitches = 60 + np.arange(len(steps))
    notes = np.stack([start, end, pitches, np.full(len(steps), 0.5)], axis=1)
    q = quantise(notes, TEMPO, origin)
    assert q[:, 0].tolist() == steps.tolist()
    assert q[:, 1].tolist() == (steps + lengths).tolist()
    assert q[:, 2].tolist() == pitches.tolist()
    assert (q[:, 3] == 64).all()  # round(127 · 0.5)


def test_quantise_merges_and_cuts_notes_of_one_pitch():
    notes = np.array([
        [0.00, 0.30, 60, 0.4],   # step 0..2
        [0.02, 0.55, 60, 0.9],   # also step 0, longer and louder: kept
        [0.50, 0.90, 60, 0.5],   # step 4: cuts the one before (ended at step 4 anyway)
        [0.26, 1.00, 64, 0.5],   # step 2..8, cut at 6 by the next 64
        [0.74, 0.80, 64, 0.5],   # step 6, 0.06 s rounds to 0 steps: lasts one
        [-0.5, 0.20, 67, 0.5],   # before the origin: dropped
        [0.01, 0.02, 48, 0.0],   # silent amplitude still gets velocity 1
    ])
    q = quantise(notes, TEMPO, 0.0)
    got = {(int(a), int(p)): (int(b), int(v)) for a, b, p, v in q}
    assert got == {(0, 48): (1, 1), (0, 60): (4, 114), (4, 60): (7, 64), (2, 64): (6, 64), (6, 64): (7, 64)}
    assert list(q[:, 0]) == sorted(q[:, 0])


def test_grid_midi_reads_back_onto_the_same_grid():
    from midigenre.pianoroll import RollSettings, read_song

    q = np.array([[0, 4, 60, 90], [4, 6, 64, 80], [6, 8, 67, 70], [17, 30, 48, 100], [60, 61, 72, 50]])
    pm = grid_midi(q, 97.3)
    import io

    buf = io.BytesIO()
    pm.write(buf)
    song = read_song(buf.getvalue(), RollSettings(meter="strict"))  # strict: 4/4 must be there from bar 1
    assert abs(song.tempo - 97.3) < 0.01
    assert len(song.roll) == 64  # the song lasts whole bars: 61 steps → 4 bars
    for a, b, p, _ in q:
        assert song.roll[a:b, p - 24].all()
        assert not song.roll[b:b + 1, p - 24].any()  # ends where it should (nothing at step b; none at 64)
    assert song.roll.sum() == (q[:, 1] - q[:, 0]).sum()


def test_fit_onsets_corrects_a_tempo_a_few_percent_off():
    rng = np.random.default_rng(1)
    true_tempo, phase = 123.0, 0.37
    beat = 60.0 / true_tempo
    steps = np.sort(rng.choice(np.arange(0, 4 * 80), size=200, replace=False))  # 80 beats of 16ths
    start = phase + steps * beat / 4 + rng.normal(0, 0.008, len(steps))
    notes = np.stack([start, start + beat / 2, np.full(len(steps), 60), np.full(len(steps), 0.6)], axis=1)
    notes[steps % 4 == 0, 3] = 0.9  # louder on the beat
    tempo, ph = fit_onsets(notes, 118.0)  # a tracker 4 % slow
    assert abs(tempo - true_tempo) < 0.2
    # the fitted grid puts every note back on its own 16th (steps counted from a beat)
    found = np.floor((start - ph) / (60.0 / tempo / 4) + 0.5).astype(int)
    offset = found - steps
    assert (offset == offset[0]).all() and offset[0] % 4 == 0
    assert fit_onsets(notes, 123.0, fixed=True)[0] == 123.0


def test_downbeat_is_the_beat_phase_with_the_most_weight():
    beat = 0.5
    rows = []
    for k in range(32):  # beats 0.25 + k·0.5; bar lines on beats 1, 5, 9, … (phase 1)
        t = 0.25 + k * beat
        strong = k % 4 == 1
        rows.append([t, t + (1.5 if strong else 0.2), 40 if strong else 70, 0.9 if strong else 0.4])
    notes = np.array(rows)
    origin = choose_downbeat(notes, 120.0, 0.25)
    # phase 1 is the beat at 0.75 s; the first note (0.25 s) comes before it, so bar 1 starts a bar earlier
    assert abs(origin - (0.75 - 2.0)) < 1e-9
    assert bar_before(10.0, 0.2, 120.0) == pytest.approx(0.0)


def test_even_beats_take_the_bar_line_from_the_first_clear_note():
    # a chorale: the same chord on every beat; the first loud note is on the beat at 1.5 s, after a
    # quiet one at 1.0 s (an overtone, a breath) that must not decide
    rows = [[1.0, 1.2, 90, 0.1]] + [[1.5 + k * 0.5, 1.9 + k * 0.5, p, 0.6] for k in range(32) for p in (48, 55, 64)]
    origin = choose_downbeat(np.array(rows), 120.0, 0.0)
    assert origin == pytest.approx(1.5 - 2.0)  # bar 1 at 1.5 s, moved a bar back to cover the note at 1.0 s


def _moving_beats(n_beats: int, start: float = 0.4) -> np.ndarray:
    """Beat times of a performance that speeds up from 96 to 144 bpm and slows down to 84."""
    x = np.linspace(0.0, 1.0, n_beats)
    bpm = np.where(x < 0.5, 96 + 96 * x, 144 - 120 * (x - 0.5))
    return start + np.concatenate([[0.0], np.cumsum(60.0 / bpm[:-1])])


def _notes_on(beats: np.ndarray, steps: np.ndarray, rng, jitter: float = 0.006) -> np.ndarray:
    """Notes starting on the given 16th steps of a tempo map (a few ms off, as played and
    transcribed), bass on the beats, louder and longer."""
    beat_no = steps / 4.0
    start = np.interp(beat_no, np.arange(len(beats)), beats) + rng.normal(0, jitter, len(steps))
    on_beat = steps % 4 == 0
    end = start + np.where(on_beat, 0.4, 0.12)
    return np.stack([start, end, np.where(on_beat, 48, 72), np.where(on_beat, 0.9, 0.5)], axis=1)


def test_a_tempo_following_grid_keeps_notes_of_a_changing_tempo_on_their_16ths():
    rng = np.random.default_rng(3)
    beats = _moving_beats(65)  # 16 bars, 96 → 144 → 84 bpm
    steps = np.unique(np.concatenate([np.arange(0, 256, 4), rng.choice(np.arange(256), 120, replace=False)]))
    notes = _notes_on(beats, steps, rng)
    beats_found = refine_beats(notes, follow_beats(notes, 110.0))
    grid = bar_lines(notes, beats_found)
    assert abs(grid[0] - beats[0]) < 0.02  # bar 1 on the first bass note
    assert np.abs(grid[:64] - beats[:64]).max() < 0.02  # every beat within 20 ms
    q = quantise(notes, 110.0, beats=grid)
    assert q[:, 0].tolist() == steps.tolist()  # every note on its own 16th
    # one constant tempo cannot hold them: the best constant grid puts most notes on other 16ths
    tempo, phase = fit_onsets(notes, 110.0, span=0.3)
    const = Grid(tempo=tempo, origin=choose_downbeat(notes, tempo, phase), beats=np.zeros(0), source="onsets")
    assert not const.follows
    assert np.mean(np.round(const.steps(notes[:, 0])) == steps) < 0.5
    # a Grid maps steps and seconds both ways on the map, and continues past its ends
    g = Grid(tempo=float(np.median(60 / np.diff(grid))), origin=float(grid[0]), beats=grid, source="test")
    s = np.array([-4.0, 0.0, 5.5, 100.0, 300.0])
    assert np.allclose(g.steps(g.times(s)), s)
    assert g.times(np.array([8.0]))[0] == pytest.approx(grid[2])


def test_following_a_steady_recording_keeps_its_tempo_steady():
    rng = np.random.default_rng(4)
    beats = 0.3 + np.arange(81) * 0.5
    notes = _notes_on(beats, np.unique(np.concatenate([np.arange(0, 320, 2), rng.choice(320, 60)])), rng)
    grid = bar_lines(notes, refine_beats(notes, follow_beats(notes, 120.0)))
    tempos = 60 / np.diff(grid)
    assert np.abs(tempos - 120).max() < 2.0 and abs(np.median(tempos) - 120) < 0.3


def test_grid_midi_carries_the_tempo_map():
    import io

    import pretty_midi

    from midigenre.pianoroll import RollSettings, read_song

    beats = _moving_beats(33, start=1.25)
    q = np.array([[0, 4, 60, 90], [5, 6, 62, 80], [17, 30, 64, 70], [64, 66, 67, 60], [127, 128, 72, 50]])
    pm = grid_midi(q, 120.0, beats=beats)
    buf = io.BytesIO()
    pm.write(buf)
    back = pretty_midi.PrettyMIDI(io.BytesIO(buf.getvalue()))
    times, tempi = back.get_tempo_changes()
    assert len(tempi) == 32 and np.allclose(tempi, 60 / np.diff(beats), rtol=1e-4)
    # the MIDI's beats are the recording's, less bar 1's time
    assert np.allclose(back.get_beats()[:32], beats[:32] - beats[0], atol=1e-4)
    starts = sorted(n.start for n in back.instruments[0].notes)
    want = np.interp(np.sort(q[:, 0]) / 4.0, np.arange(len(beats)), beats) - beats[0]
    assert np.allclose(starts, want, atol=1e-4)
    # and the symbolic path reads it on its steps, as any 4/4 song
    song = read_song(buf.getvalue(), RollSettings(meter="strict"))
    assert len(song.roll) == 128
    for a, b, p, _ in q:
        assert song.roll[a:b, p - 24].all()


# ----------------------------------------------------------------------------- on rendered audio


def _piece(bars: int = 8, tempo: float = TEMPO, drums: bool = False):
    """A little piano piece: a bass note on every bar, quarter-note chords, an 8th-note melody."""
    import pretty_midi

    pm = pretty_midi.PrettyMIDI(initial_tempo=tempo)
    pm.time_signature_changes.append(pretty_midi.TimeSignature(4, 4, 0))
    step = 60.0 / (tempo * 4)
    if drums:
        kit = pretty_midi.Instrument(0, is_drum=True)
        for s in range(0, bars * 16, 2):
            kit.notes.append(pretty_midi.Note(100, 42, s * step, (s + 1) * step))
            if s % 8 == 0:
                kit.notes.append(pretty_midi.Note(115, 36, s * step, (s + 1) * step))
            if s % 8 == 4:
                kit.notes.append(pretty_midi.Note(115, 38, s * step, (s + 1) * step))
        pm.instruments.append(kit)
        return pm, []
    piano = pretty_midi.Instrument(0)
    truth = []
    chords = [(48, 52, 55), (53, 57, 60), (55, 59, 62), (48, 52, 55)]
    melody = [72, 74, 76, 77, 79, 77, 76, 74]
    for bar in range(bars):
        base = bar * 16
        truth.append((base, base + 16, 36 + (bar % 4) * 2))
        for beat in range(4):
            for p in chords[bar % 4]:
                truth.append((base + 4 * beat, base + 4 * beat + 3, p))
        for i, p in enumerate(melody):
            truth.append((base + 2 * i, base + 2 * i + 2, p - 12 * (bar % 2)))
    for a, b, p in truth:
        piano.notes.append(pretty_midi.Note(90, p, a * step, b * step))
    pm.instruments.append(piano)
    return pm, truth


def _render(pm, seconds: float | None = None, rate: int = 22_050) -> np.ndarray:
    from audiogenre.render import renderer, tracks_of_pretty_midi

    return renderer(None, rate).render(tracks_of_pretty_midi(pm), seconds=seconds)


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    """8 bars of the piece at 120 bpm (16 s), rendered at 22 050 Hz, as a WAV file, with its notes."""
    if _missing():
        pytest.skip(_missing())
    from audiogenre.audio import write_audio

    pm, truth = _piece()
    wave = _render(pm, seconds=16.5)
    path = tmp_path_factory.mktemp("clip") / "piece.wav"
    write_audio(path, wave, 22_050)
    return path, truth


@needs_transcription
def test_transcribe_finds_the_notes_tempo_and_grid(clip, tmp_path):
    from midigenre.pianoroll import RollSettings, read_song

    path, truth = clip
    out = tmp_path / "piece.mid"
    result = run("audio", "transcribe", path, "-o", out)
    assert result.exit_code == 0, result.output
    assert "tempo 120.0 bpm" in result.output or "tempo 119.9 bpm" in result.output, result.output
    song = read_song(out.read_bytes(), RollSettings(meter="strict"))
    assert abs(song.tempo - TEMPO) < 1.5  # the first beat's tempo: the beats follow the recording
    import pretty_midi

    onsets = {(a, p) for a, _, p in truth}
    pm = pretty_midi.PrettyMIDI(str(out))
    times, tempi = pm.get_tempo_changes()
    assert np.abs(tempi - TEMPO).max() < 3 and tempi.std() < 1  # a steady recording keeps a steady map
    beats = np.asarray(pm.get_beats())
    got = {(round(4 * float(np.interp(n.start, beats, np.arange(len(beats))))), n.pitch) for n in pm.instruments[0].notes}
    recall = len(onsets & got) / len(onsets)
    precision = len(onsets & got) / len(got)
    # every note has to be on its own 16th of the bar (bar lines found too) for this to hold;
    # the extra notes are mostly overtones (an octave or a twelfth above a note played)
    assert recall > 0.9 and precision > 0.7, (recall, precision)
    # and `genre midi prepare` takes it under the strictest meter rule (2 phrases of 4 bars)
    result = run("midi", "prepare", out, "-g", "jazz", "-o", tmp_path / "c.h5", "--meter", "strict")
    assert result.exit_code == 0 and "files kept" in result.output, result.output


@pytest.fixture(scope="module")
def moving_clip(tmp_path_factory):
    """The piece's 8 bars played 96 → 144 → 84 bpm (a MIDI's notes placed on a moving beat, so
    the tempo changes ~1 % every beat), rendered at 22 050 Hz, with its notes and true beats."""
    if _missing():
        pytest.skip(_missing())
    import pretty_midi

    from audiogenre.audio import write_audio

    pm, truth = _piece()
    beats = _moving_beats(34, start=0.5)
    when = lambda step: float(np.interp(step / 4.0, np.arange(len(beats)), beats))  # noqa: E731
    moved = pretty_midi.PrettyMIDI(initial_tempo=120)
    inst = pretty_midi.Instrument(0)
    for a, b, p in truth:
        inst.notes.append(pretty_midi.Note(90, p, when(a), when(b)))
    moved.instruments.append(inst)
    wave = _render(moved, seconds=beats[32] + 0.8)
    path = tmp_path_factory.mktemp("moving") / "moving.wav"
    write_audio(path, wave, 22_050)
    return path, truth, beats


@needs_transcription
def test_a_recording_whose_tempo_moves_keeps_its_notes_on_the_grid(moving_clip, tmp_path):
    import pretty_midi

    from audiogenre.transcribe import transcribe_file

    path, truth, beats = moving_clip
    out = tmp_path / "moving.mid"
    result = run("audio", "transcribe", path, "-o", out)
    assert result.exit_code == 0, result.output
    assert "following the recording" in result.output
    onsets = {(a, p) for a, _, p in truth}

    def on_steps(tr):
        return {(int(a), int(p)) for a, _, p, _ in tr.qnotes}

    tr = transcribe_file(path)
    assert abs(tr.grid.origin - beats[0]) < 0.03
    assert np.abs(tr.grid.beats[:32] - beats[:32]).max() < 0.03  # the grid's beats are the recording's
    got = on_steps(tr)
    assert len(onsets & got) / len(onsets) > 0.9 and len(onsets & got) / len(got) > 0.7
    # one constant tempo loses most of them
    const = on_steps(transcribe_file(path, grid="constant"))
    assert len(onsets & const) / len(onsets) < 0.5
    # the MIDI file carries the tempo map: its beats, played from bar 1, are the recording's
    pm = pretty_midi.PrettyMIDI(str(out))
    _, tempi = pm.get_tempo_changes()
    assert len(tempi) >= 32 and tempi.min() < 100 and tempi.max() > 130
    assert np.abs(np.asarray(pm.get_beats()[:32]) + tr.grid.origin - beats[:32]).max() < 0.03
    notes = pm.instruments[0].notes
    found = {(round(4 * float(np.interp(n.start + tr.grid.origin, beats, np.arange(len(beats))))), n.pitch) for n in notes}
    assert len(onsets & found) / len(onsets) > 0.9


@needs_transcription
def test_audio_transfer_plays_on_the_recordings_own_beats(moving_clip, tmp_path):
    import pretty_midi
    import soundfile as sf

    path, _, beats = moving_clip
    out = tmp_path / "moving_classical.wav"
    result = run("audio", "arrange", path, "--to", "classical", "-o", out)
    assert result.exit_code == 0, result.output
    side = json.loads(out.with_suffix(".json").read_text())
    assert side["transcription"]["grid"] == "follow" and side["transcription"]["tempo_events"] >= 32
    lo, hi = side["transcription"]["tempo_range"]
    assert lo < 100 and hi > 130
    origin = side["transcription"]["downbeat"]
    transferred = pretty_midi.PrettyMIDI(side["transferred_midi"])
    transcribed = pretty_midi.PrettyMIDI(side["transcription_midi"])
    # the transfer carries the transcription's tempo map, so its notes fall on the recording's beats
    assert np.allclose(transferred.get_tempo_changes()[1][:32], transcribed.get_tempo_changes()[1][:32])
    notes = [n for inst in transferred.instruments for n in inst.notes]
    # every note on a 16th of the transcription's tempo map …
    sixteenths = np.array([transcribed.tick_to_time(k * transcribed.resolution // 4) for k in range(4 * 40)])
    starts = np.array([n.start for n in notes])
    assert len(starts) > 20 and np.abs(starts[:, None] - sixteenths[None]).min(axis=1).max() < 0.003
    # … which are the recording's own 16ths while the piece plays
    starts = starts + origin
    starts = starts[starts < beats[28]]
    k = np.interp(starts, beats, np.arange(len(beats))) * 4
    assert len(starts) > 20 and np.abs(k - np.round(k)).max() < 0.15
    # the notes the transfer keeps stay where the transcription put them (same pitch, same time)
    heard = {(n.pitch, round(n.start, 2)) for inst in transcribed.instruments for n in inst.notes}
    assert np.mean([(n.pitch, round(n.start, 2)) in heard for n in notes]) > 0.3
    # and the audio is rendered from that MIDI at the recording's rate and length
    info, original = sf.info(str(out)), sf.info(str(path))
    assert info.samplerate == original.samplerate and info.frames == original.frames
    wave, rate = sf.read(str(out))
    mono = np.abs(wave).mean(axis=1) if wave.ndim == 2 else np.abs(wave)
    first = np.argmax(mono > 0.01) / rate
    assert abs(first - starts.min()) < 0.05  # the first note sounds where the MIDI's tempo map puts it


@needs_transcription
def test_bpm_and_downbeat_override(clip, tmp_path):
    from audiogenre.transcribe import transcribe_file

    path, _ = clip
    tr = transcribe_file(path, tmp_path / "x.mid", bpm=60, downbeat=0.0, grid="constant")
    assert tr.grid.tempo == 60 and tr.grid.source == "given" and not tr.grid.follows
    assert tr.grid.origin <= 0.0 and tr.qnotes[:, 0].min() >= 0
    starts = tr.notes[:, 0]
    # at 60 bpm a 16th is the piece's 8th: the 8th-note melody lands on every second 60-bpm 16th
    assert np.median(np.abs(((starts - tr.grid.origin) / 0.25) - np.round((starts - tr.grid.origin) / 0.25))) < 0.1
    # following the recording, --bpm sets the level the beats follow around: 60, not 120
    tr = transcribe_file(path, tmp_path / "y.mid", bpm=60)
    assert tr.grid.follows and tr.grid.source == "given+follow" and abs(tr.grid.tempo - 60) < 1.5
    assert tr.grid.origin <= tr.notes[:, 0].min() and tr.qnotes[:, 0].min() >= 0


@needs_transcription
def test_audio_transfer_writes_the_song_in_the_other_genre(clip, tmp_path):
    import soundfile as sf

    path, _ = clip
    out = tmp_path / "out" / "piece_classical.wav"
    result = run("audio", "arrange", path, "--to", "classical", "-o", out)
    assert result.exit_code == 0, result.output
    assert "jazz → classical (source genre assumed: the model's other genre; say it with --from): " in result.output
    side = json.loads(out.with_suffix(".json").read_text())
    assert side["kind"] == "audio-transfer" and side["target_genre"] == "classical"
    for key in ("original", "transcription_midi", "transferred_midi", "audio"):
        assert Path(side[key]).exists()
    assert side["transcription"]["tempo"] == pytest.approx(TEMPO, abs=0.6)
    # 8 bars, and a 9th when a note rings past 16 s
    assert side["metrics"]["phrases"] in (2, 3) and side["metrics"]["notes_source"] > 100
    info, original = sf.info(str(out)), sf.info(str(path))
    assert info.samplerate == original.samplerate and info.frames == original.frames
    wave, _ = sf.read(str(out))
    assert np.abs(wave).max() > 0.01  # something was rendered
    assert sorted(p.name for p in out.parent.iterdir()) == [
        "piece_classical.classical.mid", "piece_classical.json", "piece_classical.transcribed.mid", "piece_classical.wav"]


@needs_transcription
@pytest.mark.parametrize("case", ["silence", "noise", "drums", "short", "garbage", "missing"])
def test_bad_recordings_get_one_line_and_no_files(case, tmp_path):
    from audiogenre.audio import write_audio

    rate = 22_050
    song = tmp_path / f"{case}.wav"
    if case == "silence":
        write_audio(song, np.zeros(rate * 12, np.float32), rate)
    elif case == "noise":
        write_audio(song, 0.3 * np.random.default_rng(0).standard_normal(rate * 12).astype(np.float32), rate)
    elif case == "drums":
        write_audio(song, _render(_piece(bars=6, drums=True)[0]), rate)
    elif case == "short":
        write_audio(song, _render(_piece(bars=2)[0], seconds=4.5), rate)  # 4.5 s < 8 s, 4 bars at 120 bpm
    elif case == "garbage":
        song.write_bytes(b"RIFF not really a wave file" * 20)
    expect = {"silence": "is silent", "noise": "no pitched music", "drums": "no pitched music",
              "short": "shorter than one 4-bar phrase", "garbage": "cannot read", "missing": "no such audio file"}[case]
    for args in (("audio", "transcribe", song, "-o", tmp_path / "o" / "t.mid"),
                 ("audio", "arrange", song, "--to", "classical", "-o", tmp_path / "o" / "t.wav")):
        if case == "short" and args[1] == "transcribe":
            continue  # only the transfer needs a whole 4-bar phrase (tests/test_fuzz.py)
        result = run(*args)
        assert result.exit_code == 1, result.output
        lines = [x for x in result.output.splitlines() if x.strip() and "%|" not in x]
        assert len(lines) == 1 and lines[0].startswith("Error: ") and expect in lines[0], result.output
        assert "Traceback" not in result.output
        assert not (tmp_path / "o").exists() or not any((tmp_path / "o").iterdir())


def test_outputs_never_overwrite_the_recording(tmp_path):
    song = tmp_path / "x.wav"
    song.write_bytes(b"")
    for args in (("audio", "transcribe", song, "-o", song),
                 ("audio", "arrange", song, "--to", "jazz", "-o", song)):
        result = run(*args)
        assert result.exit_code == 1 and "would overwrite the input" in result.output
    result = run("audio", "transcribe", song, "-o", tmp_path / "x.txt")
    assert result.exit_code == 1 and "name it .mid" in result.output


@needs_transcription
def test_damaged_and_odd_audio_files_of_the_fuzz_campaign(tmp_path):
    """tests/fuzz_inputs.py's audio files: one-line errors (or a transcription), never a traceback."""
    from tests import fuzz_inputs as F

    files = F.audio_inputs(tmp_path / "in")
    for name, path in files.items():
        if name == "good":  # float-peak-7.6 is the same tones louder
            continue
        out = tmp_path / "out" / f"{name}.mid"
        o = F.run_inprocess(["audio", "transcribe", str(path), "-o", str(out)])
        assert F.verdict(F.Case("audio", name, [], "either"), o) == "ok", (name, o.out, o.err, o.exception)
        assert o.rc == 0 or not out.exists()


@needs_transcription
def test_audio_transfer_to_a_folder_makes_a_bridge_folder_for_the_listening_report(clip, tmp_path):
    path, _ = clip
    folder = tmp_path / "bridge"
    result = run("audio", "arrange", path, "--to", "classical", "-o", folder)
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in folder.iterdir()) == [
        "bridge.json", "original.wav", "transcription.mid", "transferred.mid", "transferred.wav"]
    assert (folder / "original.wav").read_bytes() == path.read_bytes()
    side = json.loads((folder / "bridge.json").read_text())
    assert side["original"] == str(path.resolve()) and side["original_copy"] == str((folder / "original.wav").resolve())
    page = tmp_path / "page"
    result = run("report", folder, "-o", page)
    assert result.exit_code == 0, result.output
    report = json.loads((page / "report.json").read_text())
    assert report["kind"] == "bridge-report" and set(report["audio"]) == {"recording", "transcription", "transferred"}
    assert report["bridge"]["metrics"] == side["metrics"]
