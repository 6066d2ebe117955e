"""Recipes: a model made by one command (genre midi train --recipe), and the shipped recipes."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from cli.main import main
from midigenre.recipe import load_recipe, recipe_names
from shared.errors import GenreError


def cli(*args):
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


def one_line_error(r, message):
    lines = [line for line in r.output.splitlines() if line.strip()]
    assert r.exit_code == 1 and len(lines) == 1 and lines[0].startswith("Error: ") and message in lines[0], r.output


def test_shipped_recipes_load_and_name_the_shipped_models():
    """Every shipped recipe reads, with settings the trainers accept; each melody model ships its recipe."""
    from shared.registry import shipped_model, shipped_model_names

    names = recipe_names()
    assert {"four-genres-melody", "jazz-classical-melody"} <= set(names)
    for name in names:
        r = load_recipe(name)
        assert r.trainings and set(r.genres) <= set(r.judge_genres)
        assert r.command().startswith(f"genre midi train --recipe {name} ")
        if name in shipped_model_names() and (shipped_model(name) / "recipe.toml").is_file():
            shipped = load_recipe(shipped_model(name) / "recipe.toml")
            assert dataclasses.replace(shipped, name=name) == r  # the shipped model was made by this recipe
            assert f"--recipe {name} " in (shipped_model(name) / "README.md").read_text()


TINY = """
summary = "A test model."
kind = "{kind}"
genres = ["low", "high"]
limits = ["Random notes."]

[meter]
"*" = "strict"

[split]
test_fraction = 0.2
valid_fraction = 0.3

[[training]]
name = "t1"
preset = "tiny"
epochs = 1
batch_size = 6
sample_phrases = 1
melody_lock = true
{extra}

[choose]
songs = 1
judge_epochs = 1

[measure]
songs = 2
"""


@pytest.mark.parametrize("text, message", [
    ("kind = 'gan'\ngenres = ['a', 'b']\n[[training]]\nname = 'x'\n", "kind must be one of"),
    ("kind = 'cyclegan'\ngenres = ['a', 'b', 'c']\n[[training]]\nname = 'x'\n", "has two genres"),
    ("kind = 'cyclegan'\ngenres = ['a', 'b']\n", "[[training]]"),
    ("kind = 'cyclegan'\ngenres = ['a', 'b']\n[[training]]\nname = 'x'\nepochz = 3\n", "epochz"),
    ("kind = 'cyclegan'\ngenres = ['a', 'b']\nflavour = 1\n[[training]]\nname = 'x'\n", "unknown entry 'flavour'"),
    ("kind = 'cyclegan'\ngenres = ['a', 'b']\n[[training]]\nname = 'x'\n[choose]\nrule = 'vibes'\n", "choice rule"),
    ("kind = 'cyclegan'\ngenres = ['a', 'b'\n", "cannot read the recipe"),
])
def test_a_bad_recipe_is_one_line(tmp_path, text, message):
    p = tmp_path / "bad.toml"
    p.write_text(text)
    with pytest.raises(GenreError, match=message.replace("[", r"\[").replace("]", r"\]")):
        load_recipe(p)
    one_line_error(cli("midi", "train", "--recipe", p, "--genre", "a=x", "--out", tmp_path / "o"), message)


def test_unknown_recipe_and_foreign_options_are_one_line(tmp_path):
    one_line_error(cli("midi", "train", "--recipe", "no-such", "--out", tmp_path / "o"), "no recipe named 'no-such'")
    one_line_error(cli("midi", "train", "--recipe", "four-genres-melody", "--epochs", "2", "--out", tmp_path / "o"),
                   "--epochs: the recipe sets how the model is trained")
    one_line_error(cli("midi", "train", "--recipe", "four-genres-melody", "--genre", "pop=x", "--out", tmp_path / "o"),
                   "give --genre classical=FOLDER")


@pytest.mark.parametrize("kind", ["cyclegan", "multi-genre"])
def test_a_recipe_makes_a_model_with_its_card_in_one_command(caches, tmp_path, tiny_preset, kind):
    """Prepare from folders, split, train, judges, choice on validation songs, held-out measures,
    model folder with its card: all from one command; the same command again reuses every step."""
    from midigenre.transfer import GenreTransfer

    recipe = tmp_path / f"tiny-{kind}.toml"
    recipe.write_text(TINY.format(kind=kind, extra="" if kind == "cyclegan" else "harmony = 1.0"))
    low, high = caches[0].parent / "low", caches[0].parent / "high"
    out = tmp_path / "run"
    args = ["midi", "train", "--recipe", recipe, "--genre", f"low={low}", "--genre", f"high={high}", "--out", out,
            "--threads", "1"]
    r = cli(*args)
    assert r.exit_code == 0, r.output
    model = out / "model"
    assert f"model: {model}" in r.output and "held out: Every target met:" in r.output
    for f in ("model.safetensors", "model.json", "split.json", "recipe.toml", "held-out.json", "README.md"):
        assert (model / f).is_file(), f
    card = (model / "README.md").read_text()
    assert f"--recipe {recipe}" in card and "A test model." in card and "Random notes." in card
    record = json.loads((out / "recipe-run.json").read_text())
    assert record["recipe"] == recipe.stem and set(record["steps"]) >= {"prepare", "split", "train t1", "judges"}

    # the card's numbers are the held-out measures of the model in the folder, by judges that did not choose
    held = json.loads((model / "held-out.json").read_text())
    assert len(held["rows"]) == 2
    for row in held["rows"]:
        assert set(row["judges"]) == {"reference", "cnn-seed1", "feature"}
        assert f"| {row['source']} → {row['target']} | {row['melody_top']:.2f} | {row['harmony']:.2f}" in card
    assert row["melody_top"] == 1.0  # melody-locked: the top voice stays on top
    split = json.loads((model / "split.json").read_text())
    assert all(split["genres"][g]["test"] for g in ("low", "high"))
    held_names = {e["name"] for g in ("low", "high") for e in split["genres"][g]["test"]}
    choice = json.loads((out / "chosen" / "choice.json").read_text())
    assert not held_names & {n for v in choice["songs"].values() for n in v}  # chosen on other songs than measured

    m = GenreTransfer.load(model)
    assert m.melody_lock and list(m.names) == ["low", "high"]
    meta = json.loads((model / "model.json").read_text())
    assert str(tmp_path) not in json.dumps(meta)  # portable: no path of the training machine

    stamp = (out / "runs" / "t1" / "checkpoint.pt").stat().st_mtime_ns
    r = cli(*args)
    assert r.exit_code == 0, r.output
    assert "done by an earlier run" in r.output and (out / "runs" / "t1" / "checkpoint.pt").stat().st_mtime_ns == stamp
    one_line_error(cli(*args[:-4], "--split", "four-genres-melody", "--out", tmp_path / "other", "--threads", "1"),
                   "has no songs of low")
