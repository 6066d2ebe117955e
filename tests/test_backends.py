"""The trainable backends of seeds 003 and 001: shapes, gradients to the waveform, training,
saving/loading, and the transformation and FAD running through each."""

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
from click.testing import CliRunner

from audiogenre.backends import TRAINABLE, ResNet18, Spectrogram, TrainableBackend, WaveformImage, seconds_pooled
from audiogenre.models import AudioClassifier, LinearHead
from audiogenre.transform import TransformConfig, optimise_window
from cli.main import main
from shared.errors import GenreError
from tests.test_audio_model import _clip

KINDS = sorted(TRAINABLE)
# Image backends at a quarter of the default image size where a test checks shapes, gradients or
# the transformation running through (ResNet-18 and fusion take seconds at 128 × 128).
SMALL = {"cnn": {"size": 64}, "resnet18": {"size": 64}, "fusion": {"size": 64}}


def test_spectrogram_and_waveform_images():
    t = torch.arange(16000 * 2) / 16000
    low = torch.sin(2 * torch.pi * 200 * t)[None]
    high = torch.sin(2 * torch.pi * 6000 * t)[None]
    s_low, s_high = Spectrogram()(low), Spectrogram()(high)
    assert s_low.shape == (1, 1, 128, 128) and 0 <= s_low.min() and s_low.max() <= 1
    rows = torch.arange(128).float()
    # low frequencies at the bottom of the image (row index high), high ones near the top
    assert (s_low[0, 0].mean(1) * rows).sum() / s_low[0, 0].mean(1).sum() > (s_high[0, 0].mean(1) * rows).sum() / s_high[0, 0].mean(1).sum()
    img = WaveformImage()(torch.cat([low * 0.1, torch.zeros_like(low)]))
    assert img.shape == (2, 1, 128, 128)
    # a sine is peak-normalised: its trace spans the image height; silence is a flat line in the middle
    assert img[0, 0, :8].sum() > 0 and img[1, 0, 62:66].sum() > 0.9 * img[1, 0].sum()


def test_resnet18_matches_torchvision_layout(tmp_path):
    net = ResNet18()
    assert sum(p.numel() for p in net.parameters()) == 11_176_512  # torchvision resnet18 without fc
    state = {k: v for k, v in net.state_dict().items()}
    state["fc.weight"], state["fc.bias"] = torch.zeros(1000, 512), torch.zeros(1000)
    torch.save(state, tmp_path / "resnet18.pth")
    other = ResNet18()
    other.load_imagenet(tmp_path / "resnet18.pth")
    assert torch.equal(other.conv1.weight, net.conv1.weight)
    torch.save({"conv1.weight": torch.zeros(1)}, tmp_path / "bad.pth")
    with pytest.raises(GenreError):
        ResNet18().load_imagenet(tmp_path / "bad.pth")


def test_seconds_pooled_is_500_values_per_second():
    x = torch.randn(3, 16000 * 2 + 100)
    p = seconds_pooled(x)
    assert p.shape == (3, 2, 500)
    assert torch.allclose(p[0, 1, 0], x[0, 16000:16032].mean())


@pytest.mark.parametrize("kind", KINDS)
def test_every_backend_gives_embeddings_and_gradients_reach_the_waveform(kind):
    torch.manual_seed(0)
    b = TrainableBackend(kind, **SMALL.get(kind, {}))
    x = torch.from_numpy(np.stack([_clip("low", 1, 2.0, 16000), _clip("high", 2, 2.0, 16000)])).requires_grad_(True)
    b.train()
    e = b(x)
    assert e.shape == (2, b.dim)
    aux = b.auxiliary_loss()
    assert (aux is not None) == (kind == "autoencoder")
    b.eval()
    logits = LinearHead(b.dim, 3)(b(x))
    logits[:, 1].sum().backward()
    assert x.grad is not None and torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0
    f = b.frames(x.detach())
    assert f.dim() == 3 and f.shape[0] == 2 and f.shape[2] > 0


@pytest.mark.parametrize("kind", KINDS)
def test_transform_runs_through_every_backend(kind):
    torch.manual_seed(1)
    b = TrainableBackend(kind, **SMALL.get(kind, {})).eval()
    model = AudioClassifier(b, LinearHead(b.dim, 2), ["a", "b"]).eval()
    x = _clip("low", 3, 2.0, 16000)
    with torch.no_grad():
        p0 = torch.softmax(model(torch.from_numpy(x)[None]), -1)[0, 1].item()
    xh, steps = optimise_window(model, x, 1, TransformConfig(lr=1e-3, steps=5, target_prob=1.0, lam=0.0, window=2.0, overlap=0.5))
    assert steps == 5 and np.abs(xh).max() <= 1.0
    with torch.no_grad():
        p1 = torch.softmax(model(torch.from_numpy(xh)[None]), -1)[0, 1].item()
    assert p1 > p0


@pytest.fixture(scope="module")
def small_set(tmp_path_factory):
    root = tmp_path_factory.mktemp("bset") / "set"
    for g in ("low", "high"):
        (root / g).mkdir(parents=True)
        for k in range(12):
            sf.write(root / g / f"{g}{k:02d}.wav", _clip(g, k, 3.0), 22050)
    return root


@pytest.mark.parametrize("kind,segment", [("cnn", 1.5), ("autoencoder", 1.0), ("mlp", 1.0)])
def test_train_save_load_evaluate_transform_fad(kind, segment, small_set, tmp_path):
    out = tmp_path / kind
    size = ["--image-size", "64"] if kind == "cnn" else []
    r = CliRunner().invoke(main, ["audio", "train", str(small_set), "--backend", kind, "--segment", str(segment),
                                  "--epochs", "6", *size, "-o", str(out)])
    assert r.exit_code == 0, r.output
    rep = json.loads((out / "report.json").read_text())
    assert rep["backend"] == kind and rep["n"] >= rep["n_clips"] > 0 and rep["accuracy"] > 0.5  # two easy genres
    model, meta = AudioClassifier.load(out)
    assert meta["backend"]["type"] == kind and meta["train"]["segment"] == segment == model.backend.segment_seconds
    assert kind != "cnn" or meta["backend"]["config"]["size"] == 64 == model.backend.net.spec.size
    cfg = json.loads((out / "config.json").read_text())
    assert cfg["train"]["segment"] == segment and cfg["train"]["epochs"] == 6 and cfg["train"]["weight_decay"] == 0.0
    r = CliRunner().invoke(main, ["audio", "evaluate", str(out), str(small_set), "--json", str(tmp_path / "e.json")])
    assert r.exit_code == 0, r.output
    assert json.loads((tmp_path / "e.json").read_text())["accuracy"] == pytest.approx(rep["accuracy"])
    song = tmp_path / "song.wav"
    sf.write(song, np.stack([_clip("low", 30, 4.0), _clip("low", 31, 4.0)], 1), 44100)
    r = CliRunner().invoke(main, ["audio", "transform", str(song), "--classifier", str(out), "--to", "high", "-o",
                                  str(tmp_path / "o.wav"), "--steps", "3"])
    assert r.exit_code == 0, r.output
    assert sf.info(str(tmp_path / "o.wav")).channels == 2
    r = CliRunner().invoke(main, ["audio", "fad", "--reference", str(small_set / "low"), "--test", str(small_set / "high"),
                                  "--embedding", str(out)])
    assert r.exit_code == 0 and "FAD" in r.output, r.output


def test_damaged_backend_weights_are_refused(small_set, tmp_path):
    r = CliRunner().invoke(main, ["audio", "train", str(small_set), "--backend", "mlp", "--epochs", "1", "-o", str(tmp_path / "m"),
                                  "--device", "nonsense"])
    assert r.exit_code == 1 and "unknown device" in r.output
    r = CliRunner().invoke(main, ["audio", "train", str(small_set), "--backend", "mlp", "--epochs", "1", "-o", str(tmp_path / "m"),
                                  "--device", "cpu"])
    assert r.exit_code == 0, r.output
    meta = json.loads((tmp_path / "m" / "model.json").read_text())
    meta["config"]["backend_config"]["hidden"] = 64
    (tmp_path / "m" / "model.json").write_text(json.dumps(meta))
    with pytest.raises(GenreError, match="do not fit"):
        AudioClassifier.load(tmp_path / "m")


def test_embed_writes_bottleneck_logits_and_pca_plot(small_set, tmp_path):
    r = CliRunner().invoke(main, ["audio", "train", str(small_set), "--backend", "autoencoder", "--epochs", "2", "-o", str(tmp_path / "ae")])
    assert r.exit_code == 0, r.output
    r = CliRunner().invoke(main, ["audio", "embed", str(tmp_path / "ae"), str(small_set), "--split", "all", "-o", str(tmp_path / "e.npz")])
    assert r.exit_code == 0, r.output
    z = np.load(tmp_path / "e.npz")
    assert z["embeddings"].shape == (72, 64) and z["logits"].shape == (72, 2)  # 24 clips × 3 one-second segments
    assert sorted(set(z["labels"].tolist())) == [0, 1] and list(z["genres"]) == ["high", "low"]
    assert (tmp_path / "e.png").stat().st_size > 10_000
    from audiogenre.classify import pca_2d

    comps, var = pca_2d(np.array([[0.0, 0.0], [1.0, 1.0], [2.0, 2.0]]))
    assert np.isclose(var[0], 1.0) and np.allclose(np.abs(comps[:, 0]), [np.sqrt(2), 0, np.sqrt(2)])


def test_clip_level_predictions_average_segment_log_probabilities():
    from types import SimpleNamespace

    from audiogenre.classify import clip_level

    # clip a: two segments say 0 (0.9), one says 1 almost surely: the plain mean picks 0
    # (0.600 vs 0.400), the mean log-probability 1 (−7.12 vs −4.61); clip c the other way round
    segs = [("a.wav", [0.9, 0.1]), ("c.wav", [0.1, 0.9]), ("b.wav", [0.3, 0.7]), ("a.wav", [0.9, 0.1]),
            ("c.wav", [0.1, 0.9]), ("a.wav", [0.001, 0.999]), ("c.wav", [0.999, 0.001])]
    items = [SimpleNamespace(path=Path("/clips") / name) for name, _ in segs]
    probs = np.array([p for _, p in segs])
    keys, predicted, groups = clip_level(items, probs)
    assert keys == ["/clips/a.wav", "/clips/b.wav", "/clips/c.wav"]
    assert groups == {"/clips/a.wav": [0, 3, 5], "/clips/b.wav": [2], "/clips/c.wav": [1, 4, 6]}
    assert predicted.tolist() == [1, 1, 0]
    plain = [int(probs[groups[k]].mean(0).argmax()) for k in keys]
    assert plain == [0, 1, 1]  # what a plain mean would have said
    _, predicted, _ = clip_level(items[:1] + items[2:3], np.array([[0.0, 1.0], [1.0, 0.0]]))
    assert predicted.tolist() == [1, 0]  # a probability of 0 is no -inf / NaN


def test_diverging_training_is_an_error_not_a_traceback(small_set, tmp_path):
    r = CliRunner().invoke(main, ["audio", "train", str(small_set), "--backend", "autoencoder", "--epochs", "2",
                                  "--lr", "1e12", "-o", str(tmp_path / "x")])
    assert r.exit_code == 1 and "diverged" in r.output


def test_autoencoder_loss_is_gamma_weighted():
    """The trainer's loss is γ·‖x − g(f(x))‖² + (1 − γ)·CE with γ = 0.9 (the style-encodings paper, eq. 3)."""
    from audiogenre.classify import training_loss

    torch.manual_seed(0)
    b = TrainableBackend("autoencoder", dropout=0.0)
    assert b.gamma == 0.9
    model = AudioClassifier(b, LinearHead(b.dim, 2), ["a", "b"]).train()
    x = torch.from_numpy(np.stack([_clip("low", 1, 2.0, 16000), _clip("high", 2, 2.0, 16000)]))
    y = torch.tensor([0, 1])
    loss, logits = training_loss(model, x, y)
    inp = seconds_pooled(x) * b.net.scale  # (2, 2 seconds, 500)
    recon = ((b.net.decoder(b.net.encoder(inp)) - inp) ** 2).sum(-1).mean()
    ce = torch.nn.functional.cross_entropy(model.head(b.net.encoder(inp).mean(1)), y)
    assert torch.allclose(loss, 0.9 * recon + 0.1 * ce, rtol=1e-5)
    plain = TrainableBackend("cnn")
    cnn = AudioClassifier(plain, LinearHead(plain.dim, 2), ["a", "b"]).train()
    loss, logits = training_loss(cnn, x, y)
    assert torch.allclose(loss, torch.nn.functional.cross_entropy(logits, y))


def test_options_that_do_not_apply_are_refused(small_set, tmp_path):
    def train(*args):
        return CliRunner().invoke(main, ["audio", "train", str(small_set), *args, "-o", str(tmp_path / "x")])

    r = train("--backend", "mlp", "--image-size", "64")
    assert r.exit_code == 1 and "spectrogram backends" in r.output
    r = train("--backend", "cnn", "--imagenet", "w.pth")
    assert r.exit_code == 1 and "resnet18 and fusion" in r.output
    r = train("--segment", "2")  # wav2vec2
    assert r.exit_code == 1 and "--segment is for the trainable backends" in r.output
    assert not (tmp_path / "x").exists()


def test_train_backend_classifier_leaves_the_callers_random_state_alone(small_set, tmp_path):
    from audiogenre.classify import BackendTrainConfig, train_backend_classifier
    from audiogenre.datasets import open_dataset
    from tests.test_random_state import leaves_the_callers_generators_alone

    config = BackendTrainConfig(backend="mlp", segment=1.0, epochs=1)
    leaves_the_callers_generators_alone(lambda: train_backend_classifier(open_dataset(small_set), tmp_path / "mlp", config,
                                                                         device="cpu"))
