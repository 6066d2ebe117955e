"""The model registry: one file format for every kind, round trips, damaged and foreign files
(each a one-line GenreError), the old format's upgrade, shipped models by name, and the wheel
carrying them."""

import json
import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from safetensors.torch import load_file, save_file

from cli.main import main
from midigenre.pianoroll import RollSettings
from shared import registry
from shared.errors import GenreError
from tests.conftest import REPO

ROLL = RollSettings().to_dict()


def one_line(excinfo) -> str:
    msg = str(excinfo.value)
    assert msg and "\n" not in msg, msg
    return msg


@pytest.fixture(scope="module")
def encoder_dir(tmp_path_factory):
    from audiogenre.backends import make_random_wav2vec2

    return make_random_wav2vec2(tmp_path_factory.mktemp("enc") / "tiny", size="tiny", seed=0)


def _cyclegan(folder):
    from midigenre.models import Generators, ModelConfig, save_generators

    torch.manual_seed(0)
    cfg = ModelConfig(g_channels=8, n_res_blocks=1, d_channels=8)
    g = Generators(cfg).eval()
    save_generators(folder, g.G_AB, g.G_BA, cfg, genres={"a": "low", "b": "high"}, roll_settings=ROLL,
                    train={"epochs": 1}, epochs_done=1, metrics={})
    return g, torch.rand(2, 1, 64, 84).round()


def _multi_genre(folder):
    from midigenre.models import ModelConfig
    from midigenre.stargan import MultiGenreGAN, save_multi_genre

    torch.manual_seed(0)
    m = MultiGenreGAN(ModelConfig(g_channels=8, n_res_blocks=1, d_channels=8), 3).eval()
    save_multi_genre(folder, m, genres=["low", "mid", "high"], roll_settings=ROLL,
                     genre_settings={g: ROLL for g in ("low", "mid", "high")}, thresholds={"low": 0.5, "mid": 0.4, "high": 0.5},
                     train={"epochs": 1}, epochs_done=1, metrics={})
    return m, torch.rand(2, 1, 64, 84).round()


def _classifier(folder):
    from midigenre.classifier import GenreClassifier, save_classifier

    torch.manual_seed(0)
    net = GenreClassifier(3, (8, 8, 8, 8)).eval()
    save_classifier(folder, net, genres=["a", "b", "c"], roll_settings=ROLL, roll_settings_hash=RollSettings().hash(),
                    config={"epochs": 1}, metrics={"accuracy": 0.5})
    return net, torch.rand(2, 1, 64, 84).round()


def _audio_cnn(folder):
    from audiogenre.backends import TrainableBackend
    from audiogenre.models import AudioClassifier, LinearHead

    torch.manual_seed(0)
    b = TrainableBackend("cnn", size=32, dim=16)
    model = AudioClassifier(b, LinearHead(b.dim, 2), ["x", "y"]).eval()
    with torch.no_grad():
        model(torch.randn(2, 16000))  # BatchNorm statistics are not the init's
    model.save(folder, preprocess={"sample_rate": 16000, "seconds": 1.5, "offset": 0.0, "noise": 0.0},
               extra={"train": {"segment": 1.5}})
    return model, torch.randn(2, 24000) * 0.1


def _audio_wav2vec2(folder, encoder):
    from audiogenre.backends import Wav2Vec2Backend
    from audiogenre.models import AudioClassifier, GenreHead

    torch.manual_seed(0)
    b = Wav2Vec2Backend.from_pretrained(str(encoder), layers=1)
    model = AudioClassifier(b, GenreHead(b.dim, 2, hidden=8), ["x", "y"]).eval()
    model.save(folder, preprocess={"sample_rate": 16000, "seconds": 1.0, "offset": 0.0, "noise": 0.0})
    return model, torch.randn(2, 16000) * 0.1


def _make(kind, folder, encoder_dir):
    if kind == "cyclegan":
        return _cyclegan(folder)
    if kind == "genre-classifier":
        return _classifier(folder)
    if kind == "multi-genre":
        return _multi_genre(folder)
    if kind == "audio-cnn":
        return _audio_cnn(folder)
    return _audio_wav2vec2(folder, encoder_dir)


def _outputs(module, x):
    with torch.no_grad():
        if hasattr(module, "G_AB"):
            return torch.cat([module.G_AB(x), module.G_BA(x)])
        if hasattr(module, "genre_logits"):  # multi-genre: G to every genre, and D's two heads
            t = torch.arange(len(x)) % module.n_genres
            return torch.cat([module.generate(x, t).flatten(), module.D(x).flatten()])
        return module(x)


KINDS = ["cyclegan", "multi-genre", "genre-classifier", "audio-cnn", "audio-wav2vec2"]


@pytest.mark.parametrize("kind", KINDS)
def test_every_kind_round_trips_through_the_registry(kind, tmp_path, encoder_dir):
    module, x = _make(kind, tmp_path / "m", encoder_dir)
    meta = json.loads((tmp_path / "m" / "model.json").read_text())
    assert meta["format"] == registry.FORMAT and meta["kind_version"] == registry.get_kind(meta["kind"]).version and meta["config"] and meta["settings"]
    assert meta["kind"] in registry.kinds() and meta["package_version"] and meta["torch_version"]
    loaded, meta2 = registry.load_model(tmp_path / "m")
    assert not loaded.training and meta2["kind"] == meta["kind"]
    assert torch.equal(_outputs(loaded, x), _outputs(module, x))
    if kind == "audio-wav2vec2":  # the encoder's weights stay where they are
        assert all(k.startswith("head.") for k in load_file(str(tmp_path / "m" / "model.safetensors")))
        assert meta["config"]["segment_seconds"] is None and loaded.backend.segment_seconds is None
    if kind == "audio-cnn":
        assert loaded.backend.segment_seconds == 1.5 and meta["config"]["segment_seconds"] == 1.5


def test_the_loaders_of_each_kind(tmp_path, encoder_dir):
    from audiogenre.models import AudioClassifier, model_preprocess, model_segment
    from midigenre.classifier import Classifier
    from midigenre.transfer import TransferModel

    g, x = _cyclegan(tmp_path / "g")
    model = TransferModel.load(tmp_path / "g")
    assert model.genres == {"a": "low", "b": "high"} and model.folder == tmp_path / "g"
    assert model.settings == RollSettings() and not any(p.requires_grad for p in model.g_ab.parameters())
    net, _ = _classifier(tmp_path / "c")
    clf = Classifier.load(tmp_path / "c")
    assert clf.genres == ["a", "b", "c"] and clf.settings_hash == RollSettings().hash()
    assert clf.meta["train"] == {"epochs": 1} and clf.meta["config"] == {"channels": [8, 8, 8, 8]}
    _audio_cnn(tmp_path / "a")
    a, meta = AudioClassifier.load(tmp_path / "a", device="cpu")
    assert model_segment(meta) == 1.5 and model_preprocess(meta)["seconds"] == 1.5 and meta["train"] == {"segment": 1.5}
    with pytest.raises(GenreError, match="holds a 'audio-classifier' model, not a 'cyclegan'") as e:
        TransferModel.load(tmp_path / "a")
    one_line(e)
    _multi_genre(tmp_path / "mg")
    multi = TransferModel.load(tmp_path / "mg")  # any transfer model, as the class of its kind
    assert type(multi).__name__ == "MultiGenreTransfer" and multi.names == ["low", "mid", "high"]
    assert multi.thresholds == {"low": 0.5, "mid": 0.4, "high": 0.5} and not any(p.requires_grad for p in multi.net.parameters())
    with pytest.raises(GenreError, match="holds a 'multi-genre' model, not a 'cyclegan' model"):
        TransferModel.load(tmp_path / "mg", kind="cyclegan")
    with pytest.raises(GenreError, match="not a 'genre-classifier'"):
        Classifier.load(tmp_path / "g")


def test_the_wav2vec2_identity_check_and_encoder_override(tmp_path, encoder_dir):
    from audiogenre.backends import make_random_wav2vec2
    from audiogenre.models import AudioClassifier

    _audio_wav2vec2(tmp_path / "w", encoder_dir)
    moved = tmp_path / "moved"
    shutil.copytree(encoder_dir, moved)
    model, meta = AudioClassifier.load(tmp_path / "w", encoder=str(moved))
    assert meta["backend"]["encoder"] == str(Path(encoder_dir).resolve())
    other = make_random_wav2vec2(tmp_path / "other", "tiny", seed=3)
    with pytest.raises(GenreError, match="other weights") as e:
        AudioClassifier.load(tmp_path / "w", encoder=str(other))
    one_line(e)


def test_loading_wav2vec2_leaves_transformers_settings_alone(encoder_dir):
    from transformers.utils import logging as hf_logging

    from audiogenre.backends import load_wav2vec2

    hf_logging.set_verbosity_info()
    hf_logging.enable_progress_bar()
    try:
        load_wav2vec2(str(encoder_dir))
        assert hf_logging.get_verbosity() == hf_logging.INFO and hf_logging.is_progress_bar_enabled()
    finally:
        hf_logging.set_verbosity_warning()


# ---- damaged and foreign model folders: one line each ------------------------------------------

@pytest.fixture
def saved(tmp_path):
    _classifier(tmp_path / "m")
    return tmp_path / "m"


def _edit_meta(folder, fn):
    meta = json.loads((folder / "model.json").read_text())
    (folder / "model.json").write_text(json.dumps(fn(meta)))


@pytest.mark.parametrize("edit,match", [
    (lambda m: {**m, "format": 3}, "model format 3; this version reads up to 2: upgrade the toolkit"),
    (lambda m: {**m, "format": "2"}, "model format '2'"),
    (lambda m: {**m, "kind_version": 99}, "version 99; this toolkit reads up to 1"),
    (lambda m: {**m, "kind": "transformer"}, "holds a 'transformer' model, not a 'genre-classifier' model"),
    (lambda m: {**m, "format": 1}, "old model format 1 .*`genre model .* --upgrade`"),
    (lambda m: {k: v for k, v in m.items() if k != "format"}, "old model format 0 .*`genre model .* --upgrade`"),
    (lambda m: [m], "a JSON object was expected, not list"),
    (lambda m: "model", "a JSON object was expected, not str"),
    (lambda m: {**m, "config": {"channels": [8, 8]}}, "channels must be four"),
    (lambda m: {**m, "config": {"layers": 3}}, "unknown settings in"),
    (lambda m: {**m, "config": [1]}, "must be a mapping"),
    (lambda m: {**m, "genres": ["a", "b"]}, "do not fit the architecture"),
    (lambda m: {**m, "genres": "abc"}, "does not describe a 'genre-classifier' model"),
    (lambda m: {k: v for k, v in m.items() if k != "roll_settings_hash"}, "does not describe"),
])
def test_foreign_or_damaged_model_json_is_one_line(saved, edit, match):
    from midigenre.classifier import Classifier

    _edit_meta(saved, edit)
    with pytest.raises(GenreError, match=match) as e:
        Classifier.load(saved)
    one_line(e)


def test_unreadable_model_json_is_one_line(saved):
    from midigenre.classifier import Classifier

    _edit_meta(saved, lambda m: {**m, "kind": "transformer"})
    with pytest.raises(GenreError, match="unknown model kind 'transformer' .a newer version") as e:
        registry.load_model(saved)
    one_line(e)

    for blob in (b"", b"{", b"\xff\xfe\x00", b'{"format": 2, "kind": '):
        (saved / "model.json").write_bytes(blob)
        with pytest.raises(GenreError, match="not valid JSON") as e:
            Classifier.load(saved)
        one_line(e)
    (saved / "model.json").unlink()
    with pytest.raises(GenreError, match="not a model folder") as e:
        Classifier.load(saved)
    one_line(e)


def test_truncated_or_missing_weights_are_one_line(saved):
    from midigenre.classifier import Classifier

    whole = (saved / "model.safetensors").read_bytes()
    for n in (0, 1, 7, 8, 20, len(whole) // 3, len(whole) - 1):
        (saved / "model.safetensors").write_bytes(whole[:n])
        with pytest.raises(GenreError, match="damaged") as e:
            Classifier.load(saved)
        one_line(e)
    (saved / "model.safetensors").write_bytes(whole + b"\0" * 10)
    with pytest.raises(GenreError) as e:
        Classifier.load(saved)
    one_line(e)
    (saved / "model.safetensors").unlink()
    with pytest.raises(GenreError, match="no model.safetensors") as e:
        Classifier.load(saved)
    one_line(e)


def test_weights_of_another_architecture_are_one_line(saved):
    from midigenre.classifier import Classifier

    tensors = load_file(str(saved / "model.safetensors"))
    tensors["net.0.weight"] = tensors["net.0.weight"][:4]
    save_file(tensors, str(saved / "model.safetensors"))
    with pytest.raises(GenreError, match="do not fit the architecture") as e:
        Classifier.load(saved)
    one_line(e)
    tensors.pop("net.0.weight")
    save_file(tensors, str(saved / "model.safetensors"))
    with pytest.raises(GenreError, match="do not fit") as e:
        Classifier.load(saved)
    one_line(e)


def test_nan_weights_are_refused_when_saving_and_loading(saved, tmp_path):
    from midigenre.classifier import Classifier, GenreClassifier, save_classifier

    tensors = load_file(str(saved / "model.safetensors"))
    tensors["net.2.weight"][0, 0, 0, 0] = float("nan")
    save_file(tensors, str(saved / "model.safetensors"))
    with pytest.raises(GenreError, match="non-finite weights") as e:
        Classifier.load(saved)
    one_line(e)
    net = GenreClassifier(2, (8, 8, 8, 8))
    with torch.no_grad():
        net.net[0].bias[0] = float("inf")
    with pytest.raises(GenreError, match="non-finite") as e:
        save_classifier(tmp_path / "x", net, genres=["a", "b"], roll_settings=ROLL, roll_settings_hash="0")
    one_line(e)
    assert not (tmp_path / "x" / "model.json").exists()


def test_bad_model_folders_through_the_cli_are_one_line(saved, tmp_path):
    song = REPO / "data" / "examples" / "jazz_example.mid"
    _edit_meta(saved, lambda m: [m])
    r = CliRunner().invoke(main, ["midi", "transfer", str(song), "--to", "classical", "--model", str(saved),
                                  "-o", str(tmp_path / "o.mid")])
    assert r.exit_code == 1 and "JSON object was expected" in r.output and "Traceback" not in r.output, r.output
    r = CliRunner().invoke(main, ["audio", "transform", str(song), "--to", "jazz", "--classifier", str(saved),
                                  "-o", str(tmp_path / "o.wav")])
    assert r.exit_code == 1 and "JSON object was expected" in r.output, r.output
    r = CliRunner().invoke(main, ["midi", "transfer", str(song), "--to", "classical", "--model", "no-such-model",
                                  "-o", str(tmp_path / "o.mid")])
    assert r.exit_code == 1 and "no such model: no-such-model (shipped models: audio-rendered, four-genres-melody, jazz-classical-melody)" in r.output


def test_resave_keeps_the_description_and_takes_new_tensors(saved, tmp_path):
    tensors = {k: v.half() for k, v in registry.read_weights(saved).items()}
    registry.resave_model(saved, tmp_path / "copy", tensors=tensors, metrics={"accuracy": 1.0})
    old, new = registry.read_meta(saved), registry.read_meta(tmp_path / "copy")
    assert new["metrics"] == {"accuracy": 1.0} and new["created"] == old["created"] and new["config"] == old["config"]
    assert load_file(str(tmp_path / "copy" / "model.safetensors"))["net.0.weight"].dtype == torch.float16
    registry.load_model(tmp_path / "copy")


# ---- the shipped models -------------------------------------------------------------------------

def test_shipped_models_by_name(tmp_path, monkeypatch):
    from audiogenre.models import DEFAULT_AUDIO_MODEL
    from midigenre.transfer import DEFAULT_MODEL

    assert registry.shipped_model_names() == ["audio-rendered", "four-genres-melody", "jazz-classical-melody"]
    assert registry.model_folder("jazz-classical-melody") == DEFAULT_MODEL == REPO / "data" / "models" / "jazz-classical-melody"
    assert registry.model_folder("audio-rendered") == DEFAULT_AUDIO_MODEL
    monkeypatch.chdir(tmp_path)
    (tmp_path / "jazz-classical-melody").mkdir()  # a folder of that name wins
    assert registry.model_folder("jazz-classical-melody") == Path("jazz-classical-melody")
    with pytest.raises(GenreError, match="no such model: x/jazz-classical-melody"):
        registry.model_folder("x/jazz-classical-melody")
    with pytest.raises(GenreError, match="shipped model nope is not installed") as e:
        registry.model_folder(DEFAULT_MODEL.parent / "nope")
    one_line(e)


def test_shipped_models_are_format_2_and_transfer_by_name(tmp_path):
    for name in registry.shipped_model_names():
        meta = registry.read_meta(name)
        assert meta["format"] == 2 and meta.get("upgraded", {"from_format": 1})["from_format"] == 1
    out = tmp_path / "o.mid"
    r = CliRunner().invoke(main, ["midi", "transfer", str(REPO / "data" / "examples" / "jazz_example.mid"),
                                  "--from", "jazz", "--to", "classical", "--model", "jazz-classical-melody", "-o", str(out)])
    assert r.exit_code == 0 and out.exists(), r.output
    for target in ("folk", "pop"):  # the multi-genre model, by its short name, tells the source genre itself
        out = tmp_path / f"{target}.mid"
        r = CliRunner().invoke(main, ["midi", "transfer", str(REPO / "data" / "examples" / "jazz_example.mid"),
                                      "--to", target, "--model", "four-genres-melody", "-o", str(out)])
        assert r.exit_code == 0 and out.exists() and "source genre told by the model" in r.output, r.output


def _pyproject():
    return tomllib.loads((REPO / "pyproject.toml").read_text())


def test_every_package_is_listed_for_the_wheel():
    cfg = _pyproject()["tool"]["setuptools"]
    listed = set(cfg["packages"])
    found = {p.parent.relative_to(REPO).as_posix().replace("/", ".")
             for root in ("midigenre", "audiogenre", "shared", "cli") for p in (REPO / root).rglob("__init__.py")}
    assert found <= listed, f"add {sorted(found - listed)} to [tool.setuptools] packages in pyproject.toml"
    assert cfg["package-dir"]["genre_models"] == "data/models"


def test_the_wheel_carries_the_shipped_models(tmp_path):
    """Build the wheel from a copy of the sources (pip wheel, no isolation: ~5 s) and look inside."""
    import zipfile

    src = tmp_path / "src"
    src.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(REPO / name, src / name)
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    for pkg in ("midigenre", "audiogenre", "shared", "cli", "data/models"):
        shutil.copytree(REPO / pkg, src / pkg, ignore=ignore)
    r = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w",
                        str(tmp_path / "dist"), str(src)], capture_output=True, text=True,
                       env={**os.environ, "PIP_NO_INDEX": "1"})
    assert r.returncode == 0, r.stderr[-2000:]
    (wheel,) = (tmp_path / "dist").glob("genre_transfer-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    for model in registry.shipped_model_names():
        for f in ("model.json", "model.safetensors", "README.md"):
            assert f"genre_models/{model}/{f}" in names, f
    assert "genre_models/jazz-classical-melody/split.json" in names and "cli/main.py" in names
    assert "genre_models/four-genres-melody/split.json" in names
    from midigenre.recipe import recipe_names

    for recipe in recipe_names():  # `genre midi train --recipe NAME` works from an installed wheel
        assert f"midigenre/recipes/{recipe}.toml" in names
        assert f"genre_models/{recipe}/recipe.toml" in names and f"genre_models/{recipe}/held-out.json" in names


# ---- the old format ----------------------------------------------------------------------------

def _as_format_1(folder: Path):
    """Rewrite a format-2 folder as genre-transfer 0.1.0 wrote it (shared/checkpoint.py, format 1)."""
    m = json.loads((folder / "model.json").read_text())
    old = {"format": 1, "package_version": "0.1.0", "torch_version": m["torch_version"], "created": m["created"],
           "kind": m["kind"]}
    if m["kind"] == "cyclegan":
        old |= {"model": m["config"], "genres": m["genres"], "roll_settings": m["settings"], "train": m["train"],
                "epochs_done": m["epochs_done"], "metrics": m["metrics"]}
    elif m["kind"] == "genre-classifier":
        old |= {"genres": m["genres"], "config": {**m["train"], "channels": m["config"]["channels"]},
                "roll_settings": m["settings"], "roll_settings_hash": m["roll_settings_hash"], "metrics": m["metrics"]}
    else:
        old |= {"genres": m["genres"], "backend": m["backend"], "head": m["config"]["head"], "preprocess": m["settings"],
                **({"train": m["train"]} if "train" in m else {})}
    (folder / "model.json").write_text(json.dumps(old))


def upgrade(*args):
    """``genre model ARGS --upgrade`` in-process."""
    return CliRunner().invoke(main, ["model", *map(str, args), "--upgrade"], catch_exceptions=False)


@pytest.mark.parametrize("kind", [k for k in KINDS if k != "multi-genre"])  # the kinds that format 1 had
def test_upgrade_rewrites_format_1_with_the_same_tensors_and_outputs(kind, tmp_path, encoder_dir):
    module, x = _make(kind, tmp_path / "m", encoder_dir)
    before = load_file(str(tmp_path / "m" / "model.safetensors"))
    new_meta = json.loads((tmp_path / "m" / "model.json").read_text())
    _as_format_1(tmp_path / "m")
    with pytest.raises(GenreError, match=r"old model format 1.*`genre model .*m --upgrade`") as e:
        registry.load_model(tmp_path / "m")
    one_line(e)
    r = upgrade(tmp_path / "m", "--dry-run")  # the new model.json, nothing written
    assert r.exit_code == 0, r.output
    assert r.stdout.rstrip().endswith("would be upgraded (dry run)")
    assert json.loads((tmp_path / "m" / "model.json").read_text())["format"] == 1
    r = upgrade(tmp_path / "m")
    assert r.exit_code == 0, r.output
    assert "bit-identical; loads" in r.stdout and len(r.stdout.splitlines()) == 1
    after = load_file(str(tmp_path / "m" / "model.safetensors"))
    assert sorted(after) == sorted(before) and all(torch.equal(after[k], before[k]) and after[k].dtype == before[k].dtype
                                                   for k in before)
    meta = json.loads((tmp_path / "m" / "model.json").read_text())
    for key in ("kind", "config", "settings", "genres"):
        assert meta[key] == new_meta[key], key
    loaded, _ = registry.load_model(tmp_path / "m")
    assert torch.equal(_outputs(loaded, x), _outputs(module, x))
    r = upgrade(tmp_path / "m")
    assert r.exit_code == 0 and "already format 2" in r.stdout


def test_upgrade_keeps_float16_weights_and_refuses_junk(tmp_path):
    from shared.upgrade import upgrade_folder

    _audio_cnn(tmp_path / "m")
    t = load_file(str(tmp_path / "m" / "model.safetensors"))
    save_file({k: (v.half() if v.is_floating_point() else v) for k, v in t.items()}, str(tmp_path / "m" / "model.safetensors"))
    _as_format_1(tmp_path / "m")
    done = upgrade_folder(tmp_path / "m")  # the library: what it did, nothing printed
    assert (done.action, done.kind, done.from_format, done.to_format, done.check) == (
        "upgraded", "audio-classifier", 1, 2, "loads")
    assert load_file(str(tmp_path / "m" / "model.safetensors"))["head.net.weight"].dtype == torch.float16
    assert upgrade_folder(tmp_path / "m").action == "already"
    (tmp_path / "junk").mkdir()
    (tmp_path / "junk" / "model.json").write_text("[]")
    r = upgrade(tmp_path / "junk", tmp_path / "none", tmp_path / "m")  # each folder: its line; exit 1 if any failed
    assert r.exit_code == 1
    err = r.stderr.strip().splitlines()
    assert len(err) == 2 and all(line.startswith("Error: ") for line in err), err
    assert r.stdout.strip() == f"{tmp_path / 'm'}: already format 2"
    for args in (["--songs", "test"], ["--dry-run"], ["--encoder", "x"]):
        r = CliRunner().invoke(main, ["model", str(tmp_path / "m"), *args] + (["--upgrade"] if args[0] == "--songs" else []))
        assert r.exit_code != 0 and len(r.output.splitlines()) == 1 and r.output.startswith("Error: "), r.output
    r = CliRunner().invoke(main, ["model", "--upgrade"])
    assert r.exit_code == 1 and "needs model folders" in r.output


# ---- the backend protocol ----------------------------------------------------------------------

def test_every_backend_follows_the_protocol(encoder_dir):
    from audiogenre.backends import BACKENDS, Backend, make_backend

    for name in BACKENDS:
        opts = {"encoder": str(encoder_dir)} if name == "wav2vec2" else {"segment_seconds": 2.0}
        cfg = {"layers": 1} if name == "wav2vec2" else ({"size": 32} if name in ("cnn", "resnet18", "fusion") else {})
        b = make_backend(name, cfg, **opts).eval()
        assert isinstance(b, Backend), name
        assert b.describe()["type"] == name and b.trainable == (name != "wav2vec2")
        assert b.segment_seconds == (None if name == "wav2vec2" else 2.0)
        with torch.no_grad():
            e = b(torch.randn(1, 32000) * 0.1)
        assert e.shape == (1, b.dim) and b.auxiliary_loss() is None  # eval mode: no loss of its own
        again = make_backend(name, b.config(), **opts)
        assert again.config() == b.config()
        if b.trainable:  # a fresh random init is another backend, until it gets the same weights
            assert again.identity() != b.identity()
            again.load_state_dict(b.state_dict())
        assert again.identity() == b.identity()
    with pytest.raises(GenreError, match="unknown backend 'rnn'"):
        make_backend("rnn")
    with pytest.raises(GenreError, match="unknown cnn backend settings: layers"):
        make_backend("cnn", {"layers": 3})


def test_backends_do_not_import_the_models_module():
    """No cycle: audiogenre.models imports audiogenre.backends, never the other way round."""
    import ast

    tree = ast.parse((REPO / "audiogenre" / "backends.py").read_text())
    imported = {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
    imported |= {a.name for node in ast.walk(tree) if isinstance(node, ast.Import) for a in node.names}
    assert not {m for m in imported if m and m.startswith(("audiogenre.models", "audiogenre.classify"))}, imported


def test_fad_embeddings_take_the_segment_from_the_backend(tmp_path):
    from audiogenre.fad_embed import embedding_backend, wave_embeddings

    _audio_cnn(tmp_path / "a")
    b = embedding_backend(str(tmp_path / "a"))
    assert b.segment_seconds == 1.5 and b.frame_rate is None
    e = wave_embeddings(b, np.random.default_rng(0).normal(0, 0.1, 16000 * 4).astype(np.float32), segment=b.segment_seconds)
    assert e.shape == (2, 16)  # two whole 1.5 s segments in 4 s
