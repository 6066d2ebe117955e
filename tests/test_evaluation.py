"""Genre classifier, S_tot evaluation and saliency on tiny models and caches made in code."""

import json

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from cli.main import main
from midigenre import models
from midigenre.attribution import attribute
from midigenre.classifier import Classifier, ClassifierConfig, GenreClassifier, classification_report, train_classifier
from midigenre.evaluate import evaluate_transfer
from midigenre.train import CycleGANTask, GenreSource, TrainConfig
from midigenre.transfer import TransferModel
from shared.errors import GenreError

TINY_CLF = ClassifierConfig(channels=(8, 8, 8, 8), epochs=15, batch_size=8, lr=2e-3)


def test_classifier_shapes_follow_the_reference():
    net = GenreClassifier(3)
    convs = [m for m in net.modules() if isinstance(m, torch.nn.Conv2d)]
    assert [c.kernel_size for c in convs] == [(1, 12), (4, 1), (2, 1), (8, 1), (1, 7)]
    assert [c.stride for c in convs] == [(1, 12), (4, 1), (2, 1), (8, 1), (1, 7)]
    assert net(torch.rand(5, 1, 64, 84).round()).shape == (5, 3)


def test_classification_report_hand_computed():
    y_true = np.array([0, 0, 0, 1, 1])
    y_pred = np.array([0, 1, 0, 1, 1])
    r = classification_report(y_true, y_pred, ["a", "b"])
    assert r["accuracy"] == pytest.approx(0.8) and r["confusion"] == [[2, 1], [0, 2]]
    assert r["per_class"]["a"]["precision"] == 1.0 and r["per_class"]["a"]["recall"] == pytest.approx(2 / 3)
    assert r["per_class"]["b"]["precision"] == pytest.approx(2 / 3) and r["per_class"]["b"]["recall"] == 1.0
    assert r["per_class"]["a"]["f1"] == pytest.approx(0.8)


def test_train_classifier_saves_a_self_describing_model(caches, tmp_path):
    srcs = [GenreSource.parse(caches[0]), GenreSource.parse(caches[1])]
    rep = train_classifier(srcs, tmp_path / "clf", TINY_CLF)
    assert rep["accuracy"] >= 0.75  # low vs high register is easy
    assert {p.name for p in (tmp_path / "clf").iterdir()} >= {"model.safetensors", "model.json", "report.json", "confusion.png", "split.json"}
    clf = Classifier.load(tmp_path / "clf")
    assert clf.genres == ["low", "high"] and clf.index("high") == 1
    with pytest.raises(GenreError, match="knows low, high"):
        clf.index("jazz")
    p = clf.probabilities(np.zeros((2, 64, 84), bool), sigma_c=0.5)
    assert p.shape == (2, 2) and np.allclose(p.sum(1), 1, atol=1e-5)
    with pytest.raises(GenreError, match="at least two"):
        train_classifier(srcs[:1], tmp_path / "x", TINY_CLF)


@pytest.fixture
def trained(caches, tmp_path, monkeypatch):
    monkeypatch.setitem(models.PRESETS, "tiny", models.ModelConfig(g_channels=8, n_res_blocks=2, d_channels=8))
    a, b = GenreSource.parse(caches[0]), GenreSource.parse(caches[1])
    CycleGANTask(a, b, tmp_path / "run", TrainConfig(preset="tiny", epochs=1, batch_size=4)).fit()
    train_classifier([a, b], tmp_path / "clf", TINY_CLF)
    return tmp_path / "run", tmp_path / "clf"


def test_evaluate_transfer_table(trained, caches):
    run, clf_dir = trained
    model, clf = TransferModel.load(run), Classifier.load(clf_dir)
    from midigenre.dataset import PhraseCache

    with PhraseCache(caches[0]) as ca, PhraseCache(caches[1]) as cb:
        xa, xb = ca.phrases("low", slice(0, 6)), cb.phrases("high", slice(0, 6))
    res = evaluate_transfer(model, clf, xa, xb)
    for key, src in (("low→high", xa), ("high→low", xb)):
        r = res[key]
        assert r["n"] == 6
        assert r["S"] == pytest.approx(0.5 * (r["P_src(x)"] + r["P_src(cycled)"] - 2 * r["P_src(transferred)"]))
        y = model.transfer_phrases(src, "high" if key.startswith("low") else "low")[0]
        from midigenre.metrics import content_change

        assert r["content_change"]["mean"] == pytest.approx(np.nanmean(content_change(src, y)))
    assert res["S_tot"] == pytest.approx(0.5 * (res["low→high"]["S"] + res["high→low"]["S"]))


def test_cli_classifier_evaluate_explain(trained, caches, tmp_path):
    run, _ = trained

    def cli(*args):
        return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)

    r = cli("midi", "train-classifier", "--genre", f"low={caches[0]}", "--genre", f"high={caches[1]}",
            "--out", tmp_path / "c2", "--epochs", "2")
    assert r.exit_code == 0, r.output
    assert "held-out accuracy" in r.output and "precision" in r.output and (tmp_path / "c2" / "confusion.png").exists()
    r = cli("midi", "evaluate", "--model", run, "--classifier", tmp_path / "c2", "-o", tmp_path / "e.json")
    assert r.exit_code == 0, r.output
    assert "S_tot" in r.output and "held-out songs" in r.output
    ev = json.loads((tmp_path / "e.json").read_text())
    assert set(ev) >= {"S_tot", "low→high", "high→low", "content_change"}
    r = cli("midi", "explain", tmp_path / "low" / "low00.mid", "--classifier", tmp_path / "c2", "-g", "low",
            "-o", tmp_path / "s.png")
    assert r.exit_code == 0 and (tmp_path / "s.png").stat().st_size > 5000
    r = cli("midi", "explain", caches[1], "--song", "0", "--classifier", tmp_path / "c2", "-g", "high",
            "-o", tmp_path / "s2.png", "--method", "integrated-gradients")
    assert r.exit_code == 0, r.output
    r = cli("midi", "explain", caches[1], "--classifier", tmp_path / "c2", "-g", "jazz", "-o", tmp_path / "s3.png")
    assert r.exit_code == 1 and "knows low, high" in r.output


def test_saliency_is_positive_input_masked_and_thresholded(trained):
    _, clf_dir = trained
    clf = Classifier.load(clf_dir)
    rng = np.random.default_rng(0)
    x = rng.random((3, 64, 84)) < 0.05
    x[2] = False  # a silent phrase
    for method in ("saliency", "integrated-gradients"):
        m = attribute(clf, x, "low", method=method)
        assert m.shape == x.shape and m.min() >= 0 and m.max() <= 1
        assert not m[~x].any()  # only played notes light up
        assert not m[2].any()
        nz = m[:2][m[:2] > 0]
        assert nz.size and nz.min() >= 0.25 and np.isclose(m[0].max(), 1.0)


def test_evaluate_with_fad_renders_phrases(trained, caches, tmp_path):
    from audiogenre.models import make_random_wav2vec2
    from tests.test_audio import fluidsynth_ready

    if fluidsynth_ready() is not None:
        pytest.skip(f"FluidSynth not usable: {fluidsynth_ready()}")
    run, _ = trained
    enc = make_random_wav2vec2(tmp_path / "enc", "tiny")
    r = CliRunner().invoke(main, ["midi", "train-classifier", "--genre", f"low={caches[0]}", "--genre", f"high={caches[1]}",
                                  "--out", str(tmp_path / "c"), "--epochs", "1"])
    assert r.exit_code == 0, r.output
    r = CliRunner().invoke(main, ["midi", "evaluate", "--model", str(run), "--classifier", str(tmp_path / "c"), "--fad",
                                  "--fad-embedding", str(enc), "--fad-phrases", "6", "-o", str(tmp_path / "e.json")])
    assert r.exit_code == 0, r.output
    assert "transferred vs real target" in r.output
    fad = json.loads((tmp_path / "e.json").read_text())["fad"]
    for key in ("low→high", "high→low"):
        f = fad[key]
        assert f["n_target"] >= 16 and f["n_source"] >= 16  # 8 one-second embeddings per rendered phrase
        assert f["n_source"] == f["n_transferred"]  # compared at the same n (FAD is biased by n)
        assert np.isfinite(f["fad_transferred_vs_target"]) and f["fad_source_vs_target"] > 0
