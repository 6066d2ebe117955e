"""``genre model``: a model's kind, genres, settings, card and its songs by part of the split."""

from __future__ import annotations

import json

from click.testing import CliRunner

from cli.main import main
from shared.registry import shipped_model, shipped_model_names


def run(*args):
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


def test_lists_every_shipped_model_with_its_kind():
    r = run("model")
    assert r.exit_code == 0, r.output
    lines = r.output.splitlines()
    for name in shipped_model_names():
        kind = json.loads((shipped_model(name) / "model.json").read_text())["kind"]
        assert any(line.startswith(name) and kind in line for line in lines)
    for name in ("four-genres-melody", "jazz-classical-melody"):
        assert any(line.startswith(f"{name} ") and "melody-locked" in line for line in lines)
    assert not any(line.startswith("audio-rendered ") and "melody-locked" in line for line in lines)


def test_one_model_and_its_held_out_songs_are_the_split_s():
    r = run("model", "jazz-classical-melody")
    assert r.exit_code == 0, r.output
    split = json.loads((shipped_model("jazz-classical-melody") / "split.json").read_text())["genres"]
    assert f"held-out songs: jazz {len(split['jazz']['test'])}, classical {len(split['classical']['test'])}" in r.output
    assert "melody-locked: yes" in r.output and "genres: jazz, classical" in r.output
    r = run("model", "jazz-classical-melody", "--songs", "test")
    assert r.exit_code == 0
    listed = [line.split("\t") for line in r.output.splitlines()]
    assert listed == [[g, e["name"]] for g in ("jazz", "classical") for e in split[g]["test"]]


def test_bad_names_get_one_line():
    r = run("model", "no-such-model")
    assert r.exit_code == 1 and r.output.startswith("Error: no such model") and len(r.output.splitlines()) == 1
    r = run("model", "--songs", "test")
    assert r.exit_code == 1 and "needs a model" in r.output
    r = run("model", "jazz-classical-melody", "four-genres-melody")
    assert r.exit_code == 1 and "one model at a time" in r.output and len(r.output.splitlines()) == 1


def test_upgrade_leaves_a_format_2_model_as_it_is():
    """``genre model FOLDER --upgrade``: format-1 folders are tests/test_registry.py's."""
    r = run("model", "jazz-classical-melody", "--upgrade")
    assert r.exit_code == 0 and r.output.strip().endswith(": already format 2"), r.output
