"""Library functions report progress through a callback and print nothing; the CLI draws the bars."""

import numpy as np
import pytest
import soundfile as sf

from audiogenre import audio as A
from cli.common import TqdmProgress
from shared.progress import progress_callback, silent


class Recorder:
    def __init__(self):
        self.calls = []

    def __call__(self, stage, done, total, note=""):
        self.calls.append((stage, done, total, note))

    def check(self, stage):
        """Calls of one stage: done never goes back, never passes total, and ends at total."""
        calls = [c for c in self.calls if c[0] == stage]
        assert calls, self.calls
        done = [c[1] for c in calls]
        assert done == sorted(done) and all(d <= c[2] for d, c in zip(done, calls))
        assert calls[-1][1] == calls[-1][2]
        return calls


def test_progress_callback():
    assert progress_callback(None) is silent and progress_callback(False) is silent and progress_callback(True) is silent
    r = Recorder()
    assert progress_callback(r) is r


def test_tqdm_progress_draws_one_bar_per_stage(capsys):
    with TqdmProgress(unit="clip") as p:
        p("encoding", 0, 4)
        p("encoding", 4, 4)
        p("encoding", 0, 2)  # the stage again (the next split): a new bar
        p("encoding", 2, 2)
        p("reading", 1, 3, note="x.wav")
    err = capsys.readouterr()
    assert err.out == ""
    assert err.err.count("encoding") >= 2 and "4/4" in err.err and "2/2" in err.err and "1/3" in err.err and "x.wav" in err.err


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory):
    from audiogenre.models import AudioClassifier, GenreHead, Wav2Vec2Backend, make_random_wav2vec2

    enc = make_random_wav2vec2(tmp_path_factory.mktemp("enc") / "tiny", size="tiny", seed=0)
    b = Wav2Vec2Backend.from_pretrained(str(enc))
    return AudioClassifier(b, GenreHead(b.dim, 2), ["a", "b"]).eval()


def _wave(seconds, rate=16000, seed=0):
    t = np.arange(int(seconds * rate)) / rate
    return (0.3 * np.sin(2 * np.pi * (200 + 50 * seed) * t)).astype(np.float32)


def test_encode_items_and_folder_embeddings_report_and_print_nothing(tiny_model, tmp_path, capsys):
    from audiogenre.datasets import open_dataset
    from audiogenre.embeddings import encode_items
    from audiogenre.fad_embed import folder_embeddings

    for g in ("x", "y"):
        (tmp_path / "set" / g).mkdir(parents=True)
        for k in range(3):
            sf.write(tmp_path / "set" / g / f"{k}.wav", _wave(1.0, seed=k), 16000)
    items = open_dataset(tmp_path / "set").items
    r = Recorder()
    emb, ok = encode_items(tiny_model.backend, items, A.Preprocess(seconds=1.0), batch_size=4, progress=r)
    assert len(ok) == 6 and [c[1:3] for c in r.check("encoding")] == [(0, 6), (4, 6), (6, 6)]
    r = Recorder()
    out = folder_embeddings(tiny_model.backend, tmp_path / "set" / "x", segment=0.5, progress=r)
    assert len(out) == 3 and len(r.check("embedding x")) == 4
    assert capsys.readouterr() == ("", "")


def test_transform_reports_steps_and_windows(tiny_model, capsys):
    from audiogenre.transform import TransformConfig, transform_audio

    r = Recorder()
    cfg = TransformConfig(lr=1e-3, steps=3, window=1.0, overlap=0.25, target_prob=1.0, passes=1)
    transform_audio(tiny_model, A.Audio(_wave(2.0)[:, None], 16000), "a", cfg, progress=r)
    calls = r.check("→ a")
    assert calls[0][1:3] == (0, 9) and calls[-1][1:3] == (9, 9)  # 3 windows × 3 steps
    assert any("window 3/3" in c[3] and "p(a)=" in c[3] for c in calls)
    assert capsys.readouterr() == ("", "")
