"""Audio I/O, the paper's preprocessing, and FluidSynth rendering."""

import json
import os

import numpy as np
import pytest
import soundfile as sf
from click.testing import CliRunner

from audiogenre import audio as A
from cli.main import main
from shared.errors import GenreError
from tests.conftest import REPO, make_midi


def tone(freq, seconds, rate, amp=0.5):
    t = np.arange(int(seconds * rate)) / rate
    return (amp * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def peak_hz(x, rate):
    spec = np.abs(np.fft.rfft(x * np.hanning(len(x))))
    return np.fft.rfftfreq(len(x), 1 / rate)[spec.argmax()]


def fluidsynth_ready() -> str | None:
    try:
        from audiogenre.render import _fluidsynth, find_soundfont

        _fluidsynth()
        find_soundfont()
    except GenreError as err:
        return str(err)
    return None


needs_fluidsynth = pytest.mark.skipif(fluidsynth_ready() is not None, reason=f"FluidSynth not usable: {fluidsynth_ready()}")


def test_mono_by_averaging_and_resampling_keeps_pitch():
    x = np.stack([tone(440, 1, 44100), tone(440, 1, 44100) * 0.0], axis=1)
    mono = A.to_mono(x)
    assert np.allclose(mono, x[:, 0] / 2)
    y = A.resample(mono, 44100, 16000)
    assert len(y) == 16000
    assert abs(peak_hz(y, 16000) - 440) < 2


def test_resampling_is_band_limited():
    # a 12 kHz tone cannot exist at 16 kHz (Nyquist 8 kHz): a band-limited resampler removes it
    # instead of folding it down to 4 kHz
    y = A.resample(tone(12000, 1, 44100), 44100, 16000)
    assert np.sqrt(np.mean(y[1000:-1000] ** 2)) < 0.5 / np.sqrt(2) * 1e-3  # below -60 dB
    naive = tone(12000, 1, 44100)[:: 44100 // 16000]  # decimation without a filter aliases
    assert np.sqrt(np.mean(naive ** 2)) > 0.1


def test_preprocess_stages():
    rate = 22050
    stereo = np.stack([tone(220, 3, rate), tone(330, 3, rate)], axis=1)
    a = A.Audio(stereo, rate)
    pre = A.Preprocess(seconds=2.0, offset=0.5)
    clip = A.preprocess(a, pre)
    assert clip.shape == (32000,) and clip.dtype == np.float32
    ref = A.resample(A.to_mono(stereo), rate, 16000)[8000:40000]
    assert np.abs(clip[100:-100] - ref[100:-100]).max() < 1e-3  # the fixed interval from offset 0.5 s
    short = A.preprocess(A.Audio(stereo[:rate], rate), A.Preprocess(seconds=2.0))
    assert np.all(short[16000 + 200:] == 0)  # zero-padded to the fixed length
    loud = A.preprocess(A.Audio(stereo * 5, rate), A.Preprocess(seconds=1.0))
    assert loud.max() <= 1.0 and loud.min() >= -1.0  # clamped
    noisy = A.preprocess(a, A.Preprocess(seconds=2.0, noise=0.1), np.random.default_rng(0))
    clean = A.preprocess(a, A.Preprocess(seconds=2.0))
    assert 18 < A.snr_db(clean, noisy - clean) < 22  # noise at 0.1 x RMS = 20 dB SNR


@pytest.mark.parametrize("suffix,subtype", [(".wav", "PCM_16"), (".flac", "PCM_24"), (".ogg", "VORBIS"), (".wav", "PCM_U8"), (".mp3", "MPEG_LAYER_III")])
def test_formats_and_odd_rates_round_trip(tmp_path, suffix, subtype):
    rate = 11025
    x = tone(300, 1.0, rate)
    p = tmp_path / f"t{suffix}"
    sf.write(p, x, rate, subtype=subtype)
    a = A.load_audio(p)
    assert a.rate == rate and a.channels == 1 and abs(a.seconds - 1.0) < 0.01
    clip = A.load_clip(p, A.Preprocess(seconds=1.0))
    assert abs(peak_hz(clip, 16000) - 300) < 3


def test_load_audio_errors(tmp_path):
    with pytest.raises(GenreError, match="no such audio file"):
        A.load_audio(tmp_path / "missing.wav")
    (tmp_path / "empty.wav").write_bytes(b"")
    with pytest.raises(GenreError, match="empty"):
        A.load_audio(tmp_path / "empty.wav")
    (tmp_path / "junk.wav").write_bytes(os.urandom(5000))
    with pytest.raises(GenreError, match="cannot read .*junk.wav as audio"):
        A.load_audio(tmp_path / "junk.wav")
    sf.write(tmp_path / "short.wav", tone(300, 0.2, 16000), 16000)
    with pytest.raises(GenreError, match="too short"):
        A.load_clip(tmp_path / "short.wav")
    with pytest.raises(GenreError, match="use .wav"):
        A.write_audio(tmp_path / "x.mp4", np.zeros(10), 16000)


def test_write_audio_is_atomic_and_clips(tmp_path):
    p = tmp_path / "o.wav"
    A.write_audio(p, np.stack([np.full(100, 3.0), np.full(100, -3.0)], 1), 8000)
    x, rate = sf.read(p)
    assert rate == 8000 and x.shape == (100, 2) and x.max() <= 1 and x.min() >= -1
    assert [f.name for f in tmp_path.iterdir()] == ["o.wav"]


def test_soundfont_errors(tmp_path, monkeypatch):
    from audiogenre.render import find_soundfont

    with pytest.raises(GenreError, match="no such sound font"):
        find_soundfont(tmp_path / "none.sf2")
    monkeypatch.setenv("GENRE_SOUNDFONT", str(tmp_path / "gone.sf2"))
    with pytest.raises(GenreError, match="GENRE_SOUNDFONT"):
        find_soundfont()


@needs_fluidsynth
def test_render_command_writes_audio_of_the_song(tmp_path):
    out = tmp_path / "jazz.wav"
    res = CliRunner().invoke(main, ["render", str(REPO / "data/examples/jazz_example.mid"), "-o", str(out), "--rate", "22050"])
    assert res.exit_code == 0, res.output
    x, rate = sf.read(out)
    assert rate == 22050 and x.shape[1] == 2
    assert 25 < len(x) / rate < 40 and np.sqrt(np.mean(x ** 2)) > 0.01
    bad = tmp_path / "bad.mid"
    bad.write_bytes(b"MThd garbage")
    res = CliRunner().invoke(main, ["render", str(bad), "-o", str(tmp_path / "b.wav")])
    assert res.exit_code == 1 and "cannot read" in res.output and len(res.output.strip().splitlines()) == 1


@needs_fluidsynth
def test_render_crop_has_the_notes_of_that_time(tmp_path):
    from audiogenre.render import Renderer, Track

    # one note from 1.0 s to 1.5 s: a crop from 0.9 s hears it at 0.1 s, a crop from 2 s hears nothing
    notes = np.array([[1.0, 1.5, 69, 100]])
    with Renderer(rate=16000) as r:
        a = r.render([Track(0, False, notes)], start=0.9, seconds=1.0)
        b = r.render([Track(0, False, notes)], start=2.0, seconds=1.0)
    env = np.abs(a[:, 0])
    assert env[:1000].max() < 1e-3 and env[1700:4000].max() > 0.01
    assert np.abs(b).max() < 1e-3
    assert abs(peak_hz(a[1700:9000, 0], 16000) - 440) < 10


@needs_fluidsynth
def test_render_dataset_splits_by_song_and_resumes(tmp_path):
    midi = tmp_path / "midi"
    for g, base in (("low", 40), ("high", 80)):
        (midi / g).mkdir(parents=True)
        for k in range(6):
            notes = [(i * 480, i * 480 + 400, base + (i * (k + 1)) % 12) for i in range(40)]  # 20 s at 120 bpm
            make_midi(midi / g / f"song{k}.mid", notes)
    (midi / "low" / "broken.mid").write_bytes(b"not midi")
    res = CliRunner().invoke(main, ["audio", "render-dataset", str(midi), "-o", str(tmp_path / "a"),
                                    "--clips-per-genre", "8", "--seconds", "3", "--rate", "16000"])
    assert res.exit_code == 0, res.output
    man = json.loads((tmp_path / "a/manifest.json").read_text())
    assert len(man["clips"]) == 16 and man["skipped"] == {"unreadable": 1}
    sides = {}
    for c in man["clips"]:
        sides.setdefault(c["song"], set()).add(c["split"])
        x, rate = sf.read(tmp_path / "a" / c["path"])
        assert rate == 16000 and len(x) == 48000
    assert all(len(s) == 1 for s in sides.values())  # a song never on two sides
    assert len(sides) == 12  # every song used before any song gets a second crop
    before = {p: p.stat().st_mtime_ns for p in (tmp_path / "a").rglob("*.wav")}
    res = CliRunner().invoke(main, ["audio", "render-dataset", str(midi), "-o", str(tmp_path / "a"),
                                    "--clips-per-genre", "8", "--seconds", "3", "--rate", "16000"])
    assert json.loads((tmp_path / "a/manifest.json").read_text())["clips"] == man["clips"]
    assert {p: p.stat().st_mtime_ns for p in (tmp_path / "a").rglob("*.wav")} == before  # kept, not re-rendered


@needs_fluidsynth
def test_a_render_does_not_depend_on_the_one_before():
    from audiogenre.render import Renderer, Track

    held = Track(48, False, np.array([[0.0, 5.0, 60, 127], [0.0, 5.0, 64, 127], [0.0, 5.0, 67, 127]]))  # strings, held
    quiet = Track(0, False, np.array([[0.8, 0.9, 72, 30]]))
    with Renderer(rate=16000) as r:
        alone = r.render([quiet], start=0.0, seconds=1.0)
        r.render([held], start=0.0, seconds=2.0)  # stops while the chord still sounds
        after = r.render([quiet], start=0.0, seconds=1.0)
    assert np.abs(after[:12000]).max() < 1e-3  # nothing of the chord in the next render
    assert np.abs(after - alone).max() < 0.02


def test_offset_past_the_end_is_an_error(tmp_path):
    sf.write(tmp_path / "t.wav", tone(300, 3.0, 16000), 16000)
    with pytest.raises(GenreError, match="after the offset 5 s"):
        A.load_clip(tmp_path / "t.wav", A.Preprocess(seconds=2.0, offset=5.0))
    clip = A.load_clip(tmp_path / "t.wav", A.Preprocess(seconds=2.0, offset=2.0))
    assert np.abs(clip[:15800]).min() >= 0 and np.abs(clip[:15800]).max() > 0.4 and not clip[16100:].any()  # 1 s real, then zeros
