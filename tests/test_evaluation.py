"""Genre classifier, S_tot evaluation and saliency on tiny models and caches made in code."""

import json

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from cli.main import main
from midigenre.attribution import attribute
from midigenre.classifier import Classifier, ClassifierConfig, GenreClassifier, classification_report, train_classifier
from midigenre.evaluate import evaluate_transfer
from midigenre.train import GenreSource
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


@pytest.fixture(scope="module")
def trained_classifier(caches, tmp_path_factory):
    """A tiny classifier low vs high, trained once for the module: (folder, report); READ ONLY."""
    srcs = [GenreSource.parse(caches[0]), GenreSource.parse(caches[1])]
    out = tmp_path_factory.mktemp("clf") / "clf"
    return out, train_classifier(srcs, out, TINY_CLF)


def test_train_classifier_saves_a_self_describing_model(trained_classifier, caches, tmp_path):
    clf_dir, rep = trained_classifier
    assert rep["accuracy"] >= 0.75  # low vs high register is easy
    assert {p.name for p in clf_dir.iterdir()} >= {"model.safetensors", "model.json", "report.json", "confusion.png", "split.json"}
    clf = Classifier.load(clf_dir)
    assert clf.genres == ["low", "high"] and clf.index("high") == 1
    with pytest.raises(GenreError, match="knows low, high"):
        clf.index("jazz")
    p = clf.probabilities(np.zeros((2, 64, 84), bool), sigma_c=0.5)
    assert p.shape == (2, 2) and np.allclose(p.sum(1), 1, atol=1e-5)
    with pytest.raises(GenreError, match="at least two"):
        train_classifier([GenreSource.parse(caches[0])], tmp_path / "x", TINY_CLF)


@pytest.fixture(scope="module")
def trained(tiny_run, trained_classifier):
    """(run folder of a tiny CycleGAN, classifier folder), both low ↔ high; READ ONLY."""
    return tiny_run, trained_classifier[0]


# ---- S_tot with a classifier and generators whose outputs are known ------------------------------

class _ByMeanPitch(torch.nn.Module):
    """A stand-in classifier net: 'high' when a phrase's mean pitch row is above 42, else 'low'.
    Its outputs are in the order high, low (the model's genres are a = low, b = high), so an
    index mix-up shows."""

    def forward(self, x):
        w = x[:, 0].sum(1)  # (B, 84) notes per pitch row
        mean = (w * torch.arange(84.0)).sum(1) / w.sum(1).clamp(min=1)
        return torch.stack([mean - 42.0, 42.0 - mean], 1) * 10


class _Transpose(torch.nn.Module):
    """A stand-in generator: shifts the piano roll by ``shift`` pitch rows (no wrap-around)."""

    def __init__(self, shift):
        super().__init__()
        self.shift = shift

    def forward(self, x):
        y = torch.zeros_like(x)
        s = self.shift
        if s > 0:
            y[..., s:] = x[..., :-s]
        else:
            y[..., :s] = x[..., -s:]
        return y


def _phrases(*pitch_sets):
    x = np.zeros((len(pitch_sets), 64, 84), bool)
    for i, pitches in enumerate(pitch_sets):
        for p in pitches:
            x[i, 8:24, p] = True  # one held note (or chord) per phrase
    return x


def test_evaluate_transfer_table_on_known_outputs():
    """S, S_tot and content change against hand-computed values: G_AB transposes up 26 rows,
    G_BA down 30; the classifier says 'high' above mean row 42."""
    from midigenre.pianoroll import RollSettings

    settings = RollSettings()
    clf = Classifier(_ByMeanPitch(), ["high", "low"], settings.hash(), {}, torch.device("cpu"))
    model = TransferModel(_Transpose(26), _Transpose(-30), {"a": "low", "b": "high"}, settings,
                          {"settings": settings.to_dict()}, torch.device("cpu"))
    # A = low. Rows (mean) → classes:  x: 10 L, 14 L, {8, 34} (21) L, 44 H          P_low(x)  = 3/4
    #   x̂ = +26:  36 L, 40 L, {34, 60} (47) H, 70 H                                  P_low(x̂)  = 2/4
    #   x̃ = x̂ − 30:  6 L, 10 L, {4, 30} (17) L, 40 L                                 P_low(x̃)  = 4/4
    #   S_low→high = ½ (3/4 + 1 − 2·2/4) = 0.375; content change 2, 2, 1 (the chord keeps row 34), 2
    x_a = _phrases([10], [14], [8, 34], [44])
    # B = high. x: 60 H, 50 H, 80 H, 30 L, 66 H                                      P_high(x) = 4/5
    #   x̂ = −30:  30 L, 20 L, 50 H, 0 L, 36 L                                        P_high(x̂) = 1/5
    #   x̃ = x̂ + 26:  56 H, 46 H, 76 H, 26 L, 62 H                                    P_high(x̃) = 4/5
    #   S_high→low = ½ (4/5 + 4/5 − 2·1/5) = 0.6; content change 2 each
    x_b = _phrases([60], [50], [80], [30], [66])
    res = evaluate_transfer(model, clf, x_a, x_b)
    ab, ba = res["low→high"], res["high→low"]
    assert (ab["n"], ba["n"]) == (4, 5) and res["genres"] == {"a": "low", "b": "high"}
    assert (ab["P_src(x)"], ab["P_src(transferred)"], ab["P_src(cycled)"]) == pytest.approx((0.75, 0.5, 1.0))
    assert (ba["P_src(x)"], ba["P_src(transferred)"], ba["P_src(cycled)"]) == pytest.approx((0.8, 0.2, 0.8))
    assert ab["S"] == pytest.approx(0.375) and ba["S"] == pytest.approx(0.6)
    assert res["S_tot"] == pytest.approx(0.4875)
    assert ab["content_change"]["mean"] == pytest.approx(1.75) and ab["content_change"]["std"] == pytest.approx(0.1875 ** 0.5)
    assert ab["added"]["mean"] == pytest.approx(0.875) and ab["removed"]["mean"] == pytest.approx(0.875)
    assert ba["content_change"] == pytest.approx({"mean": 2.0, "std": 0.0})
    assert res["content_change"]["mean"] == pytest.approx(17 / 9)  # over all 9 phrases
    assert ab["cycle_content_change"]["mean"] == pytest.approx(2.0)  # x̃ is x shifted down 4 rows
    assert ab["transposition_invariant"]["mean"] == 0.0 and ba["transposition_invariant"]["mean"] == 0.0
    # the song: +26 rows moves every melody note, but the chord {8, 34} → {34, 60} still sounds its
    # top note 34 (under 60); it alone shares a pitch class, so per-beat chroma similarity is ½ in
    # its 4 beats and 0 in the other 12
    song = ab["song"]
    assert song["melody_sounding"] == 0.25 and song["melody_top"] == 0.0
    assert song["harmony"] == pytest.approx(0.125) and ba["song"]["harmony"] == 0.0
    assert song["judges"]["classifier"]["share"] == pytest.approx(0.5)  # 1 − P_low(x̂)
    assert 0 <= song["judges"]["classifier"]["random_edit"] <= 1 and song["onsets_ratio"] > 0
    with pytest.raises(GenreError, match="no phrases of 'high'"):
        evaluate_transfer(model, clf, x_a, x_b[:0])
    other = Classifier(_ByMeanPitch(), ["high", "low"], RollSettings(meter="lenient").hash(), {}, torch.device("cpu"))
    with pytest.raises(GenreError, match="other piano-roll settings"):
        evaluate_transfer(model, other, x_a, x_b)


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
    r = cli("midi", "explain", caches[0].parent / "low" / "low00.mid", "--classifier", tmp_path / "c2", "-g", "low",
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
    run, clf_dir = trained
    enc = make_random_wav2vec2(tmp_path / "enc", "tiny")
    r = CliRunner().invoke(main, ["midi", "evaluate", "--model", str(run), "--classifier", str(clf_dir), "--fad",
                                  "--fad-embedding", str(enc), "--fad-phrases", "6", "-o", str(tmp_path / "e.json")])
    assert r.exit_code == 0, r.output
    assert "transferred vs real target" in r.output
    fad = json.loads((tmp_path / "e.json").read_text())["fad"]
    for key in ("low→high", "high→low"):
        f = fad[key]
        assert f["n_target"] >= 16 and f["n_source"] >= 16  # 8 one-second embeddings per rendered phrase
        assert f["n_source"] == f["n_transferred"]  # compared at the same n (FAD is biased by n)
        assert np.isfinite(f["fad_transferred_vs_target"]) and f["fad_source_vs_target"] > 0


def test_train_classifier_leaves_the_callers_random_state_alone(caches, tmp_path):
    from tests.test_random_state import leaves_the_callers_generators_alone

    srcs = [GenreSource.parse(caches[0]), GenreSource.parse(caches[1])]
    config = ClassifierConfig(channels=(4, 4, 4, 4), epochs=1, batch_size=16)
    leaves_the_callers_generators_alone(lambda: train_classifier(srcs, tmp_path / "clf", config, device="cpu"))
