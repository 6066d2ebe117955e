import csv
import itertools
import json

import numpy as np
import pytest
import torch
from torch.nn import functional as F

from midigenre import models
from midigenre.models import Discriminator, Generator, ModelConfig, SelfAttention, preset
from midigenre.prepare import prepare
from midigenre.cyclegan import CycleGAN, ImagePool, _noisy, discriminator_losses, generator_losses, weighted
from midigenre.train import CycleGANTask, GenreSource, TrainConfig
from midigenre.transfer import TransferModel, transfer_midi
from shared.errors import GenreError
from shared.training import linear_decay
from tests.conftest import REPO, TINY_MODEL, make_cache, make_midi, random_grid_notes

TINY = ModelConfig(**TINY_MODEL)


@pytest.fixture
def stub_samples(monkeypatch):
    """Per-epoch sample pictures as empty files (the picture itself is drawn, and checked, by
    test_run_folder_and_model_round_trip and test_cli_train_resume_and_transfer): matplotlib
    takes ~1 s a picture, more than a tiny epoch."""
    drawn = []

    def save_samples(self, path, epoch):
        path.write_bytes(b"")
        drawn.append(epoch)

    monkeypatch.setattr(CycleGANTask, "save_samples", save_samples)
    return drawn


@pytest.mark.parametrize("sn, sa", list(itertools.product([False, True], [False, True])))
def test_shapes_for_every_option(sn, sa):
    cfg = ModelConfig(g_channels=8, n_res_blocks=2, d_channels=8, spectral_norm=sn, self_attention=sa)
    g, d = Generator(cfg), Discriminator(cfg)
    x = torch.rand(3, 1, 64, 84)
    y = g(x)
    assert y.shape == (3, 1, 64, 84) and 0 <= y.min() and y.max() <= 1
    assert d(x).shape == (3, 1, 16, 21)
    convs = [m for m in g.modules() if isinstance(m, torch.nn.Conv2d)] + [m for m in d.modules() if isinstance(m, torch.nn.Conv2d)]
    assert all(hasattr(m, "parametrizations") == sn for m in convs)  # every convolution, and only with SN
    assert not any(hasattr(m, "parametrizations") for m in g.modules() if isinstance(m, torch.nn.ConvTranspose2d))
    n_sa_g = sum(isinstance(m, SelfAttention) for m in g.modules())
    n_sa_d = sum(isinstance(m, SelfAttention) for m in d.modules())
    assert (n_sa_g, n_sa_d) == ((2, 2) if sa else (0, 0))


def test_pitch_plane_tells_g_and_d_the_register():
    """Without the pitch plane an empty roll gives G the same output at every pitch away from the
    edges (a convolution knows only where the edges are); with it, the output depends on the pitch.
    D's genre evidence for one phrase moved by an octave changes with the plane, not without."""
    torch.manual_seed(0)
    empty = torch.zeros(1, 1, 64, 84)
    with torch.no_grad():
        flat = Generator(ModelConfig(**TINY_MODEL)).eval()(empty)[0, 0, 32, 30:54]
        planed = Generator(ModelConfig(**TINY_MODEL, pitch_plane=True)).eval()(empty)[0, 0, 32, 30:54]
    assert torch.allclose(flat, flat[0].expand_as(flat), atol=1e-6)
    assert float(planed.max() - planed.min()) > 1e-4
    x = torch.zeros(1, 1, 64, 84)
    x[0, 0, 8:40, 36:40] = 1.0
    up = torch.roll(x, 12, dims=-1)
    for plane in (False, True):
        torch.manual_seed(1)
        d = Discriminator(ModelConfig(**TINY_MODEL, pitch_plane=plane)).eval()
        with torch.no_grad():
            a, b = d(x), d(up)
        # a patch discriminator without the plane is shift-equivariant away from the edges: same
        # scores, three patches higher (stride 4); with the plane the scores change
        same = torch.allclose(torch.roll(a, 3, dims=-1)[..., 6:15], b[..., 6:15], atol=1e-5)
        assert same is not plane
        assert d.net[0].in_channels == 1 + plane


def test_paper_preset_matches_the_reference():
    cfg = preset("paper")
    g = Generator(cfg)
    feats = []
    hooks = [m.register_forward_hook(lambda m, i, o: feats.append(tuple(o.shape[1:]))) for m in g.net]
    g(torch.rand(1, 1, 64, 84))
    for h in hooks:
        h.remove()
    assert (256, 16, 21) in feats and (128, 32, 42) in feats and (64, 64, 84) in feats
    assert sum(isinstance(m, models.ResidualBlock) for m in g.modules()) == 10
    assert all(m.bias is None for m in g.modules() if isinstance(m, (torch.nn.Conv2d, torch.nn.ConvTranspose2d)))
    d = Discriminator(cfg)
    assert [m.out_channels for m in d.modules() if isinstance(m, torch.nn.Conv2d)] == [64, 256, 1]
    assert [m.kernel_size for m in d.modules() if isinstance(m, torch.nn.Conv2d)] == [(7, 7)] * 3
    w = torch.cat([m.weight.flatten() for m in g.modules() if isinstance(m, torch.nn.Conv2d)])
    assert abs(w.std().item() - 0.02) < 0.002  # N(0, 0.02)
    small = preset("small")
    assert small.g_channels < cfg.g_channels and small.n_res_blocks < cfg.n_res_blocks
    with pytest.raises(GenreError):
        preset("huge")


def test_self_attention_starts_as_identity():
    sa = SelfAttention(16)
    x = torch.randn(2, 16, 4, 5)
    assert torch.equal(sa(x), x)
    sa.gamma.data.fill_(1.0)
    assert not torch.allclose(sa(x), x)


@pytest.mark.parametrize("variant", ["base", "partial", "full"])
def test_losses_and_gradient_flow(variant):
    torch.manual_seed(0)
    m = CycleGAN(TINY, variant)
    assert len(m.discriminators()) == (2 if variant == "base" else 4)
    a, b, mixed = torch.rand(2, 1, 64, 84).round(), torch.rand(2, 1, 64, 84).round(), torch.rand(2, 1, 64, 84).round()
    g_losses, fake_a, fake_b = generator_losses(m, a, b, sigma_d=1.0)
    assert set(g_losses) == {"g/adv_ab", "g/adv_ba", "g/cycle"}
    weighted(g_losses, TrainConfig().loss_weights).backward()
    for g in m.generators():
        assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in g.parameters() if p.requires_grad and p.dim() > 1)
    m.zero_grad()
    d_losses = discriminator_losses(m, a, b, fake_a.detach(), fake_b.detach(), mixed, sigma_d=1.0)
    assert set(d_losses) == ({"d/a", "d/b"} | ({"d/a_all", "d/b_all"} if variant != "base" else set()))
    weighted(d_losses, TrainConfig().loss_weights).backward()
    for d in m.discriminators():
        assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in d.parameters() if p.dim() > 1)
    assert all(p.grad is None for g in m.generators() for p in g.parameters())  # fakes were detached


def test_weights_weight_the_named_losses():
    """One name for the loss weights in both trainers: ``weights`` (a setting; ``lambdas`` in files
    of earlier versions, still read) and ``loss_weights`` (every loss's weight)."""
    losses = {"g/adv_ab": torch.tensor(2.0), "g/cycle": torch.tensor(3.0)}
    assert weighted(losses, {"g/adv_ab": 1.0, "g/cycle": 10.0}).item() == 32.0
    assert weighted(losses, {"g/adv_ab": 0.5, "g/cycle": 0.0}).item() == 1.0
    with pytest.raises(GenreError):
        TrainConfig(weights={"g/typo": 1.0})
    assert TrainConfig.from_dict({"weights": {"g/cycle": 5.0}}).weights["g/adv_ab"] == 1.0
    old = TrainConfig.from_saved({"lambdas": {"g/cycle": 5.0}})  # a run or model.json of an earlier version
    assert old == TrainConfig(weights={"g/cycle": 5.0}) and "lambdas" not in old.to_dict()
    cfg = TrainConfig(identity=2.0, genre_loss=1.5)
    assert cfg.loss_weights == {**cfg.weights, "g/identity": 2.0, "g/genre": 1.5, "g/content": 0.0, "g/keep": 0.0,
                                "g/add": 0.0, "g/harmony": 0.0}


def test_discriminator_noise_is_half_normal_with_sigma_d():
    torch.manual_seed(0)
    x = torch.zeros(200_000)
    for sigma in (0.5, 1.0, 2.0):
        n = _noisy(x, sigma)
        assert n.min() >= 0  # |N(0, σ)|: never below the input
        assert n.mean().item() == pytest.approx(sigma * np.sqrt(2 / np.pi), rel=0.02)
        assert n.std().item() == pytest.approx(sigma * np.sqrt(1 - 2 / np.pi), rel=0.02)
    assert _noisy(x, 0.0) is x
    # every discriminator input gets it: D sees real phrases lifted, fakes too
    m = CycleGAN(TINY, "partial")
    seen = []
    for d in m.discriminators():
        d.register_forward_pre_hook(lambda mod, inp: seen.append(inp[0].detach()))
    real = torch.zeros(2, 1, 64, 84)
    discriminator_losses(m, real, real, real, real, real, sigma_d=1.0)
    assert len(seen) == 8 and all(t.min() >= 0 and t.mean() > 0.5 for t in seen)
    seen.clear()
    discriminator_losses(m, real, real, real, real, real, sigma_d=0.0)
    assert all(torch.equal(t, real) for t in seen)


def test_learning_rate_is_constant_then_decays_linearly_to_zero(small_caches, tmp_path, tiny_preset, stub_samples):
    """The trainer applies linear_decay (its values: tests/test_training.py) to both optimisers,
    for whole epochs, and logs it: 3 epochs of 2 steps, decay after the first."""
    a, b = GenreSource.parse(small_caches[0]), GenreSource.parse(small_caches[1])
    cfg = TrainConfig(preset=tiny_preset, epochs=3, decay_after=1, batch_size=3, lr=1e-3)
    t = CycleGANTask(a, b, tmp_path / "run", cfg)
    used = []
    t.fit(progress=lambda stage, step, n, note: used.append((t.opt_g.param_groups[0]["lr"], t.opt_d.param_groups[0]["lr"])))
    expect = [1e-3, 1e-3, 5e-4]  # constant through epoch decay_after + 1, then linearly to 0 at epoch 3 + 1
    assert [linear_decay(1e-3, 3, 1)(e) for e in range(3)] == pytest.approx(expect)
    with open(tmp_path / "run" / "log.csv") as fh:
        assert [float(r["lr"]) for r in csv.DictReader(fh)] == pytest.approx(expect)
    per_epoch = t.steps_per_epoch()
    assert per_epoch == 2 and len(used) == 3 * per_epoch
    assert all(g == d for g, d in used)  # G and D optimisers both follow it, the whole epoch
    assert [g for g, _ in used] == pytest.approx([lr for lr in expect for _ in range(per_epoch)])


def test_image_pool_returns_history():
    torch.manual_seed(0)
    pool = ImagePool(4)
    first = torch.arange(4.0).view(4, 1, 1, 1)
    assert torch.equal(pool(first), first)
    out = pool(torch.full((8, 1, 1, 1), 9.0))
    assert set(out.flatten().tolist()) <= {0.0, 1.0, 2.0, 3.0, 9.0} and (out != 9).any()
    assert torch.equal(ImagePool(0)(first), first)


def test_exact_resume(small_caches, tmp_path, tiny_preset, stub_samples):
    a, b = GenreSource.parse(small_caches[0]), GenreSource.parse(small_caches[1])
    cfg = TrainConfig(preset=tiny_preset, epochs=2, decay_after=1, batch_size=2, pool_size=3, seed=5, keep_epochs=True)
    straight = CycleGANTask(a, b, tmp_path / "straight", cfg)
    assert straight.steps_per_epoch() == 3  # the stop below is inside an epoch, with the image pool in use
    straight.fit()

    interrupted = CycleGANTask(a, b, tmp_path / "resumed", cfg)
    calls = {"n": 0}

    def stop(stage, step, n_steps, note):
        calls["n"] += 1
        if calls["n"] == n_steps + 2:  # two steps into the second epoch
            assert stage == "epoch 2/2" and "g/cycle" in note
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        interrupted.fit(progress=stop)
    resumed = CycleGANTask(a, b, tmp_path / "resumed", cfg, split=tmp_path / "resumed" / "split.json")
    resumed.resume()
    assert (resumed.epoch, resumed.step_in_epoch) == (1, 2)
    resumed.fit()
    for (k, v), (k2, v2) in zip(straight.model.state_dict().items(), resumed.model.state_dict().items()):
        assert k == k2 and torch.equal(v, v2), k
    log = (tmp_path / "resumed" / "log.csv").read_text().splitlines()
    assert len(log) == 3 and log[0].startswith("epoch,lr")
    assert sorted(p.name for p in (tmp_path / "resumed" / "samples").iterdir()) == ["epoch_001.png", "epoch_002.png"]
    # --keep-epochs: every epoch's model, loadable, the last one the run's own; nothing half-written
    epochs = tmp_path / "resumed" / "epochs"
    assert sorted(p.name for p in epochs.iterdir()) == ["epoch_001", "epoch_002"]
    assert json.loads((epochs / "epoch_001" / "model.json").read_text())["epochs_done"] == 1
    assert (epochs / "epoch_002" / "model.safetensors").read_bytes() == (tmp_path / "resumed" / "model.safetensors").read_bytes()
    assert (epochs / "epoch_001" / "model.safetensors").read_bytes() != (epochs / "epoch_002" / "model.safetensors").read_bytes()
    assert TransferModel.load(epochs / "epoch_001").genres == {"a": "low", "b": "high"}


def test_run_folder_and_model_round_trip(small_caches, tmp_path, tiny_preset):
    a, b = GenreSource.parse(small_caches[0]), GenreSource.parse(small_caches[1])
    t = CycleGANTask(a, b, tmp_path / "run", TrainConfig(preset=tiny_preset, epochs=1, batch_size=3, spectral_norm=True,
                                                         sample_phrases=1))
    t.fit()
    run = tmp_path / "run"
    assert {p.name for p in run.iterdir()} >= {"config.json", "split.json", "checkpoint.pt", "model.safetensors", "model.json", "log.csv", "samples"}
    assert (run / "samples" / "epoch_001.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    meta = json.loads((run / "model.json").read_text())
    assert meta["kind"] == "cyclegan" and meta["genres"] == {"a": "low", "b": "high"} and meta["config"]["spectral_norm"]
    assert meta["package_version"] and meta["torch_version"] and meta["epochs_done"] == 1
    model = TransferModel.load(run)
    x = torch.rand(3, 1, 64, 84).round()
    t.model.eval()
    with torch.no_grad():
        assert torch.equal(model.g_ab(x), t.model.G_AB(x)) and torch.equal(model.g_ba(x), t.model.G_BA(x))


def test_keep_source_keeps_every_source_note_in_the_directions_it_is_on(tiny_run):
    model = TransferModel.load(tiny_run)
    assert model.keep_source == {"ab": False, "ba": False}  # off unless the model was saved with it
    x = (np.random.default_rng(3).random((5, 64, 84)) < 0.05)
    plain, plain_back = model.transfer_phrases(x, "high", cycle=True)
    model.set_keep_source(True)
    kept, kept_back = model.transfer_phrases(x, "high", cycle=True)
    assert (kept >= x).all() and (kept >= plain).all() and (kept_back >= kept).all()
    assert np.array_equal(kept, plain | x)  # G's notes OR the source's
    # saved per direction: a → b keeps, b → a does not
    model.meta["keep_source"] = {"ab": True, "ba": False}
    model.set_keep_source(None)
    assert np.array_equal(model.transfer_phrases(x, "high")[0], kept)
    assert np.array_equal(model.transfer_phrases(x, "low")[0], TransferModel.load(tiny_run).transfer_phrases(x, "low")[0])
    model.set_keep_source(False)
    assert np.array_equal(model.transfer_phrases(x, "high", cycle=True)[1], plain_back)


def test_whole_song_is_stitched_in_order_with_the_tail(tiny_run, tmp_path):
    model = TransferModel.load(tiny_run)
    rng = np.random.default_rng(9)
    # 9 bars and a half: 2 full phrases, then an empty phrase, then a tail of 1.5 bars with notes
    notes = random_grid_notes(rng, 8, n=50, lo=30, hi=60) + [(192 * 120, 200 * 120, 40), (200 * 120, 232 * 120, 45)]
    song = tmp_path / "song.mid"
    make_midi(song, notes)
    res = transfer_midi(song, model, "high", cycle=True)
    assert res.source.shape == res.transferred.shape == res.cycled.shape == (232, 84)
    assert (res.source_genre, res.target_genre) == ("low", "high")
    phrases = np.zeros((4, 64, 84), dtype=bool)
    phrases.reshape(-1, 84)[:232] = res.source
    expect, back = model.transfer_phrases(phrases, "high", cycle=True)
    np.testing.assert_array_equal(res.transferred[:128], expect[:2].reshape(-1, 84))
    assert not res.transferred[128:192].any()  # a silent phrase stays silent
    np.testing.assert_array_equal(res.transferred[192:], expect[3][:40])  # the padded tail is transferred, then cut
    pm = res.midi()
    assert abs(pm.get_end_time() - 232 * 60 / 120 / 4) < 1e-3  # the song's length, trailing rest included
    from midigenre.pianoroll import read_song

    np.testing.assert_array_equal(read_song(_bytes(res.midi("source"))).roll, res.source)  # tail and rests kept
    with pytest.raises(GenreError, match="low and high"):
        transfer_midi(song, model, "jazz")


def _bytes(pm):
    import io

    buf = io.BytesIO()
    pm.write(buf)
    return buf.getvalue()


def test_bad_training_input(caches, tmp_path, tiny_preset):
    a, b = GenreSource.parse(caches[0]), GenreSource.parse(caches[1])
    with pytest.raises(GenreError, match="at least one batch"):
        CycleGANTask(a, b, tmp_path / "r", TrainConfig(preset=tiny_preset, batch_size=64))
    with pytest.raises(GenreError, match="same data"):
        CycleGANTask(a, a, tmp_path / "r", TrainConfig(preset=tiny_preset))
    with pytest.raises(GenreError, match="third genre"):
        CycleGANTask(a, b, tmp_path / "r", TrainConfig(preset=tiny_preset, variant="full"))
    with pytest.raises(GenreError, match="no genre 'jazz'"):
        GenreSource.parse(f"{caches[0]}:jazz")
    other = tmp_path / "other.h5"
    from midigenre.pianoroll import RollSettings

    prepare([caches[1].parent / "high"], "high", other, RollSettings(meter="lenient"))
    with pytest.raises(GenreError, match="different settings"):
        CycleGANTask(a, GenreSource.parse(other), tmp_path / "r", TrainConfig(preset=tiny_preset))
    with pytest.raises(GenreError, match="unknown variant"):
        TrainConfig(variant="half")


def test_partial_and_full_variants_train(small_caches, tmp_path, tiny_preset, stub_samples):
    a, b = GenreSource.parse(small_caches[0]), GenreSource.parse(small_caches[1])
    third = make_cache(tmp_path / "mid", "mid", 4, 45, 75, 3, tmp_path / "mid.h5")
    row = CycleGANTask(a, b, tmp_path / "p", TrainConfig(preset=tiny_preset, epochs=1, batch_size=3, variant="partial")).fit()
    assert "d/a_all" in row and "d/b_all" in row
    t = CycleGANTask(a, b, tmp_path / "f", TrainConfig(preset=tiny_preset, epochs=1, batch_size=3, variant="full"),
                mixed=GenreSource.parse(third))
    assert len(t.mixed) == 3 and t._mixed_batch(0, 0).shape == (3, 1, 64, 84)
    assert np.isfinite(t.fit()["d/a_all"])


def test_cli_train_resume_and_transfer(small_caches, tmp_path, tiny_preset, stub_samples):
    from click.testing import CliRunner

    from cli.main import main

    run = tmp_path / "run"

    def cli(*args):
        return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)

    cfg = tmp_path / "cfg.yaml"
    cfg.write_text(f"batch_size: 3\nsample_phrases: 1\npreset: {tiny_preset}\n")
    r = cli("midi", "train", "--a", small_caches[0], "--b", small_caches[1], "--out", run, "--epochs", "1", "--config", cfg)
    assert r.exit_code == 0, r.output
    assert json.loads((run / "config.json").read_text())["train"]["batch_size"] == 3
    r = cli("midi", "train", "--a", small_caches[0], "--b", small_caches[1], "--out", run, "--epochs", "1")
    assert r.exit_code == 1 and "--resume" in r.output
    r = cli("midi", "train", "--a", small_caches[0], "--b", small_caches[1], "--out", run, "--epochs", "2", "--resume")
    assert r.exit_code == 0, r.output
    assert len((run / "log.csv").read_text().splitlines()) == 3

    song = small_caches[0].parent / "low" / "low00.mid"
    out = tmp_path / "out.mid"
    r = cli("midi", "transfer", song, "--model", run, "--to", "high", "-o", out, "--cycle", "--png")
    assert r.exit_code == 0, r.output
    assert out.exists() and (tmp_path / "out.cycle.mid").exists() and (tmp_path / "out.png").exists()
    r = cli("midi", "transfer", song.parent, "--model", run, "--to", "high", "-o", tmp_path / "many")
    assert r.exit_code == 0 and len(list((tmp_path / "many").glob("*.high.mid"))) == 4
    waltz = tmp_path / "waltz.mid"
    make_midi(waltz, random_grid_notes(np.random.default_rng(0), 8), time_signatures=[(0, 3, 4)])
    r = cli("midi", "transfer", waltz, "--model", run, "--to", "high", "-o", tmp_path / "w.mid")
    assert r.exit_code == 1 and "not 4/4" in r.output and "--meter assume-4/4" in r.output
    r = cli("midi", "transfer", waltz, "--model", run, "--to", "high", "-o", tmp_path / "w.mid", "--meter", "assume-4/4")
    assert r.exit_code == 0
    r = cli("midi", "transfer", song, "--model", tmp_path, "--to", "high", "-o", out)
    assert r.exit_code == 1 and "not a model folder" in r.output
    r = cli("midi", "train", "--a", small_caches[0], "--b", f"{small_caches[1]}:jazz", "--out", tmp_path / "r2")
    assert r.exit_code == 1 and "no genre 'jazz'" in r.output


def test_config_values_are_typed():
    cfg = TrainConfig.from_dict({"lr": "2e-4", "epochs": "3", "weights": {"g/cycle": "5"}})
    assert cfg.lr == 2e-4 and cfg.epochs == 3 and cfg.weights["g/cycle"] == 5.0
    with pytest.raises(GenreError, match="lr must be a float"):
        TrainConfig.from_dict({"lr": "fast"})
    with pytest.raises(GenreError, match="true or false"):
        TrainConfig.from_dict({"spectral_norm": "yes"})
    with pytest.raises(GenreError, match="unknown training settings"):
        TrainConfig.from_dict({"learning_rate": 1})


def test_genre_critic_learns_on_real_phrases_and_judges_binarised_fakes():
    from midigenre.cyclegan import straight_through

    torch.manual_seed(0)
    m = CycleGAN(TINY, "base", genre_critic=True)
    assert m.C is not None and m.C in m.discriminators()
    a, b = torch.rand(2, 1, 64, 84).round(), torch.rand(2, 1, 64, 84).round()
    g_losses, fake_a, fake_b = generator_losses(m, a, b, sigma_d=0.0, identity=True, genre=True)
    assert set(g_losses) == {"g/adv_ab", "g/adv_ba", "g/cycle", "g/identity", "g/genre"}
    g_losses["g/genre"].backward()
    # the gradient reaches both generators through the straight-through binarisation
    assert all(g.net[0].weight.grad.abs().sum() > 0 for g in m.generators())
    # the critic sees notes, not probabilities: a faint 0.4 everywhere is silence to it
    seen = []
    m.C.register_forward_pre_hook(lambda mod, inp: seen.append(inp[0].detach()))
    faint = torch.full((1, 1, 64, 84), 0.4, requires_grad=True)
    m.C(straight_through(faint)).sum().backward()
    assert torch.equal(seen[-1], torch.zeros_like(faint)) and faint.grad.abs().sum() > 0
    m.zero_grad()
    d_losses = discriminator_losses(m, a, b, fake_a.detach(), fake_b.detach(), None, sigma_d=0.0)
    assert set(d_losses) == {"d/a", "d/b", "d/genre"}
    # the critic's own loss is the cross-entropy of real A as 0 and real B as 1
    la, lb = m.C(a), m.C(b)
    expected = F.binary_cross_entropy_with_logits(la, torch.zeros_like(la)) + F.binary_cross_entropy_with_logits(lb, torch.ones_like(lb))
    assert d_losses["d/genre"].item() == pytest.approx(expected.item(), rel=1e-5)
    d_losses["d/genre"].backward()
    assert all(g.net[0].weight.grad is None for g in m.generators())
    # off by default: the reference recipe has no critic and no genre loss
    assert CycleGAN(TINY).C is None and TrainConfig().genre_loss == 0.0


def test_genre_ba_scale_multiplies_the_b_to_a_genre_term_alone():
    from midigenre.cyclegan import _genre_ce

    torch.manual_seed(0)
    m = CycleGAN(TINY, genre_critic=True)
    a, b = torch.rand(2, 1, 64, 84).round(), torch.rand(2, 1, 64, 84).round()
    losses, fake_a, fake_b = generator_losses(m, a, b, sigma_d=0.0, genre=True, genre_ba_scale=3.0)
    ab = _genre_ce(m.C, (fake_b > 0.5).float(), 1.0).item()
    ba = _genre_ce(m.C, (fake_a > 0.5).float(), 0.0).item()
    assert ab != pytest.approx(ba)
    assert losses["g/genre"].item() == pytest.approx(ab + 3.0 * ba, rel=1e-5)
    assert generator_losses(m, a, b, sigma_d=0.0, genre=True)[0]["g/genre"].item() == pytest.approx(ab + ba, rel=1e-5)
    assert TrainConfig().genre_ba_scale == 1.0


def test_content_loss_is_the_distance_of_each_transfer_from_its_own_source():
    torch.manual_seed(0)
    m = CycleGAN(TINY)
    a, b = torch.rand(2, 1, 64, 84).round(), torch.rand(2, 1, 64, 84).round()
    losses, fake_a, fake_b = generator_losses(m, a, b, sigma_d=0.0, content=True)
    expected = (fake_b - a).abs().mean() + (fake_a - b).abs().mean()
    assert losses["g/content"].item() == pytest.approx(expected.item(), rel=1e-6)
    assert "g/content" not in generator_losses(m, a, b, sigma_d=0.0)[0] and TrainConfig().content == 0.0


def test_keep_and_add_losses_are_the_soft_removed_and_added_shares_of_the_content_change_metric():
    from midigenre.cyclegan import added_share, removed_share
    from midigenre.metrics import content_added, content_change, content_removed

    src = torch.zeros(2, 1, 64, 84)
    src[0, 0, :8, 40] = 1  # 8 notes …
    src[1, 0, :4, 50] = 1  # … and 4
    out = src.clone()
    out[0, 0, :2, 40] = 0  # drops 2 of 8
    out[1, 0, :4, 50] = 0.25  # keeps 4 notes at a quarter: 0.75 of 4 dropped
    out[:, 0, 20:, 60:] = 1  # added notes: free
    assert removed_share(src, out).item() == pytest.approx((2 / 8 + 0.75) / 2)
    # on notes it is the metric's "removed"; an empty source counts 0
    hard = (out > 0.5).float()
    expected = np.mean([content_removed(s[0].numpy().astype(bool), h[0].numpy().astype(bool)) for s, h in zip(src, hard)])
    assert removed_share(src, hard).item() == pytest.approx(expected)
    assert removed_share(torch.zeros(1, 1, 64, 84), torch.rand(1, 1, 64, 84)).item() == 0.0
    # added: 44 × 24 cells over 8 and 4 source notes; the quarter-kept notes add nothing
    assert added_share(src, out).item() == pytest.approx((44 * 24 / 8 + 44 * 24 / 4) / 2)
    expected = np.mean([content_added(s[0].numpy().astype(bool), h[0].numpy().astype(bool)) for s, h in zip(src, hard)])
    assert added_share(src, hard).item() == pytest.approx(expected)
    # both at weight 1 are the content-change metric itself
    expected = np.mean([content_change(s[0].numpy().astype(bool), h[0].numpy().astype(bool)) for s, h in zip(src, hard)])
    assert (added_share(src, hard) + removed_share(src, hard)).item() == pytest.approx(expected)
    torch.manual_seed(0)
    m = CycleGAN(TINY)
    a, b = torch.rand(2, 1, 64, 84).round(), torch.rand(2, 1, 64, 84).round()
    losses, fake_a, fake_b = generator_losses(m, a, b, sigma_d=0.0, keep=True, add=True)
    assert losses["g/keep"].item() == pytest.approx((removed_share(a, fake_b) + removed_share(b, fake_a)).item(), rel=1e-6)
    assert losses["g/add"].item() == pytest.approx((added_share(a, fake_b) + added_share(b, fake_a)).item(), rel=1e-6)
    plain = generator_losses(m, a, b, sigma_d=0.0)[0]
    assert "g/keep" not in plain and "g/add" not in plain and TrainConfig().keep == TrainConfig().add == 0.0


def test_keep_source_in_training_makes_those_transfers_keep_the_source_everywhere(small_caches, tmp_path, tiny_preset):
    torch.manual_seed(0)
    m = CycleGAN(TINY)
    a, b = torch.rand(2, 1, 64, 84).round(), torch.rand(2, 1, 64, 84).round()
    losses, fake_a, fake_b = generator_losses(m, a, b, sigma_d=0.0, identity=True, keep_source="ba")
    with torch.no_grad():
        assert torch.equal(fake_a, torch.maximum(m.G_BA(b), b)) and (fake_a >= b).all()  # b → a keeps b's notes
        assert torch.equal(fake_b, m.G_AB(a))  # a → b does not
        expected = (torch.maximum(m.G_BA(fake_b), fake_b) - a).abs().mean() + (m.G_AB(fake_a) - b).abs().mean()
        assert losses["g/cycle"].item() == pytest.approx(expected.item(), rel=1e-6)
        ident = (m.G_AB(b) - b).abs().mean() + (torch.maximum(m.G_BA(a), a) - a).abs().mean()
        assert losses["g/identity"].item() == pytest.approx(ident.item(), rel=1e-6)
    # the saved model keeps the source in that direction
    src = GenreSource.parse(small_caches[0]), GenreSource.parse(small_caches[1])
    CycleGANTask(*src, tmp_path / "run", TrainConfig(preset=tiny_preset, epochs=1, batch_size=3, sample_phrases=1,
                                                     keep_source="ba")).fit()
    assert TransferModel.load(tmp_path / "run").keep_source == {"ab": False, "ba": True}


def test_combine_generators_takes_each_direction_from_its_own_model(tmp_path):
    """The A → B generator of one model and the B → A generator of another form one transfer model;
    sources of other architectures or song splits are refused in one line."""
    from midigenre.models import Generators, combine_generators, save_generators
    from midigenre.pianoroll import RollSettings

    roll = RollSettings().to_dict()
    split = {"genres": {"low": {"train": ["s1"], "test": ["s2"]}}}

    def saved(name, seed, cfg=None, split=split):
        cfg = cfg or ModelConfig(g_channels=8, n_res_blocks=1, d_channels=8)
        torch.manual_seed(seed)
        g = Generators(cfg).eval()
        folder = save_generators(tmp_path / name, g.G_AB, g.G_BA, cfg, genres={"a": "low", "b": "high"},
                                 roll_settings=roll, train={"epochs": seed}, epochs_done=seed, metrics={})
        (tmp_path / name / "split.json").write_text(json.dumps(split))
        return folder

    one, two = saved("one", 1), saved("two", 2)
    meta = json.loads((two / "model.json").read_text())
    # as kind_version 1 wrote it: with the multi-genre fields the CycleGAN never used (any value)
    meta["kind_version"], meta["config"] = 1, {**meta["config"], "genre_shift": False, "genre_branches": True,
                                               "real_fake_per_genre": False}
    (two / "model.json").write_text(json.dumps(meta))
    combined = combine_generators(one, two, tmp_path / "both", thresholds={"ab": 0.4, "ba": 0.6})
    m, m1, m2 = (TransferModel.load(f) for f in (combined, one, two))
    x = np.random.default_rng(0).random((3, 64, 84)) > 0.9
    t = torch.from_numpy(x.astype(np.float32)).unsqueeze(1)
    with torch.no_grad():
        assert torch.equal(m.g_ab(t), m1.g_ab(t)) and torch.equal(m.g_ba(t), m2.g_ba(t))
        assert not torch.equal(m.g_ab(t), m2.g_ab(t))
    assert m.thresholds == {"ab": 0.4, "ba": 0.6}
    assert m.meta["generators"]["ab"]["epochs_done"] == 1 and m.meta["generators"]["ba"]["epochs_done"] == 2
    assert json.loads((combined / "split.json").read_text()) == split

    other_split = saved("three", 3, split={"genres": {"low": {"train": ["s2"], "test": ["s1"]}}})
    with pytest.raises(GenreError, match="different song splits") as e:
        combine_generators(one, other_split, tmp_path / "x")
    assert "\n" not in str(e.value)
    wider = saved("four", 4, cfg=ModelConfig(g_channels=16, n_res_blocks=1, d_channels=8))
    with pytest.raises(GenreError, match="differ in their config"):
        combine_generators(one, wider, tmp_path / "y")
    assert not (tmp_path / "x").exists() and not (tmp_path / "y").exists()


@pytest.mark.parametrize("name", ["jazz-classical-melody"])
def test_shipped_pairs_are_version_1_files_that_load(name):
    """The shipped pairs' model.json are kind_version 1, with the multi-genre fields the CycleGAN
    carried unused; they are read without them."""
    meta = json.loads((REPO / "data" / "models" / name / "model.json").read_text())
    assert meta["kind_version"] == 1 and meta["config"]["genre_shift"] is True
    model = TransferModel.load(name)
    assert model.meta["kind_version"] == 2 and "genre_shift" not in model.meta["config"]


def test_training_leaves_the_callers_random_state_alone(small_caches, tmp_path, tiny_preset, stub_samples):
    from tests.test_random_state import draws, leaves_the_callers_generators_alone

    a, b = GenreSource.parse(small_caches[0]), GenreSource.parse(small_caches[1])
    cfg = TrainConfig(preset=tiny_preset, epochs=1, batch_size=2, seed=5)
    tasks = []
    leaves_the_callers_generators_alone(lambda: tasks.append(CycleGANTask(a, b, tmp_path / "one", cfg)) or tasks[0].fit())
    again = CycleGANTask(a, b, tmp_path / "two", cfg)
    draws()  # the caller draws between building and fitting: the run is the same
    again.fit()
    for x, y in zip(tasks[0].model.state_dict().values(), again.model.state_dict().values()):
        assert torch.equal(x, y)
