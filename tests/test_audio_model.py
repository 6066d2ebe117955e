"""wav2vec2 classifier (tiny encoders built from a config), embedding cache, training,
evaluation, the gradient-guided transformation and the FAD command."""

import json

import numpy as np
import pytest
import soundfile as sf
import torch
from click.testing import CliRunner

from audiogenre import audio as A
from audiogenre.datasets import open_dataset
from audiogenre.embeddings import EmbeddingCache, HeadConfig, encode_items
from audiogenre.models import AudioClassifier, GenreHead, Wav2Vec2Backend, load_wav2vec2, make_random_wav2vec2
from audiogenre.transform import TransformConfig, optimise_window, transform_audio, windows
from cli.main import main
from shared.errors import GenreError

RATE = 22050


@pytest.fixture(scope="module")
def encoder_dir(tmp_path_factory):
    return make_random_wav2vec2(tmp_path_factory.mktemp("enc") / "tiny", size="tiny", seed=0)


def _clip(kind, k, seconds=2.0, rate=RATE):
    rng = np.random.default_rng(k)
    t = np.arange(int(seconds * rate)) / rate
    if kind == "low":  # slow low tones
        f = 110 * 2 ** (rng.integers(0, 12) / 12)
        x = 0.4 * np.sin(2 * np.pi * f * t) * (0.6 + 0.4 * np.sin(2 * np.pi * 0.5 * t))
    else:  # bright clicks and noise bursts
        x = 0.2 * rng.standard_normal(len(t)) * (np.sin(2 * np.pi * (4 + k % 3) * t) > 0.6)
    return x.astype(np.float32)


@pytest.fixture(scope="module")
def audio_set(tmp_path_factory):
    root = tmp_path_factory.mktemp("audio") / "set"
    for g in ("low", "high"):
        (root / g).mkdir(parents=True)
        for k in range(14):
            sf.write(root / g / f"{g}{k:02d}.wav", _clip(g, k), RATE)
    return root


@pytest.fixture(scope="module")
def trained(audio_set, encoder_dir, tmp_path_factory):
    from audiogenre.classify import train_audio_classifier

    out = tmp_path_factory.mktemp("clf") / "clf"
    ds = open_dataset(audio_set)
    report = train_audio_classifier(ds, out, encoder=str(encoder_dir), layers=7, preprocess=A.Preprocess(seconds=2.0),
                                    config=HeadConfig(epochs=25, patience=25), progress=False, echo=lambda s: None)
    return out, report


def test_backend_is_frozen_and_normalises_inside(encoder_dir):
    b = Wav2Vec2Backend.from_pretrained(str(encoder_dir), layers=1)
    assert b.layers == 1 and len(b.encoder.encoder.layers) == 1
    assert not any(p.requires_grad for p in b.parameters())
    b.train()
    assert not b.encoder.training  # frozen means eval mode, even inside a module in train mode
    x = torch.from_numpy(_clip("low", 0, 1.0, 16000))[None]
    e1, e2 = b(x), b(x)
    assert torch.equal(e1, e2)  # no dropout / masking
    assert torch.allclose(b(3 * x + 0.1), e1, atol=1e-4)  # gain and offset removed by the normalisation
    xr = x.clone().requires_grad_(True)
    b(xr).sum().backward()
    assert xr.grad is not None and xr.grad.abs().sum() > 0  # gradients reach the waveform


def test_encoder_loading_errors(tmp_path, encoder_dir):
    with pytest.raises(GenreError, match="no such encoder folder"):
        load_wav2vec2(str(tmp_path / "nothing"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(GenreError, match="no config.json"):
        load_wav2vec2(str(tmp_path / "empty"))
    # all layers when asked for more than there are (the tiny encoder has 2)
    assert Wav2Vec2Backend.from_pretrained(str(encoder_dir), layers=7).layers == 2


def test_embedding_cache_encodes_each_clip_once_and_never_reuses_stale(audio_set, encoder_dir, tmp_path):
    ds = open_dataset(audio_set)
    items = ds.items[:6]
    pre = A.Preprocess(seconds=2.0)
    b = Wav2Vec2Backend.from_pretrained(str(encoder_dir))
    calls = []
    b.register_forward_hook(lambda m, i, o: calls.append(i[0].shape[0]))
    cache = EmbeddingCache.in_folder(tmp_path, b.describe(), pre)
    e1, ok = encode_items(b, items, pre, cache=cache, progress=False)
    assert sum(calls) == 6 and ok == list(range(6)) and e1.shape == (6, 32)
    cache2 = EmbeddingCache.in_folder(tmp_path, b.describe(), pre)
    assert len(cache2) == 6
    e2, _ = encode_items(b, items, pre, cache=cache2, progress=False)
    assert sum(calls) == 6 and np.array_equal(e1, e2)  # read back, not encoded again
    # other preprocessing or other weights: another key, encoded afresh
    assert EmbeddingCache.file_name(b.describe(), A.Preprocess(seconds=1.0)) != cache.path.name
    other = Wav2Vec2Backend.from_pretrained(str(make_random_wav2vec2(tmp_path / "enc2", "tiny", seed=1)))
    assert other.identity() != b.identity()
    stale = EmbeddingCache(cache.path, other.describe(), pre)  # same file, other encoder
    assert len(stale) == 0
    with pytest.raises(GenreError, match="noise"):
        encode_items(b, items, A.Preprocess(seconds=2.0, noise=0.1), cache=cache, progress=False)


def test_embedding_cache_survives_an_interrupted_run(audio_set, encoder_dir, tmp_path):
    ds = open_dataset(audio_set)
    pre = A.Preprocess(seconds=2.0)
    b = Wav2Vec2Backend.from_pretrained(str(encoder_dir))
    n = [0]

    def boom(m, i, o):
        n[0] += 1
        if n[0] == 3:
            raise KeyboardInterrupt

    h = b.register_forward_hook(boom)
    cache = EmbeddingCache.in_folder(tmp_path, b.describe(), pre)
    with pytest.raises(KeyboardInterrupt):
        encode_items(b, ds.items[:10], pre, cache=cache, batch_size=2, progress=False)
    h.remove()
    again = EmbeddingCache.in_folder(tmp_path, b.describe(), pre)
    assert len(again) == 4  # the two finished batches were flushed on the way out
    assert [p.name for p in tmp_path.iterdir()] == [cache.path.name]  # no temporary files left


def test_train_evaluate_and_reload(trained, audio_set, encoder_dir, tmp_path):
    out, report = trained
    for f in ("model.safetensors", "model.json", "report.json", "confusion.png", "history.png", "log.csv", "config.json"):
        assert (out / f).exists(), f
    cfg = json.loads((out / "config.json").read_text())
    assert cfg["train"]["epochs"] == 25 and cfg["train"]["weight_decay"] == 1e-5 and cfg["backend"]["type"] == "wav2vec2"
    assert report["split"] == "test" and report["n"] > 0
    assert report["accuracy"] >= 0.75  # two very different synthetic genres
    model, meta = AudioClassifier.load(out)
    assert model.genres == ["high", "low"] and meta["settings"]["seconds"] == 2.0
    assert not model.backend.encoder.training
    from audiogenre.classify import evaluate_audio_classifier

    again = evaluate_audio_classifier(out, open_dataset(audio_set), progress=False)
    assert again["accuracy"] == report["accuracy"] and again["confusion"] == report["confusion"]
    res = CliRunner().invoke(main, ["audio", "evaluate", str(out), str(audio_set), "--json", str(tmp_path / "e.json")])
    assert res.exit_code == 0, res.output
    assert "accuracy" in res.output and json.loads((tmp_path / "e.json").read_text())["split"] == "test"


def test_classifier_refuses_an_encoder_with_other_weights(trained, tmp_path):
    out, _ = trained
    other = make_random_wav2vec2(tmp_path / "other", "tiny", seed=5)
    with pytest.raises(GenreError, match="other weights"):
        AudioClassifier.load(out, encoder=str(other))


def test_windows_cover_the_song_evenly():
    assert windows(1000, 100, 20.0, 1.0) == [(0, 1000)]  # shorter than a window: one window
    b = windows(2550, 100, 10.0, 1.0)
    assert b == [(0, 1000), (775, 1775), (1550, 2550)]  # evenly spread, overlaps ≥ 1 s
    assert windows(1899, 100, 10.0, 1.0) == [(0, 1000), (899, 1899)]  # no near-duplicate third window
    assert windows(1901, 100, 10.0, 1.0) == [(0, 1000), (450, 1450), (901, 1901)]  # evenly, not 0/900/901


def _model(encoder_dir, genres=("a", "b", "c")):
    torch.manual_seed(0)
    b = Wav2Vec2Backend.from_pretrained(str(encoder_dir))
    return AudioClassifier(b, GenreHead(b.dim, len(genres)), genres).eval()


def test_gradient_steps_raise_the_target_probability_and_clip_in_place(encoder_dir):
    model = _model(encoder_dir)
    x = _clip("low", 1, 1.0, 16000) * 2.2  # peaks near ±0.9
    with torch.no_grad():
        p0 = torch.softmax(model(torch.from_numpy(x)[None]), -1)[0]
    t = int(p0.argmin())
    xh, steps = optimise_window(model, x, t, TransformConfig(lam=0.0, lr=5e-2, steps=10, target_prob=1.0, window=1.0, overlap=0.2,
                                                             min_snr=None))  # no SNR floor: the clamp is what is tested
    assert steps == 10
    assert xh.max() <= 1.0 and xh.min() >= -1.0 and np.isclose(np.abs(xh).max(), 1.0)  # big steps were clipped
    with torch.no_grad():
        p1 = torch.softmax(model(torch.from_numpy(xh)[None]), -1)[0]
    assert p1[t] > p0[t] + 0.05
    # λ is a real weight: a large λ keeps x̂ much closer to x
    near, _ = optimise_window(model, x, t, TransformConfig(lam=1e4, lr=1e-3, steps=10, target_prob=1.0, window=1.0, overlap=0.2))
    far, _ = optimise_window(model, x, t, TransformConfig(lam=0.0, lr=1e-3, steps=10, target_prob=1.0, window=1.0, overlap=0.2))
    assert np.sum((near - x) ** 2) < 0.5 * np.sum((far - x) ** 2)
    # stops as soon as the target probability is reached
    _, steps = optimise_window(model, x, t, TransformConfig(lr=1e-3, steps=50, target_prob=float(p0[t]) / 2, window=1.0, overlap=0.2))
    assert steps == 0


@pytest.mark.parametrize("rate,channels,seconds,n_windows", [(44100, 2, 3.3, 5), (22050, 1, 1.2, 2), (8000, 1, 0.6, 1)])
def test_transform_keeps_rate_channels_and_length(encoder_dir, rate, channels, seconds, n_windows):
    model = _model(encoder_dir)
    x = np.stack([_clip("high", c + 2, seconds, rate) for c in range(channels)], axis=1)
    audio = A.Audio(x, rate)
    cfg = TransformConfig(lr=2e-3, steps=4, window=1.0, overlap=0.25, target_prob=1.0)
    out, report, delta = transform_audio(model, audio, "a", cfg, progress=False)
    assert out.shape == x.shape and out.dtype == np.float32
    assert report.rate == rate and report.channels == channels
    assert len(report.windows) == n_windows  # 1 s windows, ≥ 0.25 s overlap, spread evenly
    assert report.windows[0].start == 0 and abs(report.windows[-1].end - len(delta) / 16000) < 1e-6
    assert 0 < report.snr_db < 200 and np.abs(out).max() <= 1.0
    # the change is band-limited: nothing above max_hz (7 kHz), so it survives resampling to the
    # song's rate and back; the song's own content above it is untouched
    if rate == 44100:
        d = out[:, 0] - x[:, 0]
        spec = np.abs(np.fft.rfft(d)) ** 2
        f = np.fft.rfftfreq(len(d), 1 / rate)
        assert spec[f > 7100].sum() < 1e-4 * spec.sum()
        d16 = delta.astype(np.float64)
        s16 = np.abs(np.fft.rfft(d16)) ** 2
        assert s16[np.fft.rfftfreq(len(d16), 1 / 16000) > 7100].sum() < 1e-4 * s16.sum()


def test_transform_refuses_silence_short_songs_and_unknown_genres(encoder_dir):
    model = _model(encoder_dir)
    with pytest.raises(GenreError, match="silent"):
        transform_audio(model, A.Audio(np.zeros((22050, 2), np.float32), 22050), "a", progress=False)
    with pytest.raises(GenreError, match="too short"):
        transform_audio(model, A.Audio(np.ones((100, 1), np.float32) * 0.1, 22050), "a", progress=False)
    with pytest.raises(GenreError, match="unknown genre 'rock'"):
        transform_audio(model, A.Audio(np.ones((22050, 1), np.float32) * 0.1, 22050), "rock", progress=False)


def test_report_is_measured_on_the_written_file(trained, tmp_path):
    from audiogenre.transform import transform_file

    model, _ = AudioClassifier.load(trained[0])
    song = tmp_path / "u8.wav"
    x = np.concatenate([_clip("low", 7, 2.0), _clip("low", 8, 2.0)])
    sf.write(song, x, RATE, subtype="PCM_U8")  # 8-bit: the output is quantised coarsely too
    rep = transform_file(model, song, "high", tmp_path / "o.wav", TransformConfig(lr=1e-3, steps=3, window=2.0, overlap=0.5),
                         progress=False)
    a, _ = sf.read(song, dtype="float32")
    b, _ = sf.read(tmp_path / "o.wav", dtype="float32")
    assert sf.info(str(tmp_path / "o.wav")).subtype == "PCM_U8"
    from audiogenre.audio import snr_db

    assert rep.snr_db == pytest.approx(snr_db(a, b - a), abs=1e-3)


def test_transform_and_fad_commands(trained, audio_set, tmp_path):
    out, _ = trained
    song = tmp_path / "song.wav"
    x = np.concatenate([_clip("low", 3, 2.0), _clip("low", 4, 1.5)])
    sf.write(song, np.stack([x, 0.5 * x], 1), RATE)
    res = CliRunner().invoke(main, ["audio", "transform", str(song), "--classifier", str(out), "--to", "high",
                                    "-o", str(tmp_path / "o.wav"), "--steps", "3", "--window", "2", "--overlap", "0.5",
                                    "--json", str(tmp_path / "r.json")])
    assert res.exit_code == 0, res.output
    info = sf.info(str(tmp_path / "o.wav"))
    assert info.samplerate == RATE and info.channels == 2 and info.frames == len(x)
    r = json.loads((tmp_path / "r.json").read_text())
    assert len(r["windows"]) == 2 and "SNR" in res.output and "p(high)" in res.output
    res = CliRunner().invoke(main, ["audio", "transform", str(song), "--classifier", str(out), "--to", "rock", "-o", str(tmp_path / "x.wav")])
    assert res.exit_code == 1 and "unknown genre 'rock'" in res.output
    res = CliRunner().invoke(main, ["audio", "transform", str(song), "--classifier", str(out), "--to", "high", "-o", str(song)])
    assert res.exit_code == 1 and "overwrite" in res.output
    res = CliRunner().invoke(main, ["audio", "transform", str(song), "--classifier", str(out), "--to", "high", "-o", str(tmp_path / "x.mp3")])
    assert res.exit_code == 1 and "use .wav" in res.output
    # FAD: a genre against itself (other files) is closer than against the other genre
    res = CliRunner().invoke(main, ["audio", "fad", "--reference", str(audio_set / "low"), "--test", str(audio_set / "high"),
                                    "--embedding", str(out), "--json", str(tmp_path / "f.json"), "--per-song"])
    assert res.exit_code == 0, res.output
    far = json.loads((tmp_path / "f.json").read_text())
    assert far["n_reference"] == 28 and far["n_test"] == 28 and far["dim"] == 32 and len(far["per_song"]) == 14
    (tmp_path / "low_a").mkdir()
    (tmp_path / "low_b").mkdir()
    for k, f in enumerate(sorted((audio_set / "low").glob("*.wav"))):
        (tmp_path / ("low_a" if k % 2 else "low_b") / f.name).write_bytes(f.read_bytes())
    res = CliRunner().invoke(main, ["audio", "fad", "--reference", str(tmp_path / "low_a"), "--test", str(tmp_path / "low_b"),
                                    "--embedding", str(out), "--json", str(tmp_path / "g.json")])
    near = json.loads((tmp_path / "g.json").read_text())
    assert near["fad"] < far["fad"]
    res = CliRunner().invoke(main, ["audio", "fad", "--reference", str(tmp_path / "nope"), "--test", str(audio_set), "--embedding", str(out)])
    assert res.exit_code == 1 and "no such folder" in res.output


def test_train_command_errors(tmp_path, encoder_dir):
    res = CliRunner().invoke(main, ["audio", "train", str(tmp_path / "none"), "--encoder", str(encoder_dir), "-o", str(tmp_path / "c")])
    assert res.exit_code == 1 and res.output.startswith("Error:") and len(res.output.strip().splitlines()) == 1
    res = CliRunner().invoke(main, ["audio", "train", str(tmp_path), "--encoder", str(tmp_path / "no-encoder"), "-o", str(tmp_path / "c")])
    assert res.exit_code == 1


def test_missing_hub_weights_give_one_line_with_the_way_out(audio_set, tmp_path):
    import os
    import subprocess
    import sys

    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_HOME": str(tmp_path / "hf")}
    r = subprocess.run([sys.executable, "-m", "cli.main", "audio", "train", str(audio_set), "--encoder", "facebook/wav2vec2-base",
                        "-o", str(tmp_path / "c")], capture_output=True, text=True, env=env, cwd=str(tmp_path), timeout=300)
    assert r.returncode == 1
    assert r.stderr.strip().splitlines()[-1].startswith("Error: the wav2vec2 weights 'facebook/wav2vec2-base' are not in the local")
    assert "--encoder DIR" in r.stderr


def test_bf16_steps_also_raise_the_target_probability_and_leave_parameters_alone(encoder_dir):
    model = _model(encoder_dir)
    x = _clip("high", 2, 1.0, 16000)
    with torch.no_grad():
        p0 = torch.softmax(model(torch.from_numpy(x)[None]), -1)[0]
    t = int(p0.argmin())
    before = {k: v.clone() for k, v in model.state_dict().items()}
    grads = [p.requires_grad for p in model.parameters()]
    xh, _ = optimise_window(model, x, t, TransformConfig(lam=0.0, lr=5e-3, steps=8, target_prob=1.0, bf16=True, window=1.0, overlap=0.2))
    with torch.no_grad():
        p1 = torch.softmax(model(torch.from_numpy(xh)[None]), -1)[0]
    assert p1[t] > p0[t]
    assert all(torch.equal(v, before[k]) for k, v in model.state_dict().items())
    assert [p.requires_grad for p in model.parameters()] == grads  # restored afterwards
    assert all(p.grad is None for p in model.parameters())  # no parameter gradient was ever computed


def test_damaged_or_mismatched_model_files_give_one_line(trained, tmp_path):
    import shutil

    bad = tmp_path / "bad"
    shutil.copytree(trained[0], bad)
    meta = json.loads((bad / "model.json").read_text())
    meta["genres"] = meta["genres"] + ["rock"]
    (bad / "model.json").write_text(json.dumps(meta))
    with pytest.raises(GenreError, match="do not fit the architecture"):
        AudioClassifier.load(bad)
    del meta["backend"]
    (bad / "model.json").write_text(json.dumps(meta))
    with pytest.raises(GenreError, match="does not describe a 'audio-classifier' model"):
        AudioClassifier.load(bad)


def test_classifier_trained_with_a_relative_encoder_path_loads_from_elsewhere(audio_set, encoder_dir, tmp_path, monkeypatch):
    import shutil

    shutil.copytree(encoder_dir, tmp_path / "enc")
    monkeypatch.chdir(tmp_path)
    r = CliRunner().invoke(main, ["audio", "train", str(audio_set), "--encoder", "enc", "--epochs", "1", "-o", "clf"])
    assert r.exit_code == 0, r.output
    monkeypatch.chdir(audio_set)
    model, meta = AudioClassifier.load(tmp_path / "clf")
    assert meta["backend"]["encoder"] == str((tmp_path / "enc").resolve())


def test_evaluate_with_noise_is_reproducible(trained, audio_set):
    from audiogenre.classify import evaluate_audio_classifier

    a = evaluate_audio_classifier(trained[0], open_dataset(audio_set), noise=0.5, progress=False)
    b = evaluate_audio_classifier(trained[0], open_dataset(audio_set), noise=0.5, progress=False)
    assert a["confusion"] == b["confusion"] and a["noise"] == 0.5


def test_encoder_identity_covers_the_config_not_the_path(encoder_dir, tmp_path):
    import shutil

    a = Wav2Vec2Backend.from_pretrained(str(encoder_dir))
    shutil.copytree(encoder_dir, tmp_path / "copy")
    assert Wav2Vec2Backend.from_pretrained(str(tmp_path / "copy")).identity() == a.identity()  # same weights elsewhere
    b = Wav2Vec2Backend.from_pretrained(str(encoder_dir))
    b.encoder.config.layer_norm_eps = 1e-3  # same weights, other arithmetic
    assert b.identity() != a.identity()


def test_train_audio_classifier_leaves_the_callers_random_state_alone(trained, audio_set, encoder_dir, tmp_path):
    from audiogenre.classify import train_audio_classifier
    from tests.test_random_state import leaves_the_callers_generators_alone

    ds = open_dataset(audio_set)  # the embeddings are in the cache the trained fixture filled
    leaves_the_callers_generators_alone(lambda: train_audio_classifier(
        ds, tmp_path / "clf", encoder=str(encoder_dir), layers=7, preprocess=A.Preprocess(seconds=2.0),
        config=HeadConfig(epochs=1, hidden=8), device="cpu", progress=False))
