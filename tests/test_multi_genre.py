"""The multi-genre generator: networks and losses, the sampler, training, export, transfer, CLI."""

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from torch.nn import functional as F

from midigenre import models
from midigenre.config import MultiGenreConfig
from midigenre.models import ModelConfig, MultiGenreModelConfig
from midigenre.multitrain import GenreSampler, MultiGenreTask
from midigenre.pianoroll import RollSettings
from midigenre.prepare import prepare
from midigenre.stargan import MultiGenreGAN, discriminator_losses, generator_losses
from midigenre.train import GenreSource
from midigenre.transfer import MultiGenreTransfer, TransferModel, transfer_midi
from shared.errors import GenreError
from tests.conftest import REPO, TINY_MODEL, make_cache

TINY = ModelConfig(**TINY_MODEL)


@pytest.fixture(scope="module")
def three(small_caches, tmp_path_factory):
    """low, high (small_caches) and mid (pitches 45–75, read with the lenient meter rule): 4 songs each; READ ONLY."""
    root = tmp_path_factory.mktemp("mid")

    make_cache(root / "mid", "mid", 4, 45, 75, 3, root / "mid_strict.h5")
    lenient = root / "mid.h5"
    prepare([root / "mid"], "mid", lenient, RollSettings(meter="lenient"))
    return [small_caches[0], small_caches[1], lenient]


@pytest.fixture
def stub_samples(monkeypatch):
    """Per-epoch pictures as empty files (drawn for real in test_train_export_load_and_transfer)."""
    monkeypatch.setattr(MultiGenreTask, "save_samples", lambda self, path, epoch: path.write_bytes(b""))


def sources(paths):
    return [GenreSource.parse(p) for p in paths]


def test_shapes_losses_and_gradient_flow():
    torch.manual_seed(0)
    m = MultiGenreGAN(TINY, 4)
    x = torch.rand(6, 1, 64, 84).round()
    s = torch.tensor([0, 1, 2, 3, 0, 1])
    t = (s + 1) % 4
    y = m.generate(x, t)
    patches, logits = m.discriminate(x)
    assert y.shape == x.shape and 0 <= float(y.min().detach()) and float(y.max().detach()) <= 1
    assert patches.shape == (6, 1, 16, 21) and logits.shape == (6, 4)
    # the target genre changes the output, and inside the roll as much as along its borders (a
    # conditioning that an instance norm subtracts survives only at the borders)
    with torch.no_grad():
        diff = (m.generate(x, t) - m.generate(x, s)).abs()[:, 0]
    border = torch.ones(64, 84, dtype=torch.bool)
    border[8:-8, 8:-8] = False
    assert diff.mean() > 1e-3 and diff[:, 8:-8, 8:-8].mean() > 0.5 * diff[:, border].mean()

    g, fake = generator_losses(m, x, s, t, sigma_d=0.1, identity=True, content=True, keep=True, add=True)
    assert set(g) == {"g/adv", "g/cycle", "g/genre", "g/identity", "g/content", "g/keep", "g/add"} and fake.shape == x.shape
    assert torch.isclose(g["g/content"], (fake - x).abs().mean())
    kept = (x * fake).sum((1, 2, 3)) / x.sum((1, 2, 3)).clamp(min=1)
    assert bool((x.sum((1, 2, 3)) > 0).all()) and torch.isclose(g["g/keep"], (1 - kept).mean())
    assert torch.isclose(g["g/add"], (((1 - x) * fake).sum((1, 2, 3)) / x.sum((1, 2, 3))).mean())
    sum(g.values()).backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for n, p in m.G.named_parameters() if n.endswith("weight"))
    m.zero_grad()
    fake = fake.detach().requires_grad_(True)
    d = discriminator_losses(m, x, s, fake, sigma_d=0.1)
    assert set(d) == {"d/adv", "d/genre"}
    d["d/genre"].backward(retain_graph=True)
    assert fake.grad is None  # the genre head learns from real phrases only
    assert all(p.grad is None for p in m.G.parameters())
    assert m.D.net[0].weight.grad.abs().sum() > 0
    d["d/adv"].backward()
    assert fake.grad is not None and fake.grad.abs().sum() > 0


def test_genre_loss_judges_binarised_fakes():
    """g/genre sees the fakes as notes (0/1), yet passes gradients to G (straight-through)."""
    torch.manual_seed(1)
    m = MultiGenreGAN(TINY, 3)
    x = torch.rand(4, 1, 64, 84).round()
    s, t = torch.tensor([0, 1, 2, 0]), torch.tensor([1, 2, 0, 2])
    seen = []
    hook = m.D.register_forward_pre_hook(lambda mod, inp: seen.append(inp[0].detach().clone()))
    g, fake = generator_losses(m, x, s, t, sigma_d=0.0, identity=False)
    hook.remove()
    notes = (fake > 0.5).float()
    assert any(torch.allclose(v, notes, atol=1e-6) for v in seen)  # 0/1 up to the straight-through rounding
    m.zero_grad()
    g["g/genre"].backward()
    assert m.G.net[0].weight.grad.abs().sum() > 0


def test_removed_settings_are_read_at_their_only_value_and_refused_otherwise():
    """real_fake, genre_scale and cycle_notes are gone (issue 26) and conditioning has no branch:
    a saved run or config file may still name them at the behaviour that is left; anything else
    is a one-line error naming the setting. lambdas is read as weights, the loss weights' name."""
    old = {"real_fake": "shared", "genre_scale": {}, "cycle_notes": False, "lambdas": {"g/cycle": 5}}
    cfg = MultiGenreConfig.from_dict(old)
    assert cfg == MultiGenreConfig(weights={"g/cycle": 5}) and cfg.loss_weights["g/cycle"] == 5.0
    assert MultiGenreConfig.from_dict({"genre_scale": {"jazz": 1.0}}) == MultiGenreConfig()
    for bad, name in (({"real_fake": "per-genre"}, "real_fake"), ({"genre_scale": {"jazz": 2}}, "genre_scale"),
                      ({"cycle_notes": True}, "cycle_notes"), ({"conditioning": "branch"}, "conditioning 'branch'")):
        with pytest.raises(GenreError, match=f"{name}.*was removed after genre-transfer") as e:
            MultiGenreConfig.from_dict(bad)
        assert "\n" not in str(e.value)
    with pytest.raises(GenreError, match="once, as weights"):
        MultiGenreConfig.from_dict({"lambdas": {}, "weights": {}})
    assert not {"real_fake", "genre_scale", "cycle_notes", "lambdas"} & set(MultiGenreConfig().to_dict())


def test_defaults_are_the_shipped_four_genres_melody_recipe():
    """MultiGenreConfig's defaults are the settings the shipped four-genres-melody was trained
    with, but for how it was run (its epochs kept and chosen on validation songs)."""
    train = json.loads((REPO / "data" / "models" / "four-genres-melody" / "model.json").read_text())["train"]
    procedure = {"keep_epochs", "valid_fraction"}
    got = MultiGenreConfig().to_dict()
    assert {k: v for k, v in got.items() if k not in procedure} == \
        {k: v for k, v in MultiGenreConfig.from_dict(train).to_dict().items() if k not in procedure}
    assert got["conditioning"] == "scale" and got["critic"] == "adversarial" and got["harmony"] == 5.0


def test_separate_critic_learns_genres_apart_from_d():
    """critic=separate: the genre logits come from C, not D; d/genre trains C only (on real
    phrases), d/adv trains D only, and g/genre reaches G through C's view of the binarised fakes."""
    torch.manual_seed(2)
    m = MultiGenreGAN(TINY, 3, critic="separate")
    assert m.C is not None and m.D.net[-1].out_channels == 1 and m.C.net[-1].out_channels == 3
    x = torch.rand(4, 1, 64, 84).round()
    s, t = torch.tensor([0, 1, 2, 0]), torch.tensor([1, 2, 0, 2])
    with torch.no_grad():
        assert torch.allclose(m.genre_logits(x), m.C(x).mean(dim=(2, 3)))
    seen = []
    hook = m.C.register_forward_pre_hook(lambda mod, inp: seen.append(inp[0].detach().clone()))
    g, fake = generator_losses(m, x, s, t, sigma_d=0.0)
    hook.remove()
    assert any(torch.allclose(v, (fake > 0.5).float(), atol=1e-6) for v in seen)
    g["g/genre"].backward()
    assert m.G.net[0].weight.grad.abs().sum() > 0 and m.D.net[0].weight.grad is None
    m.zero_grad()
    d = discriminator_losses(m, x, s, fake.detach(), sigma_d=0.1)
    d["d/genre"].backward(retain_graph=True)
    assert m.C.net[0].weight.grad.abs().sum() > 0 and m.D.net[0].weight.grad is None
    m.zero_grad()
    d["d/adv"].backward()
    assert m.D.net[0].weight.grad.abs().sum() > 0 and m.C.net[0].weight.grad is None
    assert {id(p) for p in m.critic_parameters()} == {id(p) for p in [*m.D.parameters(), *m.C.parameters()]}
    with pytest.raises(ValueError, match="critic"):
        MultiGenreGAN(TINY, 3, critic="other")
    with pytest.raises(GenreError, match="critic"):
        MultiGenreConfig(critic="other")


def test_adversarial_critic_has_a_generated_class():
    """critic=adversarial: C has K + 1 outputs; predictions use the K genres; d/genre also teaches C
    that the fakes, seen as notes, are "generated" (so an edge pattern cannot pass for a genre)."""
    torch.manual_seed(3)
    m = MultiGenreGAN(TINY, 3, critic="adversarial")
    assert m.C.net[-1].out_channels == 4 and m.D.net[-1].out_channels == 1
    x = torch.rand(4, 1, 64, 84).round()
    s, t = torch.tensor([0, 1, 2, 0]), torch.tensor([1, 2, 0, 2])
    with torch.no_grad():
        assert m.genre_logits(x).shape == (4, 3) and m.critic_logits(x).shape == (4, 4)
        assert m.discriminate(x)[1].shape == (4, 3)
    g, fake = generator_losses(m, x, s, t, sigma_d=0.0)
    fake = fake.detach()
    with torch.no_grad():
        real_only = F.cross_entropy(m.critic_logits(x), s)
        as_generated = F.cross_entropy(m.critic_logits((fake > 0.5).float()), torch.full((4,), 3))
        d = discriminator_losses(m, x, s, fake, sigma_d=0.1)
    assert torch.isclose(d["d/genre"], (real_only + as_generated) / 2, atol=1e-5)
    m.zero_grad()
    discriminator_losses(m, x, s, fake, sigma_d=0.1)["d/genre"].backward()
    assert m.C.net[0].weight.grad.abs().sum() > 0 and m.D.net[0].weight.grad is None


def test_scale_conditioning_cannot_write_without_input():
    """conditioning=scale: no shift parameters; an empty roll stays the same for every target (the
    genre scales the input's features, it adds no constant plane), a real roll does not. The
    training setting and the architecture hold it the same way."""
    assert MultiGenreConfig().model.conditioning == "scale"
    assert MultiGenreConfig(conditioning="scale-shift", preset="small").model.conditioning == "scale-shift"
    assert isinstance(MultiGenreConfig().model, MultiGenreModelConfig)
    torch.manual_seed(4)
    m = MultiGenreGAN(MultiGenreModelConfig(**TINY_MODEL, conditioning="scale"), 3).eval()
    shifted = MultiGenreGAN(MultiGenreModelConfig(**TINY_MODEL, conditioning="scale-shift"), 3)
    assert not hasattr(m.G, "genre_shift") and hasattr(shifted.G, "genre_shift")
    assert MultiGenreGAN(TINY, 3).config.conditioning == "scale"  # a plain ModelConfig: the default
    empty, x = torch.zeros(3, 1, 64, 84), torch.rand(3, 1, 64, 84).round()
    t = torch.tensor([0, 1, 2])
    with torch.no_grad():
        assert torch.allclose(m.generate(empty, t), m.generate(empty, t.roll(1)))
        assert not torch.allclose(m.generate(x, t), m.generate(x, t.roll(1)))
    with pytest.raises(GenreError, match="conditioning"):
        MultiGenreConfig(conditioning="shift")


def test_the_cyclegan_architecture_carries_no_multi_genre_fields():
    """The CycleGAN's ModelConfig has only what it uses; the conditioning is the multi-genre one's."""
    import dataclasses

    names = {f.name for f in dataclasses.fields(ModelConfig)}
    assert not names & {"genre_shift", "genre_branches", "real_fake_per_genre", "conditioning"}
    assert {f.name for f in dataclasses.fields(MultiGenreModelConfig)} - names == {"conditioning"}
    with pytest.raises(GenreError, match="conditioning"):
        MultiGenreModelConfig(**TINY_MODEL, conditioning="branch")


def _as_version_1(folder: Path, **config) -> None:
    """Rewrite a saved multi-genre model.json as kind_version 1 wrote it: the conditioning as the
    booleans genre_shift / genre_branches / real_fake_per_genre (per-target generators too)."""
    meta = json.loads((folder / "model.json").read_text())

    def old(c):
        c = dict(c)
        shift = c.pop("conditioning") == "scale-shift"
        return {**c, "genre_shift": shift, "genre_branches": False, "real_fake_per_genre": False, **config}

    meta["kind_version"] = 1
    meta["config"] = old(meta["config"])
    for p in meta.get("per_target_generators") or []:
        p["config"] = old(p["config"])
    (folder / "model.json").write_text(json.dumps(meta))


def test_version_1_model_json_loads_as_before_and_removed_architectures_are_refused(tmp_path):
    """A model.json of kind_version 1 (genre_shift and the removed booleans at false) loads and
    transfers as the same network; one with genre_branches or real_fake_per_genre true is a
    one-line error naming the field. Re-saving writes version 2."""
    from midigenre.stargan import combine_targets, save_multi_genre
    from shared.registry import load_model, resave_model

    roll, genres = RollSettings().to_dict(), ["low", "mid", "high"]
    x = torch.rand(3, 1, 64, 84).round()
    t = torch.tensor([0, 1, 2])
    for conditioning in ("scale", "scale-shift"):
        torch.manual_seed(7)
        m = MultiGenreGAN(MultiGenreModelConfig(**TINY_MODEL, conditioning=conditioning), 3, critic="adversarial").eval()
        folder = tmp_path / conditioning
        save_multi_genre(folder, m, genres=genres, roll_settings=roll, genre_settings={g: roll for g in genres})
        (folder / "split.json").write_text('{"songs": 1}')
        combine_targets({g: folder for g in genres}, folder, tmp_path / f"{conditioning}-combined")
        for f in (folder, tmp_path / f"{conditioning}-combined"):
            _as_version_1(f)
            loaded, meta = load_model(f)
            assert meta["kind_version"] == 2 and meta["config"]["conditioning"] == conditioning
            with torch.no_grad():  # the same network (one generator per target: batched per target)
                assert torch.allclose(loaded.generate(x, t), m.generate(x, t), atol=1e-6)
        again = resave_model(tmp_path / f"{conditioning}-combined", tmp_path / f"{conditioning}-again")
        saved = json.loads((again / "model.json").read_text())
        assert saved["kind_version"] == 2 and "genre_shift" not in saved["config"]
        assert all(p["config"]["conditioning"] == conditioning for p in saved["per_target_generators"])
    old = json.loads((tmp_path / "scale" / "model.json").read_text())
    del old["config"]["genre_shift"]  # before the setting existed: every generator shifted
    (tmp_path / "scale" / "model.json").write_text(json.dumps(old))
    with pytest.raises(GenreError, match="do not fit"):  # so these weights, without a shift, no longer fit
        load_model(tmp_path / "scale")
    for name in ("genre_branches", "real_fake_per_genre"):
        shutil.copytree(tmp_path / "scale-shift-again", tmp_path / name)
        _as_version_1(tmp_path / name, **{name: True})
        with pytest.raises(GenreError, match=f"{name}: true .*was removed after genre-transfer") as e:
            TransferModel.load(tmp_path / name)
        assert "\n" not in str(e.value)


@pytest.mark.parametrize("name", ["four-genres-melody"])
def test_shipped_multi_genre_models_are_version_1_files_that_load(name):
    """The shipped models' model.json are kind_version 1, with the removed fields at false."""
    meta = json.loads((REPO / "data" / "models" / name / "model.json").read_text())
    assert meta["kind_version"] == 1 and meta["config"]["genre_branches"] is False
    assert meta["train"]["real_fake"] == "shared" and meta["train"]["cycle_notes"] is False
    model = TransferModel.load(name)
    assert all(not hasattr(g, "genre_shift") for g in model.net.G.generators)  # conditioning scale
    assert MultiGenreConfig.from_dict(meta["train"]).conditioning == "scale"


def test_keep_source_into_keeps_the_source_in_training_and_in_the_saved_model(three, tmp_path, tiny_preset, stub_samples):
    """--keep-source-into: the transfers into the named genres are max(G(x, t), x) in the transfer,
    identity and genre terms; the cycle's way back is G itself; the saved model keeps the source there."""
    from midigenre.stargan import kept_transfer

    torch.manual_seed(0)
    m = MultiGenreGAN(TINY, 3, critic="adversarial")
    x = torch.rand(6, 1, 64, 84).lt(0.1).float()
    s = torch.tensor([0, 1, 2, 0, 1, 2])
    t = torch.tensor([1, 2, 0, 2, 0, 1])
    keep = torch.tensor([False, True, False])
    losses, fake = generator_losses(m, x, s, t, 0.0, identity=True, keep_source=keep)
    with torch.no_grad():
        plain = m.generate(x, t)
        into_kept = t == 1
        assert torch.equal(fake[into_kept], torch.maximum(plain[into_kept], x[into_kept]))
        assert torch.equal(fake[~into_kept], plain[~into_kept]) and bool((fake[into_kept] >= x[into_kept]).all())
        assert torch.allclose(losses["g/cycle"], F.l1_loss(m.generate(fake, s), x))  # the way back may remove
        assert torch.allclose(losses["g/identity"], F.l1_loss(kept_transfer(m, x, s, keep), x))
        assert torch.equal(kept_transfer(m, x, t, None), plain)

    run = tmp_path / "kept"
    cfg = MultiGenreConfig(preset=tiny_preset, epochs=1, batch_size=6, sample_phrases=1, identity=1.0,
                           keep_source_into=["high"], binarize="density")
    task = MultiGenreTask(sources(three), run, cfg)
    task.fit()
    meta = json.loads((run / "model.json").read_text())
    assert meta["keep_source"] == {"low": False, "high": True, "mid": False}
    assert meta["train"]["keep_source_into"] == ["high"]
    model = TransferModel.load(run)
    ph = np.random.default_rng(2).random((3, 64, 84)) < 0.05
    into_high = model.transfer_phrases(ph, "high", source="low")[0]
    assert not (ph & ~into_high).any()  # every source note kept
    model.set_keep_source(False)
    assert (ph & ~model.transfer_phrases(ph, "high", source="low")[0]).any()  # G alone drops some
    with pytest.raises(GenreError, match="--keep-source-into names jazz, not one of the genres"):
        MultiGenreTask(sources(three), tmp_path / "r", MultiGenreConfig(preset=tiny_preset, keep_source_into=["jazz"]))
    with pytest.raises(GenreError, match="list of genre names"):
        MultiGenreConfig(keep_source_into="high")


def test_combine_targets_takes_each_target_genre_generator_from_its_own_source(tmp_path):
    """combine_targets: G(x, t) of the combined model is G(x, t) of source t, with source t's
    threshold, keep-source and architecture for t; D comes from the base; sources of another
    split are refused."""
    from midigenre.stargan import combine_targets, save_multi_genre

    roll = RollSettings().to_dict()
    genres = ["low", "mid", "high"]
    nets, folders = [], []
    for k in range(3):
        torch.manual_seed(10 + k)
        m = MultiGenreGAN(MultiGenreModelConfig(**TINY_MODEL, conditioning="scale"), 3, critic="adversarial").eval()
        folder = tmp_path / f"epoch_{k + 1}"
        save_multi_genre(folder, m, genres=genres, roll_settings=roll, genre_settings={g: roll for g in genres},
                         thresholds={g: 0.5 + 0.1 * k for g in genres}, epochs_done=k + 1,
                         keep_source={g: k == 1 for g in genres})
        (folder / "split.json").write_text('{"songs": 1}')
        nets.append(m)
        folders.append(folder)
    sources = {"low": folders[2], "mid": folders[0], "high": folders[1]}
    combine_targets(sources, folders[0], tmp_path / "combined")
    model = TransferModel.load(tmp_path / "combined")
    assert isinstance(model, MultiGenreTransfer) and (tmp_path / "combined" / "split.json").is_file()
    assert model.thresholds == pytest.approx({"low": 0.7, "mid": 0.5, "high": 0.6})
    assert model.keep_source == {"low": False, "mid": False, "high": True}  # each generator as it was trained
    assert model.meta["epochs_done"] == 3 and [g["genre"] for g in model.meta["per_target_generators"]] == genres
    x = torch.rand(6, 1, 64, 84).round()
    t = torch.tensor([0, 1, 2, 2, 1, 0])
    with torch.no_grad():
        got = model.net.generate(x, t)
        want = torch.cat([nets[{0: 2, 1: 0, 2: 1}[int(k)]].generate(x[i:i + 1], t[i:i + 1]) for i, k in enumerate(t)])
        assert torch.allclose(got, want, atol=1e-6)
        assert torch.equal(model.net.genre_logits(x), nets[0].genre_logits(x))  # D and critic from the base
    # a combined model combines again (its generator for each genre is found)
    combine_targets({g: tmp_path / "combined" for g in genres}, tmp_path / "combined", tmp_path / "again")
    with torch.no_grad():
        assert torch.allclose(TransferModel.load(tmp_path / "again").net.generate(x, t), got, atol=1e-6)
    # … and keeps where each generator came from
    assert TransferModel.load(tmp_path / "again").meta["per_target_generators"] == model.meta["per_target_generators"]

    (folders[1] / "split.json").write_text('{"songs": 2}')
    with pytest.raises(GenreError, match="song split"):
        combine_targets(sources, folders[0], tmp_path / "bad")
    (folders[1] / "split.json").write_text('{"songs": 1}')
    # a generator of another architecture (here: with the pitch plane and a shift) keeps its own
    torch.manual_seed(30)
    other = MultiGenreGAN(MultiGenreModelConfig(**TINY_MODEL, pitch_plane=True, conditioning="scale-shift"), 3).eval()
    save_multi_genre(tmp_path / "other", other, genres=genres, roll_settings=roll, genre_settings={g: roll for g in genres})
    (tmp_path / "other" / "split.json").write_text('{"songs": 1}')
    combine_targets({**sources, "mid": tmp_path / "other"}, folders[0], tmp_path / "mixed")
    mixed = TransferModel.load(tmp_path / "mixed")
    assert [p["config"]["pitch_plane"] for p in mixed.meta["per_target_generators"]] == [False, True, False]
    with torch.no_grad():
        assert torch.allclose(mixed.net.generate(x, t), torch.where((t == 1).view(-1, 1, 1, 1), other.generate(x, t), got),
                              atol=1e-6)
    combine_targets({g: tmp_path / "mixed" for g in genres}, tmp_path / "mixed", tmp_path / "mixed2")  # and again
    with torch.no_grad():
        assert torch.allclose(TransferModel.load(tmp_path / "mixed2").net.generate(x, t), mixed.net.generate(x, t), atol=1e-6)
    # a source whose discriminator differs gives its generator all the same (D comes from the base)
    torch.manual_seed(20)
    per_genre_d = MultiGenreGAN(MultiGenreModelConfig(**TINY_MODEL, conditioning="scale"), 3, critic="shared")
    save_multi_genre(tmp_path / "pgd", per_genre_d, genres=genres, roll_settings=roll, genre_settings={g: roll for g in genres})
    (tmp_path / "pgd" / "split.json").write_text('{"songs": 1}')
    combine_targets({**sources, "mid": tmp_path / "pgd"}, folders[0], tmp_path / "with_pgd")
    with torch.no_grad():
        y = TransferModel.load(tmp_path / "with_pgd").net.generate(x[:2], torch.tensor([1, 1]))
        assert torch.allclose(y, per_genre_d.eval().generate(x[:2], torch.tensor([1, 1])), atol=1e-6)
    with pytest.raises(GenreError, match="one source per genre"):
        combine_targets({"low": folders[0]}, folders[0], tmp_path / "bad")
    assert not (tmp_path / "bad").exists()


def test_pair_thresholds_apply_when_the_source_genre_is_known(tmp_path):
    """pair_thresholds (chosen by genre midi choose): source → target is binarised at its own
    threshold when the source genre is known, at the target genre's otherwise; probabilities and
    binarize give what transfer_phrases gives, kept source included."""
    from midigenre.stargan import save_multi_genre

    roll, genres = RollSettings().to_dict(), ["low", "mid", "high"]
    torch.manual_seed(3)
    save_multi_genre(tmp_path / "m", MultiGenreGAN(TINY, 3).eval(), genres=genres, roll_settings=roll,
                     genre_settings={g: roll for g in genres}, thresholds={"low": 0.5, "mid": 0.5, "high": 0.52},
                     pair_thresholds={"low": {"high": 0.48}, "high": {"low": 0.45}},
                     keep_source={"low": False, "mid": False, "high": True})
    model = TransferModel.load(tmp_path / "m")
    assert model.threshold("high", "low") == 0.48 and model.threshold("high", "mid") == 0.52
    assert model.threshold("high") == 0.52 and model.threshold("low", "high") == 0.45 and model.threshold("mid", "low") == 0.5
    ph = np.random.default_rng(2).random((5, 64, 84)) < 0.05
    p = model.probabilities(ph, "high")
    assert p.shape == ph.shape and p.dtype == np.float32
    own, targets = model.binarize(ph, p, "high", 0.48), model.binarize(ph, p, "high", 0.52)
    assert not np.array_equal(own, targets) and (own >= ph).all()  # the two thresholds differ here; the source is kept
    assert np.array_equal(model.transfer_phrases(ph, "high", source="low")[0], own)
    assert np.array_equal(model.transfer_phrases(ph, "high", source="mid")[0], targets)
    assert np.array_equal(model.transfer_phrases(ph, "high")[0], targets)
    # the cycle's way back (high → low) is binarised at that direction's own threshold
    _, back = model.transfer_phrases(ph, "high", source="low", cycle=True)
    assert np.array_equal(back, model.probabilities(own, "low") > 0.45)
    # a source the model has to tell for the way back leaves the transfer as without the cycle
    assert np.array_equal(model.transfer_phrases(ph, "high", cycle=True)[0], targets)
    # generators combined into another model do not keep this model's per-direction thresholds
    from midigenre.stargan import combine_targets

    (tmp_path / "m" / "split.json").write_text('{"songs": 1}')
    combine_targets({g: tmp_path / "m" for g in genres}, tmp_path / "m", tmp_path / "c", thresholds={"low": 0.4})
    combined = TransferModel.load(tmp_path / "c")
    assert combined.pair_thresholds == {} and combined.thresholds["low"] == 0.4 and combined.meta["threshold_calibration"] is None


def test_thresholds_are_chosen_per_target_and_per_direction():
    """midigenre.choose.choose_thresholds: per target, the threshold meeting the target in most
    directions (then the highest mean share); per direction, the widest margin among the
    thresholds that meet it, and nothing where none does."""
    from midigenre.choose import choose_thresholds, meets

    def direction(source, target, points):
        return {"source": source, "target": target,
                "grid": [{"threshold": t, "share": sh, "transposition_invariant": ti} for t, sh, ti in points]}

    # into "high": a higher threshold adds less and moves fewer phrases
    low = direction("low", "high", [(0.3, 0.95, 1.19), (0.5, 0.80, 0.90), (0.7, 0.55, 0.60)])
    mid = direction("mid", "high", [(0.3, 0.90, 1.50), (0.5, 0.70, 1.30), (0.7, 0.45, 1.10)])
    never = [direction(s, "mid", [(0.3, 0.2, 0.5), (0.5, 0.3, 0.5)]) for s in ("low", "high")]
    per_target, pairs = choose_thresholds([low, mid, *never], {"high": 0.5, "mid": 0.6})
    assert per_target == {"high": 0.3, "mid": 0.6}  # 0.3, 0.5 and 0.7 each meet one; 0.3 moves most; mid keeps its own
    # low → high: margins min(0.9, 0.008) at 0.3, min(0.6, 0.25) at 0.5, min(0.1, 0.5) at 0.7; mid → high meets nowhere
    assert pairs == {"low": {"high": 0.5}}
    assert choose_thresholds([low, mid], {"high": 0.5}, pairs=False) == ({"high": 0.3}, {})
    assert meets(0.51, 1.2) and not meets(0.5, 1.0) and not meets(0.9, 1.21)
    odd = direction("mid", "high", [(0.3, 0.9, 1.0), (0.6, 0.7, 0.9), (0.7, 0.6, 0.8)])
    with pytest.raises(GenreError, match="different thresholds"):
        choose_thresholds([low, odd], {"high": 0.5})


def test_threshold_grid_is_the_transfer_at_each_threshold(tmp_path):
    """midigenre.choose.threshold_grid: per threshold, the judge's share and the content
    change of exactly what transfer_phrases gives at that threshold."""
    from midigenre.choose import threshold_grid
    from midigenre.judges import FeatureJudge
    from midigenre.metrics import content_change_transposed
    from midigenre.stargan import save_multi_genre

    roll, genres = RollSettings().to_dict(), ["low", "mid", "high"]
    torch.manual_seed(4)
    save_multi_genre(tmp_path / "m", MultiGenreGAN(TINY, 3).eval(), genres=genres, roll_settings=roll,
                     genre_settings={g: roll for g in genres})
    model = TransferModel.load(tmp_path / "m")
    rng = np.random.default_rng(5)
    real = [rng.random((30, 64, 84)) < d for d in (0.01, 0.03, 0.08)]
    judge = FeatureJudge.train(real, genres, "h", seed=1)
    x = rng.random((12, 64, 84)) < 0.04
    rows = threshold_grid(model, judge, x, "high", (0.45, 0.5, 0.55))
    assert [r["threshold"] for r in rows] == [0.45, 0.5, 0.55]
    for r in rows:
        model.thresholds["high"] = r["threshold"]
        y = model.transfer_phrases(x, "high", source="low")[0]
        assert r["share"] == float(np.mean(judge.predict(y) == judge.index("high")))
        assert r["transposition_invariant"] == pytest.approx(float(np.nanmean(content_change_transposed(x, y))))
    assert len({r["transposition_invariant"] for r in rows}) > 1  # the thresholds give different transfers


def _grid(points: dict) -> list[dict]:
    """A direction's threshold grid: {threshold: (share, transposition-invariant content change)}."""
    return [{"threshold": k, "share": v[0], "transposition_invariant": v[1]} for k, v in points.items()]


def test_choice_scores_each_direction_at_its_own_threshold(tmp_path):
    """midigenre.choose.combine_choice: a direction is scored at its best threshold, so an epoch
    whose transfers add too much at 0.5 but meet the target with a wider margin at 0.7 wins, and
    the directions into that target are binarised where they meet it."""
    from midigenre.choose import Candidate, combine_choice
    from midigenre.stargan import save_multi_genre

    roll, genres = RollSettings().to_dict(), ["low", "mid", "high"]
    candidates = []
    # into low: epoch 1 adds too much at 0.5 (0.9, TI 1.5) but meets it at 0.7 (0.8, 1.0);
    # epoch 2 meets it at 0.5 only narrowly (0.6, 1.1); the other targets alike in both
    into_low = {1: {0.5: (0.9, 1.5), 0.7: (0.8, 1.0)}, 2: {0.5: (0.6, 1.1), 0.7: (0.4, 0.9)}}
    for epoch in (1, 2):
        folder = tmp_path / "run" / "epochs" / f"epoch_00{epoch}"
        torch.manual_seed(epoch)
        save_multi_genre(folder, MultiGenreGAN(TINY, 3), genres=genres, roll_settings=roll,
                         genre_settings={g: roll for g in genres}, epochs_done=epoch, train={"run": "run"})
        (folder / "split.json").write_text('{"songs": 1}')
        directions = [{"source": s, "target": t, "grid": _grid(into_low[epoch] if t == "low" else {0.5: (0.7, 0.8), 0.7: (0.6, 0.7)})}
                      for s in genres for t in genres if s != t]
        candidates.append(Candidate(folder, tmp_path / "run", epoch, directions))
    choice = combine_choice(candidates, genres, tmp_path / "combined", calibration={"part": "valid"})
    meta = json.loads((tmp_path / "combined" / "model.json").read_text())
    assert meta["per_target_generators"][0]["genre"] == "low" and meta["per_target_generators"][0]["epochs_done"] == 1
    assert choice.thresholds == meta["thresholds"] == {"low": 0.7, "mid": 0.5, "high": 0.5}
    assert meta["pair_thresholds"]["mid"] == {"low": 0.7, "high": 0.5} and choice.met() == 6
    assert meta["threshold_calibration"]["part"] == "valid" and len(meta["threshold_calibration"]["directions"]) == 6


def test_sampler_is_balanced_deterministic_and_streams_on():
    sizes = [100, 20, 37]
    smp = GenreSampler(sizes, batch_size=8, seed=3)
    assert smp.steps == 3 * 20 // 8
    e0, e0_again, e1 = smp.epoch(0), smp.epoch(0), smp.epoch(1)
    for a, b in zip(e0, e0_again):
        assert all(np.array_equal(u, v) for u, v in zip(a, b))
    assert any(not np.array_equal(a[1], b[1]) for a, b in zip(e0, e1))
    counts = np.zeros(3, int)
    for src, pos, tgt in e0:
        assert len(src) == len(pos) == len(tgt) == 8
        c = np.bincount(src, minlength=3)
        assert c.max() - c.min() <= 1  # every batch holds the genres evenly
        assert (tgt != src).all() and ((tgt >= 0) & (tgt < 3)).all()
        for g in range(3):
            assert (pos[src == g] < sizes[g]).all()
        counts += c
    assert list(counts) == smp.per_epoch and max(counts) - min(counts) <= smp.steps
    # the large genre's stream goes on: epochs 0–4 show ~all of its 100 phrases, none twice
    big = np.concatenate([pos[src == 0] for e in range(5) for src, pos, _ in smp.epoch(e)])
    assert 90 <= len(big) <= 100 and len(np.unique(big)) == len(big)
    # the targets of each source are spread over the other genres
    tg = np.concatenate([tgt[src == 0] for e in range(20) for src, _, tgt in smp.epoch(e)])
    share = np.bincount(tg, minlength=3)[1:] / len(tg)
    assert abs(share[0] - 0.5) < 0.1
    assert GenreSampler(sizes, batch_size=8, seed=4).epoch(0)[0][1].tolist() != e0[0][1].tolist()


def test_train_export_load_and_transfer(three, tmp_path, tiny_preset):
    run = tmp_path / "run"
    cfg = MultiGenreConfig(preset=tiny_preset, epochs=1, batch_size=6, sample_phrases=1, identity=1.0, spectral_norm=True)
    task = MultiGenreTask(sources(three), run, cfg)
    assert task.genres == ["low", "high", "mid"] and task.steps_per_epoch() == 3  # 3 × 6 training phrases / 6
    assert task.roll_settings["meter"] == "strict" and task.genre_settings["mid"]["meter"] == "lenient"
    row = task.fit()
    assert {"g/adv", "g/cycle", "g/genre", "g/identity", "d/adv", "d/genre", "s_per_step"} <= set(row)
    assert (run / "samples" / "epoch_001.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    conf = json.loads((run / "config.json").read_text())
    assert conf["kind"] == "multi-genre" and conf["train"]["batch_size"] == 6
    split = json.loads((run / "split.json").read_text())
    assert set(split["genres"]) == {"low", "high", "mid"} and set(split["genre_hashes"]) == {"low", "high", "mid"}
    meta = json.loads((run / "model.json").read_text())
    assert meta["kind"] == "multi-genre" and meta["genres"] == ["low", "high", "mid"] and meta["epochs_done"] == 1
    assert meta["thresholds"] == {"low": 0.5, "high": 0.5, "mid": 0.5} and meta["genre_settings"]["mid"]["meter"] == "lenient"

    model = TransferModel.load(run)  # any transfer model, by its kind
    assert isinstance(model, MultiGenreTransfer) and model.names == ["low", "high", "mid"]
    x = torch.rand(3, 1, 64, 84).round()
    task.model.eval()
    with torch.no_grad():
        t = torch.tensor([2, 0, 1])
        assert torch.equal(model.net.generate(x, t), task.model.generate(x, t))
    song = three[0].parent / "low" / "low00.mid"
    for target in ("high", "mid"):  # low → low: nothing to transfer (refused)
        res = transfer_midi(song, model, target, source_genre="low", cycle=True)
        assert res.source_genre == "low" and res.target_genre == target and res.predicted is None
        assert res.transferred.shape == res.source.shape == res.cycled.shape
    from midigenre.pianoroll import read_song, split_phrases
    from midigenre.transfer import WrongGenre

    told, _ = model.predict_genre(split_phrases(read_song(song, model.settings).roll, model.settings, keep_empty=True,
                                                pad_tail=True)[0])
    res = transfer_midi(song, model, next(g for g in model.names if g != told))
    assert res.predicted is not None and res.source_genre == told and res.told_by == "the model"
    assert abs(sum(res.predicted.values()) - 1) < 1e-6 and res.predicted[res.source_genre] == max(res.predicted.values())
    with pytest.raises(WrongGenre, match=f"takes the song for {told} already"):  # told to be of --to: refused
        transfer_midi(song, model, told)
    with pytest.raises(GenreError, match="--to must be one of them"):
        transfer_midi(song, model, "jazz")
    with pytest.raises(GenreError, match="--from must be one of them"):
        transfer_midi(song, model, "mid", source_genre="jazz")
    # a song of the lenient genre is read with its own meter rule when --from names it
    assert model.settings_for("mid").meter == "lenient" and model.settings_for(None).meter == "strict"
    # keep-source: per target genre, saved with the model or set for all
    assert model.keep_source == {"low": False, "high": False, "mid": False}
    ph = (np.random.default_rng(1).random((4, 64, 84)) < 0.05)
    plain = model.transfer_phrases(ph, "high", source="low")[0]
    model.meta["keep_source"] = {"high": True}
    model.set_keep_source(None)
    kept, back = model.transfer_phrases(ph, "high", source="low", cycle=True)
    assert np.array_equal(kept, plain | ph) and model.keep_source == {"low": False, "high": True, "mid": False}
    model.set_keep_source(False)
    assert np.array_equal(model.transfer_phrases(ph, "high", source="low")[0], plain)


def test_exact_resume(three, tmp_path, tiny_preset, stub_samples):
    cfg = MultiGenreConfig(preset=tiny_preset, epochs=2, decay_after=1, batch_size=4, pool_size=3, seed=5)
    straight = MultiGenreTask(sources(three), tmp_path / "straight", cfg)
    assert straight.steps_per_epoch() == 4
    straight.fit()
    interrupted = MultiGenreTask(sources(three), tmp_path / "resumed", cfg)
    calls = {"n": 0}

    def stop(stage, step, n_steps, note):
        calls["n"] += 1
        if calls["n"] == n_steps + 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        interrupted.fit(progress=stop)
    resumed = MultiGenreTask(sources(three), tmp_path / "resumed", cfg, split=tmp_path / "resumed" / "split.json")
    resumed.resume()
    assert (resumed.epoch, resumed.step_in_epoch) == (1, 2)
    resumed.fit()
    for (k, v), (k2, v2) in zip(straight.model.state_dict().items(), resumed.model.state_dict().items()):
        assert k == k2 and torch.equal(v, v2), k
    other = MultiGenreTask(sources(three[:2]), tmp_path / "resumed", cfg, split=tmp_path / "resumed" / "split.json")
    with pytest.raises(GenreError, match="same --genre"):
        other.resume()


def test_train_choose_and_choose_again(three, tmp_path, tiny_preset, stub_samples):
    """genre midi train --choose (and genre midi choose): every kept epoch scored on the validation
    songs, each target's generator from the epoch that meets the target best into it, thresholds
    per target and direction as scored; a second choice reuses the scores; bad input is one line."""
    from click.testing import CliRunner

    from cli.main import main
    from midigenre.choose import GRID, part_phrases, target_score, threshold_grid
    from midigenre.classifier import Classifier
    from midigenre.dataset import SongSplit

    def cli(*args):
        return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)

    run = tmp_path / "run"
    specs = [x for name, p in zip(("low", "high", "mid"), three) for x in ("--genre", f"{name}={p}")]
    common = ["--preset", tiny_preset, "--batch-size", "6", "--sample-phrases", "1", "--valid-fraction", "0.3"]
    r = cli("midi", "train", *specs, "--out", run, "--epochs", "2", "--keep-epochs", "--choose", *common)
    assert r.exit_code == 0, r.output
    chosen = run / "chosen"
    assert "chosen model:" in r.output and "directions meet the target on the validation songs" in r.output
    scores = {p.name: json.loads(p.read_text()) for p in sorted((chosen / "scores").glob("*.json"))}
    assert sorted(scores) == ["run-epoch_001.json", "run-epoch_002.json"]
    meta = json.loads((chosen / "model" / "model.json").read_text())
    picked = {g["genre"]: Path(g["from"]).name for g in meta["per_target_generators"]}
    for t, epoch in picked.items():  # each target's generator from the epoch that scored best into it
        best = max(scores.values(), key=lambda sc: target_score(sc["directions"], t))
        assert target_score(scores[f"run-{epoch}.json"]["directions"], t) == target_score(best["directions"], t)
    assert set(meta["thresholds"].values()) <= set(GRID) | {0.5}
    assert all(v in GRID for row in meta["pair_thresholds"].values() for v in row.values())
    trainings = json.loads((chosen / "model" / "trainings.json").read_text())
    assert len(trainings) == 1 and trainings[0]["epochs"] == max(g["epochs_done"] for g in meta["per_target_generators"])

    # the model transfers as it was scored: each direction at its threshold gives the recorded share
    model = TransferModel.load(chosen / "model")
    judge = Classifier.load(chosen / "judge-reference")
    named = {n: GenreSource.parse_named(f"{n}={p}") for n, p in zip(("low", "high", "mid"), three)}
    xs = part_phrases([named[g] for g in model.names], SongSplit.load(run / "split.json"), "valid", 200, 0)
    assert len(meta["threshold_calibration"]["directions"]) == 6
    for d in meta["threshold_calibration"]["directions"]:
        t, thr = d["target"], model.threshold(d["target"], d["source"])
        (now,) = threshold_grid(model, judge, xs[model.names.index(d["source"])], t, [thr])
        (recorded,) = [g for g in d["grid"] if g["threshold"] == thr]
        assert now["share"] == pytest.approx(recorded["share"])
        assert now["transposition_invariant"] == pytest.approx(recorded["transposition_invariant"], nan_ok=True)

    stamps = {p.name: p.stat().st_mtime_ns for p in (chosen / "scores").glob("*.json")}
    r = cli("midi", "choose", run, "--out", chosen)
    assert r.exit_code == 0, r.output
    assert {p.name: p.stat().st_mtime_ns for p in (chosen / "scores").glob("*.json")} == stamps  # reused, not scored again
    assert json.loads((chosen / "model" / "model.json").read_text())["pair_thresholds"] == meta["pair_thresholds"]
    r = cli("midi", "choose", run, "--out", chosen, "--up-to", "run=1")  # a budget: epoch 1 only
    assert r.exit_code == 0, r.output
    first = json.loads((chosen / "model" / "model.json").read_text())
    assert {g["epochs_done"] for g in first["per_target_generators"]} == {1}
    assert json.loads((chosen / "model" / "trainings.json").read_text())[0]["epochs"] == 1

    # --keep-the-song: the same epochs chosen on whole validation songs by the song targets (issue 25)
    from midigenre.choose import SONG_GRID

    r = cli("midi", "choose", run, "--out", tmp_path / "song", "--keep-the-song", "--classifier", chosen / "judge-reference",
            "--data", three[0].parent, "--data", three[2].parent)
    assert r.exit_code == 0, r.output
    assert "chosen model:" in r.output and "on whole validation songs" in r.output
    choice = json.loads((tmp_path / "song" / "choice.json").read_text())
    assert len(choice["chosen"]) == 6 and all(r["threshold"] in SONG_GRID for r in choice["chosen"].values())
    assert sorted(choice["songs"]) == ["high", "low", "mid"] and all(choice["songs"].values())
    picked = TransferModel.load(tmp_path / "song" / "model")
    for key, r in choice["chosen"].items():
        src, dst = key.split("→")
        assert picked.threshold(dst, src) == r["threshold"]

    def one_line_error(r, message):
        lines = [line for line in r.output.splitlines() if line.strip()]
        assert r.exit_code == 1 and len(lines) == 1 and lines[0].startswith("Error: ") and message in lines[0], r.output

    one_line_error(cli("midi", "choose", run, "--out", tmp_path / "c", "--keep-the-song"), "with --data")
    one_line_error(cli("midi", "choose", run, "--out", tmp_path / "c", "--keep-the-song", "--data", tmp_path / "plain"),
                   "none of the validation songs")

    one_line_error(cli("midi", "train", *specs, "--out", tmp_path / "r2", "--epochs", "1", "--choose", *common[:-2]),
                   "give --keep-epochs and --valid-fraction")
    plain = tmp_path / "plain"
    assert cli("midi", "train", *specs, "--out", plain, "--epochs", "1", *common).exit_code == 0
    one_line_error(cli("midi", "choose", plain, "--out", tmp_path / "c"), "no kept epochs")
    one_line_error(cli("midi", "choose", run, run, "--out", tmp_path / "c"), "given twice")
    one_line_error(cli("midi", "choose", run, "--out", tmp_path / "c", "--up-to", "other=1"), "no run named other")
    one_line_error(cli("midi", "choose", run, "--out", tmp_path / "c", "--up-to", "run=x"), "give RUN=N")
    one_line_error(cli("midi", "choose", run, "--out", tmp_path / "c", "--genre", "jazz=x.h5"), "no genre jazz")
    one_line_error(cli("midi", "choose", run, "--out", tmp_path / "c", "--genre", "low=missing.h5"), "is not here")
    # a judge that trained on songs the run set aside for validation is refused
    import shutil

    shutil.copytree(chosen / "judge-reference", tmp_path / "judge")
    theirs = json.loads((tmp_path / "judge" / "split.json").read_text())
    theirs["genres"]["low"]["train"] += theirs["genres"]["low"]["valid"]
    (tmp_path / "judge" / "split.json").write_text(json.dumps(theirs))
    one_line_error(cli("midi", "choose", run, "--out", tmp_path / "c", "--classifier", tmp_path / "judge"),
                   "set aside for validation or testing")


def test_bad_input(three, tmp_path, tiny_preset):
    cfg = MultiGenreConfig(preset=tiny_preset)
    with pytest.raises(GenreError, match="two or more genres"):
        MultiGenreTask(sources(three[:1]), tmp_path / "r", cfg)
    with pytest.raises(GenreError, match="must differ"):
        MultiGenreTask(sources([three[0], three[0]]), tmp_path / "r", cfg)
    drums = tmp_path / "drums.h5"
    prepare([three[1].parent / "high"], "high2", drums, RollSettings(keep_drums=True))
    with pytest.raises(GenreError, match="different settings.*keep_drums.*only the meter rule"):
        MultiGenreTask(sources([three[0], drums]), tmp_path / "r", cfg)
    with pytest.raises(GenreError, match="unknown loss names"):
        MultiGenreConfig(weights={"g/adv_ab": 1})


def test_cli_train_resume_transfer_and_errors(three, tmp_path, tiny_preset, stub_samples):
    from click.testing import CliRunner

    from cli.main import main

    def cli(*args):
        return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)

    run = tmp_path / "run"
    specs = [x for name, p in zip(("low", "high", "mid"), three) for x in ("--genre", f"{name}={p}")]
    common = ["--preset", tiny_preset, "--batch-size", "6", "--sample-phrases", "1"]
    r = cli("midi", "train", *specs, "--out", run, "--epochs", "1", "--critic", "separate", "--conditioning",
            "scale-shift", "--keep-source-into", "mid", *common)
    assert r.exit_code == 0, r.output
    assert json.loads((run / "model.json").read_text())["keep_source"] == {"low": False, "high": False, "mid": True}
    assert "low / high / mid" in r.output and "3 steps/epoch" in r.output
    train = json.loads((run / "config.json").read_text())["train"]
    assert train["critic"] == "separate" and train["conditioning"] == "scale-shift"
    assert train["melody_lock"] and train["harmony"] == 5.0 and train["sigma_d"] == 0.1  # the recipe's defaults
    assert json.loads((run / "model.json").read_text())["critic"] == "separate"
    assert TransferModel.load(run).net.C is not None and hasattr(TransferModel.load(run).net.G, "genre_shift")
    for removed in (["--real-fake", "per-genre"], ["--genre-scale", "mid=2"], ["--cycle-notes"]):  # gone (issue 26)
        r = cli("midi", "train", *specs, "--out", tmp_path / "gone", *removed, *common)
        assert r.exit_code == 2 and "No such option" in r.output, r.output
    r = cli("midi", "train", *specs, "--out", tmp_path / "gone", "--conditioning", "branch", *common)
    assert r.exit_code == 2 and "'branch' is not one of 'scale-shift', 'scale'" in r.output, r.output
    (tmp_path / "branch.yaml").write_text("conditioning: branch\n")
    r = cli("midi", "train", *specs, "--out", run, "--epochs", "2", "--resume")
    assert r.exit_code == 0, r.output
    assert len((run / "log.csv").read_text().splitlines()) == 3
    r = cli("midi", "train", "--a", three[0], "--b", three[1], "--out", run, "--epochs", "3", "--resume")
    assert r.exit_code == 1 and "multi-genre run" in r.output

    song = three[0].parent / "low" / "low00.mid"
    for target in ("high", "mid"):
        out = tmp_path / f"{target}.mid"
        r = cli("midi", "transfer", song, "--model", run, "--to", target, "--from", "low", "-o", out, "--cycle")
        assert r.exit_code == 0, r.output
        assert out.exists() and f"low → {target}" in r.output and "told by the model" not in r.output
    r = cli("midi", "transfer", song, "--model", run, "--to", "mid", "-o", tmp_path / "p.mid")
    assert r.exit_code == 0 and "told by the model" in r.output, r.output
    r = cli("midi", "transfer", song.parent, "--model", run, "--to", "mid", "-o", tmp_path / "many")
    written = len(list((tmp_path / "many").glob("*.mid.mid")))  # songs told to be mid already are skipped
    assert r.exit_code == 0 and written >= 1 and written + r.output.count("takes the song for mid already") == 4

    def one_line_error(r, message):
        lines = [line for line in r.output.splitlines() if line.strip()]
        assert r.exit_code == 1 and len(lines) == 1 and lines[0].startswith("Error: ") and message in lines[0], r.output

    one_line_error(cli("midi", "transfer", song, "--model", run, "--to", "jazz", "-o", tmp_path / "x.mid"),
                   "--to must be one of them")
    one_line_error(cli("midi", "transfer", song, "--model", run, "--to", "mid", "--from", "jazz", "-o", tmp_path / "x.mid"),
                   "--from must be one of them")
    one_line_error(cli("midi", "train", "--genre", f"low={three[0]}", "--out", tmp_path / "r1"), "one genre only")
    one_line_error(cli("midi", "train", *specs, "--a", three[0], "--out", tmp_path / "r1"), "not both")
    one_line_error(cli("midi", "train", *specs, "--variant", "partial", "--out", tmp_path / "r1"), "--variant")
    one_line_error(cli("midi", "train", "--a", three[0], "--b", three[1], "--critic", "shared", "--out", tmp_path / "r1"),
                   "--critic belongs to the multi-genre model")
    one_line_error(cli("midi", "train", *specs, "--config", tmp_path / "branch.yaml", "--out", tmp_path / "r1"),
                   "conditioning 'branch' (residual blocks and decoder of their own per target genre) was removed")
    (tmp_path / "per-genre.yaml").write_text("real_fake: per-genre\n")
    one_line_error(cli("midi", "train", *specs, "--config", tmp_path / "per-genre.yaml", "--out", tmp_path / "r1"),
                   "setting real_fake (--real-fake per-genre, a real/fake map per genre) was removed")
    one_line_error(cli("midi", "train", "--a", three[0], "--b", three[1], "--keep-source-into", "low", "--out",
                       tmp_path / "r1"), "--keep-source-into belongs to the multi-genre model")
    one_line_error(cli("midi", "train", *specs, "--keep-source-into", "jazz", "--out", tmp_path / "r1"),
                   "--keep-source-into names jazz")
    one_line_error(cli("midi", "train", "--genre", f"low={three[0]}", "--genre", f"high={three[0]}",
                       "--out", tmp_path / "r1"), "'low', not 'high'")
    drums = tmp_path / "drums.h5"
    prepare([three[1].parent / "high"], "high", drums, RollSettings(keep_drums=True))
    one_line_error(cli("midi", "train", "--genre", f"low={three[0]}", "--genre", f"high={drums}", "--out", tmp_path / "r1"),
                   "different settings")
    # the pair model keeps its own rules for --from
    pair = tmp_path / "pair"
    r = cli("midi", "train", "--a", three[0], "--b", three[1], "--out", pair, "--epochs", "1", "--preset", tiny_preset,
            "--batch-size", "3", "--sample-phrases", "1")
    assert r.exit_code == 0, r.output
    assert json.loads((pair / "config.json").read_text())["kind"] == "cyclegan"
    r = cli("midi", "transfer", song, "--model", pair, "--to", "high", "--from", "low", "-o", tmp_path / "ph.mid")
    assert r.exit_code == 0, r.output
    one_line_error(cli("midi", "transfer", song, "--model", pair, "--to", "high", "--from", "high", "-o", tmp_path / "ph.mid"),
                   "--from must be low")
    one_line_error(cli("midi", "evaluate", "--model", run, "--classifier", run), "not a 'cyclegan' model")


def test_cli_trains_from_midi_folders(three, tmp_path, tiny_preset, stub_samples):
    """--genre NAME=FOLDER prepares the folder into OUT/caches/NAME.h5 (with --meter per genre) and
    trains on it: the same phrases as a cache made by `genre midi prepare`; --resume reuses it."""
    from click.testing import CliRunner

    from cli.main import main
    from midigenre.dataset import PhraseCache

    def cli(*args):
        return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)

    low, mid = three[0].parent / "low", three[2].parent / "mid"
    run = tmp_path / "run"
    specs = ["--genre", f"low={low}", "--genre", f"mid={mid}", "--genre", str(three[1])]  # the last: a plain cache
    common = ["--preset", tiny_preset, "--batch-size", "6", "--sample-phrases", "1", "--out", run]
    r = cli("midi", "train", *specs, "--meter", "mid=lenient", "--epochs", "1", *common)
    assert r.exit_code == 0, r.output
    assert "Prepared 'low'" in r.output and "Prepared 'mid'" in r.output
    for name, reference in (("low", three[0]), ("mid", three[2])):
        with PhraseCache(run / "caches" / f"{name}.h5") as c, PhraseCache(reference) as ref:
            assert c.header.settings == ref.header.settings
            assert np.array_equal(c.phrases(name, np.arange(c.n_phrases(name))), ref.phrases(name, np.arange(ref.n_phrases(name))))
    data = json.loads((run / "config.json").read_text())["data"]["genres"]
    assert [d["cache"] for d in data][:2] == [str((run / "caches" / "low.h5").resolve()), str((run / "caches" / "mid.h5").resolve())]
    r = cli("midi", "train", *specs, "--meter", "mid=lenient", "--epochs", "2", "--resume", *common)
    assert r.exit_code == 0, r.output
    assert "using" in r.output and "Prepared" not in r.output and len((run / "log.csv").read_text().splitlines()) == 3

    def one_line_error(r, message):
        lines = [line for line in r.output.splitlines() if line.strip()]
        assert r.exit_code == 1 and len(lines) == 1 and lines[0].startswith("Error: ") and message in lines[0], r.output

    other = ["--out", tmp_path / "r2", "--preset", tiny_preset]
    one_line_error(cli("midi", "train", *specs, "--variant", "partial", *other), "--variant")  # before preparing
    r = cli("midi", "train", *specs, "--meter", "mid=strict", "--epochs", "3", "--resume", *common)
    assert r.exit_code == 1 and r.output.strip().splitlines()[-1].startswith("Error: ") \
        and "was prepared with the meter rule mid=lenient, not strict" in r.output, r.output
    one_line_error(cli("midi", "train", *specs, "--meter", "jazz=lenient", *other), "no --genre jazz=FOLDER")
    one_line_error(cli("midi", "train", *specs, "--meter", "mid=sometimes", *other), "the rule must be one of")
    one_line_error(cli("midi", "train", "--a", three[0], "--b", three[1], "--meter", "lenient", *other), "--meter belongs to")
    assert not (tmp_path / "r2").exists()


def test_the_critic_trains_and_old_runs_and_models_still_load(three, tmp_path, tiny_preset, stub_samples):
    """One update moves the separate critic's weights (it is in D's optimizer). A run written by
    the version before the removals (config.json and checkpoint with real_fake / genre_scale /
    cycle_notes at the behaviour that is left, the loss weights as lambdas; model.json of
    kind_version 1) resumes on the command line, and so does one written before --critic,
    --conditioning, --pitch-plane, --melody-lock, --keep and --harmony existed: a setting a saved
    run lacks takes the default of then (shared, scale-shift, off, 0), not today's recipe."""
    from click.testing import CliRunner

    from cli.main import main
    from midigenre.config import DEFAULTS_BEFORE
    from midigenre.train import run_settings

    run = tmp_path / "run"
    cfg = MultiGenreConfig(preset=tiny_preset, epochs=1, batch_size=6, sample_phrases=1, critic="adversarial")
    task = MultiGenreTask(sources(three), run, cfg)
    before = [p.detach().clone() for p in task.model.C.parameters()]
    task.train_step(task.batches(0)[0])
    assert any(not torch.equal(a, b) for a, b in zip(before, task.model.C.parameters()))

    then = {**DEFAULTS_BEFORE, "preset": tiny_preset, "epochs": 1, "batch_size": 6, "sample_phrases": 1}
    specs = [x for name, p in zip(("low", "high", "mid"), three) for x in ("--genre", f"{name}={p}")]
    later = ("critic", "conditioning", "pitch_plane", "melody_lock", "keep", "harmony")
    for name, missing in (("old", ()), ("older", later)):
        old = tmp_path / name
        MultiGenreTask(sources(three), old, MultiGenreConfig(**then)).fit()

        def as_written(train):
            train = {k: v for k, v in train.items() if k not in missing}
            train["lambdas"] = train.pop("weights")
            return train if missing else {**train, "real_fake": "shared", "genre_scale": {}, "cycle_notes": False}

        for file in ("config.json", "model.json"):
            d = json.loads((old / file).read_text())
            d["train"] = as_written(d["train"])
            if missing:
                d.pop("critic", None)
            (old / file).write_text(json.dumps(d))
        _as_version_1(old)
        ck = torch.load(old / "checkpoint.pt", weights_only=False)
        ck["meta"]["config"] = as_written(ck["meta"]["config"])
        torch.save(ck, old / "checkpoint.pt")
        model = TransferModel.load(old)
        assert model.net.critic == "shared" and hasattr(model.net.G, "genre_shift") and not model.melody_lock
        r = CliRunner().invoke(main, ["midi", "train", *map(str, specs), "--out", str(old), "--epochs", "2", "--resume"],
                               catch_exceptions=False)
        assert r.exit_code == 0, r.output
        assert len((old / "log.csv").read_text().splitlines()) == 3
        saved = json.loads((old / "model.json").read_text())
        assert saved["kind_version"] == 2 and saved["config"]["conditioning"] == "scale-shift"
        assert MultiGenreConfig.from_dict(saved["train"]) == MultiGenreConfig(**{**then, "epochs": 2})
    (tmp_path / "old.yaml").write_text("real_fake: shared\ncycle_notes: false\ngenre_scale: {}\nlambdas: {g/cycle: 5}\n")
    got, _ = run_settings(tmp_path / "new", config_file=tmp_path / "old.yaml", kind="multi-genre")
    assert got == MultiGenreConfig(weights={"g/cycle": 5})


def test_genre_evidence_measures_note_lengths_and_registers():
    """benchmarks/genre_evidence.py: each note cell gets its note's length; a phrase's cells and the
    classifier's evidence are split by register band and note length, each set summing to 1."""
    import importlib.util

    from midigenre.classifier import Classifier, GenreClassifier

    spec = importlib.util.spec_from_file_location("genre_evidence", REPO / "benchmarks" / "genre_evidence.py")
    ge = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(ge)
    x = np.zeros((2, 64, 84), bool)
    x[0, 0:20, 10] = True    # a 20-step note at MIDI 34 (below C3)
    x[0, 30:34, 10] = True   # then a 4-step one on the same pitch
    x[1, 5:13, 50] = True    # an 8-step note at MIDI 74 (C5 and up)
    lengths = ge.run_lengths(x)
    assert (lengths[0, 0:20, 10] == 20).all() and (lengths[0, 30:34, 10] == 4).all() and (lengths[1, 5:13, 50] == 8).all()
    assert lengths[~x].sum() == 0
    torch.manual_seed(0)
    clf = Classifier(GenreClassifier(2, (8, 8, 8, 8)).eval(), ["a", "b"], RollSettings().hash(), {}, torch.device("cpu"))
    r = ge.evidence(clf, x.astype(np.float32), "a", lowest_pitch=24)
    assert r["cells below C3"] == pytest.approx(24 / 32) and r["cells C5 and up"] == pytest.approx(8 / 32)
    assert r["cells a bar or longer"] == pytest.approx(20 / 32) and r["cells under ½ bar"] == pytest.approx(4 / 32)
    for kind in ("cells", "evidence"):
        assert sum(r[f"{kind} {label}"] for label, *_ in ge.BANDS) == pytest.approx(1.0, abs=1e-6)


def test_choice_takes_each_target_from_any_training_and_adds_up_their_time(tmp_path):
    """midigenre.choose.combine_choice: per target genre, the candidate with the most directions
    into it that meet the target on the validation songs, from any training of the same split; it
    adds up the time of each training up to the latest epoch taken from it (trainings.json)."""
    import csv as csv_

    from midigenre.choose import Candidate, combine_choice
    from midigenre.stargan import save_multi_genre

    roll, genres = RollSettings().to_dict(), ["low", "mid", "high"]
    candidates = []
    # two trainings (different settings), two epochs each, scored on the validation songs
    for run, pitch_plane in (("a", False), ("b", True)):
        cfg = MultiGenreModelConfig(**TINY_MODEL, conditioning="scale", pitch_plane=pitch_plane)
        (tmp_path / run).mkdir()
        with open(tmp_path / run / "log.csv", "w", newline="") as fh:
            w = csv_.writer(fh)
            w.writerow(["epoch", "seconds"])
            w.writerows([[1, 60.0], [2, 120.0], [3, 600.0]])
        for epoch in (1, 2):
            folder = tmp_path / run / "epochs" / f"epoch_00{epoch}"
            torch.manual_seed(epoch)
            save_multi_genre(folder, MultiGenreGAN(cfg, 3, critic="adversarial"), genres=genres, roll_settings=roll,
                             genre_settings={g: roll for g in genres}, epochs_done=epoch,
                             train={"run": run, "pitch_plane": pitch_plane})
            (folder / "split.json").write_text('{"songs": 1}')
            # training a meets the target into low (after epoch 2) and mid (epoch 1); b into high (epoch 1)
            good = {("a", 2): "low", ("a", 1): "mid", ("b", 1): "high"}.get((run, epoch))
            directions = [{"source": s, "target": t, "grid": _grid({0.5: (0.9 if t == good else 0.1, 0.5)})}
                          for s in genres for t in genres if s != t]
            candidates.append(Candidate(folder, tmp_path / run, epoch, directions))
    choice = combine_choice(candidates, genres, tmp_path / "combined")
    meta = json.loads((tmp_path / "combined" / "model.json").read_text())
    picked = {g["genre"]: (Path(g["from"]).parent.parent.name, g["epochs_done"]) for g in meta["per_target_generators"]}
    assert picked == {"low": ("a", 2), "mid": ("a", 1), "high": ("b", 1)}
    assert [g["config"]["pitch_plane"] for g in meta["per_target_generators"]] == [False, False, True]
    trainings = json.loads((tmp_path / "combined" / "trainings.json").read_text())
    assert sorted((Path(t["model"]).parent.parent.name, t["epochs"], t["seconds"]) for t in trainings) == [
        ("a", 2, 180.0), ("b", 1, 60.0)]
    assert not (tmp_path / "combined" / "log.csv").exists() and "4.0 min of training" in "\n".join(choice.lines())
    assert TransferModel.load(tmp_path / "combined").transfer_phrases(np.zeros((1, 64, 84), bool), "high")[0].shape == (1, 64, 84)


def test_training_leaves_the_callers_random_state_alone(three, tmp_path, tiny_preset, stub_samples):
    from tests.test_random_state import draws, leaves_the_callers_generators_alone

    cfg = MultiGenreConfig(preset=tiny_preset, epochs=1, batch_size=6, seed=5)
    tasks = []
    leaves_the_callers_generators_alone(lambda: tasks.append(MultiGenreTask(sources(three), tmp_path / "one", cfg))
                                        or tasks[0].fit())
    again = MultiGenreTask(sources(three), tmp_path / "two", cfg)
    draws()  # the caller draws between building and fitting: the run is the same
    again.fit()
    for x, y in zip(tasks[0].model.state_dict().values(), again.model.state_dict().values()):
        assert torch.equal(x, y)

