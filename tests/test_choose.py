"""The pass marks of midigenre.choose that need no model: the pair model's and keeping the song's."""

from __future__ import annotations

import inspect
from pathlib import Path

import pytest

from midigenre import choose


def _pair(name, s_ab, s_ba, s_tot, ti_ab, ti_ba) -> dict:
    """A measured pair model jazz ↔ classical as the pass mark reads it."""
    return {"name": name, "S jazz→classical[reference]": s_ab, "S classical→jazz[reference]": s_ba,
            "S_tot[reference]": s_tot, "transposition_invariant jazz→classical": ti_ab,
            "transposition_invariant classical→jazz": ti_ba}


def test_pair_pass_mark_ranks_models_that_meet_every_target_first():
    meets = _pair("meets", 0.6, 0.55, 0.72, 0.9, 1.0)
    stronger = _pair("stronger but changes too much", 0.95, 0.9, 0.95, 1.3, 0.8)
    close = _pair("close", 0.5, 0.45, 0.69, 1.0, 1.05)
    assert choose.pair_shortfall(meets, "jazz", "classical") == 0.0
    assert choose.pair_shortfall(stronger, "jazz", "classical") == pytest.approx(0.3)
    assert choose.pair_shortfall(close, "jazz", "classical") == pytest.approx(0.05 + 0.01 + 0.05)
    assert choose.best_pair([stronger, close, meets], "jazz", "classical")["name"] == "meets"
    assert choose.best_pair([stronger, close], "jazz", "classical")["name"] == "close"  # the smaller shortfall
    # each direction on its own: S less the content change above 1.0
    picks = choose.best_per_direction([meets, stronger, close], "jazz", "classical")
    assert picks["ab"]["name"] == "stronger but changes too much" and picks["ba"]["name"] == "stronger but changes too much"
    assert choose.pair_direction_key(stronger, "jazz", "classical") == pytest.approx(0.95 - 0.3)


def _song_row(share, edit, harmony, accompaniment, top, onsets, threshold=0.5) -> dict:
    return {"judges": {"ref": {"share": share, "random_edit": edit}}, "harmony": harmony,
            "harmony_accompaniment": accompaniment, "melody_top": top, "onsets_ratio": onsets, "threshold": threshold}


def test_song_pass_mark_and_the_row_a_choice_keeps():
    ok = _song_row(0.7, 0.3, 0.85, 0.4, 1.0, 1.2, threshold=0.4)
    assert choose.song_passes(ok, "ref") == {"share": True, "harmony": True, "melody": True, "onsets": True, "all": True}
    edit_as_good = _song_row(0.7, 0.5, 0.85, 0.4, 1.0, 1.2)  # a random edit moves nearly as far
    assert choose.song_passes(edit_as_good, "ref")["share"] is False
    too_busy = _song_row(0.9, 0.3, 0.9, 0.4, 1.0, 2.5)
    assert choose.song_passes(too_busy, "ref")["onsets"] is False and choose.song_margin(too_busy, "ref") < 0
    assert choose.song_margin(ok, "ref") > 0
    wider = _song_row(0.9, 0.3, 0.95, 0.4, 1.0, 1.0, threshold=0.6)
    assert choose.best_song_row([too_busy, ok, wider, edit_as_good], "ref")["threshold"] == 0.6
    assert choose.best_song_row([too_busy, edit_as_good], "ref") is edit_as_good  # fewer targets missed


def test_choices_are_silent_unless_told_where_to_say():
    for fn in (choose.choose_model, choose.choose_song_model):
        assert inspect.signature(fn).parameters["say"].default is None


def test_a_pair_run_is_chosen_by_keeping_the_song(caches, tmp_path, tiny_preset):
    """genre midi choose --keep-the-song takes a pair's kept epochs too: per direction its best
    epoch, threshold and keep-source on whole validation songs, into one pair model."""
    import json

    from click.testing import CliRunner

    from cli.main import main
    from midigenre.train import CycleGANTask, GenreSource, TrainConfig
    from midigenre.transfer import GenreTransfer

    run = tmp_path / "pair"
    cfg = TrainConfig(preset=tiny_preset, epochs=1, batch_size=4, sample_phrases=1, melody_lock=True, keep_epochs=True,
                      valid_fraction=0.3)
    CycleGANTask(GenreSource.parse(caches[0]), GenreSource.parse(caches[1]), run, cfg, device="cpu").fit()
    low, high = caches[0].parent / "low", caches[0].parent / "high"
    r = CliRunner().invoke(main, ["midi", "choose", str(run), "--keep-the-song", "--data", str(low), "--data", str(high),
                                  "--songs", "2", "--out", str(tmp_path / "chosen")], catch_exceptions=False)
    assert r.exit_code == 0, r.output
    choice = json.loads((tmp_path / "chosen" / "choice.json").read_text())
    assert sorted(choice["chosen"]) == ["high→low", "low→high"]
    model = GenreTransfer.load(tmp_path / "chosen" / "model")
    assert model.kind == "cyclegan" and model.melody_lock
    meta = json.loads((tmp_path / "chosen" / "model" / "model.json").read_text())
    for d, key in (("ab", "low→high"), ("ba", "high→low")):
        assert meta["thresholds"][d] == choice["chosen"][key]["threshold"]
        assert Path(meta["generators"][d]["from"]).name == Path(choice["chosen"][key]["candidate"]).name


def test_train_choose_of_a_melody_locked_model_from_folders_keeps_the_song(caches, tmp_path, tiny_preset):
    """genre midi train --choose: a melody-locked multi-genre run whose genres are all folders of
    songs is chosen by the song targets on whole validation songs (as choose --keep-the-song)."""
    import json

    from click.testing import CliRunner

    from cli.main import main
    from midigenre.transfer import GenreTransfer

    specs = [x for name in ("low", "high") for x in ("--genre", f"{name}={caches[0].parent / name}")]
    common = ["--preset", tiny_preset, "--batch-size", "6", "--sample-phrases", "1", "--valid-fraction", "0.3",
              "--epochs", "1", "--keep-epochs", "--choose"]
    r = CliRunner().invoke(main, ["midi", "train", *specs, *common, "--out", str(tmp_path / "run")],
                           catch_exceptions=False)
    assert r.exit_code == 0, r.output
    assert "on whole validation songs" in r.output and "chosen model:" in r.output
    choice = json.loads((tmp_path / "run" / "chosen" / "choice.json").read_text())
    assert sorted(choice["chosen"]) == ["high→low", "low→high"]
    assert GenreTransfer.load(tmp_path / "run" / "chosen" / "model").melody_lock
