import re
from pathlib import Path
import subprocess
import sys

import mido
import numpy as np
import pretty_midi
import pytest
from click.testing import CliRunner

from cli.main import main
from midigenre.dataset import PhraseCache
from midigenre.pianoroll import phrases_of_file
from tests.conftest import SONG_FOLDER_EXPECTED, make_midi, random_grid_notes

def _command_paths(group, path=()):
    """Every command and group under ``group``, as argument lists (the group itself first)."""
    import click

    out = [list(path)]
    for name, cmd in sorted(group.commands.items()):
        if isinstance(cmd, click.Group):
            out += _command_paths(cmd, (*path, name))
        else:
            out.append([*path, name])
    return out


COMMANDS = _command_paths(main)


def run(*args, ok=True):
    result = CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)
    if ok:
        assert result.exit_code == 0, result.output
    return result


@pytest.mark.parametrize("cmd", COMMANDS, ids=lambda c: " ".join(c) or "genre")
def test_every_command_has_help(cmd):
    out = run(*cmd, "--help").output
    assert "Usage:" in out and len(out.splitlines()) > 4


def test_the_help_test_sees_every_command():
    names = {" ".join(c) for c in COMMANDS}
    assert {"midi transfer", "midi explain", "midi evaluate", "midi train", "midi train-classifier", "audio transform",
            "render"} <= names and len(names) >= 20


def test_choices_come_from_the_libraries():
    from audiogenre.backends import BACKENDS, TRAINABLE
    from audiogenre.classify import PAPER_SETTINGS
    from audiogenre.datasets import KINDS
    from midigenre.attribution import METHODS
    from midigenre.pianoroll import METER_MODES

    assert tuple(BACKENDS) == ("wav2vec2", *TRAINABLE) and tuple(PAPER_SETTINGS) == tuple(TRAINABLE)
    helps = {" ".join(c): run(*c, "--help").output for c in (["midi", "prepare"], ["midi", "explain"], ["audio", "train"],
                                                              ["audio", "evaluate"])}
    assert "|".join(METER_MODES) in helps["midi prepare"]
    assert "|".join(METHODS) in helps["midi explain"]
    assert "|".join(BACKENDS) in helps["audio train"].replace("\n", "").replace(" ", "")
    assert "|".join(("auto", *KINDS)) in helps["audio evaluate"]
    r = run("midi", "plot", "x.mid", "-o", "x.png", "--meter", "waltz", ok=False)
    assert r.exit_code == 2 and "strict" in r.output


def test_version():
    assert run("--version").output.startswith("genre ")


def test_help_does_not_import_heavy_libraries():
    code = "import sys; from cli.main import main; print(sorted(m for m in ('torch', 'h5py', 'transformers', 'matplotlib', 'symusic') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_prepare_inspect_plot_export_split(song_folder, tmp_path):
    cache = tmp_path / "c.h5"
    out = run("midi", "prepare", song_folder, "--genre", "jazz", "-o", cache, "-j", "2").output
    assert re.search(r"files kept\s+3\n", out) and re.search(r"phrases\s+\d+\n", out)
    for reason in {r for r in SONG_FOLDER_EXPECTED.values() if r}:
        assert f"dropped: {reason}" in out
    out = run("midi", "inspect", cache, "--files", "--dropped").output
    assert "genre 'jazz'" in out and "nested/c.midi" in out and "drums only" in out and "meter            strict" in out

    png = tmp_path / "roll.png"
    run("midi", "plot", cache, "--index", "0:2", "-o", png)
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    run("midi", "plot", song_folder / "a.mid", "-o", tmp_path / "song.png")
    assert (tmp_path / "song.png").stat().st_size > 1000

    mid = tmp_path / "song.mid"
    out = run("midi", "export", cache, "--song", "b.mid", "-o", mid).output
    assert "wrote" in out
    pm = pretty_midi.PrettyMIDI(str(mid))
    assert pm.time_signature_changes[0].numerator == 4 and pm.get_tempo_changes()[1][0] == pytest.approx(90.0, rel=1e-5)
    assert {n.velocity for n in pm.instruments[0].notes} == {100}
    assert len(mido.MidiFile(mid).tracks) >= 2
    # the exported song reads back to the cached phrases
    with PhraseCache(cache) as c:
        expect, index, _, _ = c.song("jazz", "b.mid")
    again, again_index, _ = phrases_of_file(mid)
    np.testing.assert_array_equal(expect, again)

    run("midi", "export", cache, "--index", "1", "--index", "0", "-o", tmp_path / "two.mid")
    two, _, _ = phrases_of_file(tmp_path / "two.mid")
    with PhraseCache(cache) as c:
        np.testing.assert_array_equal(two, c.phrases("jazz", [1, 0]))

    out = run("midi", "split", cache, "-o", tmp_path / "split.json", "--seed", "1").output
    assert "jazz" in out and (tmp_path / "split.json").exists()


@pytest.mark.parametrize(
    "args, message",
    [
        (["midi", "prepare", "/nonexistent/dir", "-g", "jazz", "-o", "{tmp}/c.h5"], "no such file or folder"),
        (["midi", "prepare", "{songs}", "-g", "jazz", "-o", "{tmp}/blocker/c.h5"], "cannot write"),
        (["midi", "inspect", "{tmp}/missing.h5"], "no such cache file"),
        (["midi", "inspect", "{songs}/a.mid"], "not a readable HDF5"),
        (["midi", "plot", "{songs}/text.mid", "-o", "{tmp}/x.png"], "parse error"),
        (["midi", "plot", "{songs}/a.mid", "-i", "99", "-o", "{tmp}/x.png"], "out of range"),
        (["midi", "plot", "{songs}/a.mid", "-i", "x:y", "-o", "{tmp}/x.png"], "bad index range"),
        (["midi", "export", "{songs}/a.mid", "-o", "{tmp}/x.mid"], "reads a cache"),
    ],
)
def test_errors_are_one_line_and_nonzero(args, message, song_folder, tmp_path):
    (tmp_path / "blocker").write_text("a file where a folder should be")
    args = [a.format(tmp=tmp_path, songs=song_folder) for a in args]
    result = run(*args, ok=False)
    assert result.exit_code != 0
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("Error: ") and message in lines[0], result.output


def test_prepare_twice_refuses_then_resumes(song_folder, tmp_path):
    cache = tmp_path / "c.h5"
    run("midi", "prepare", song_folder / "a.mid", "-g", "jazz", "-o", cache)
    result = run("midi", "prepare", song_folder, "-g", "jazz", "-o", cache, ok=False)
    assert result.exit_code == 1 and "--resume" in result.output
    out = run("midi", "prepare", song_folder, "-g", "jazz", "-o", cache, "--resume").output
    assert re.search(r"already in the cache\s+1\n", out) and re.search(r"files read now\s+11\n", out)
    result = run("midi", "prepare", song_folder, "-g", "pop", "-o", cache, "--meter", "assume-4/4", ok=False)
    assert "other settings" in result.output and "meter" in result.output


def test_plot_a_whole_cached_song(tmp_path):
    rng = np.random.default_rng(5)
    make_midi(tmp_path / "long.mid", random_grid_notes(rng, 40, n=300))
    cache = tmp_path / "c.h5"
    run("midi", "prepare", tmp_path / "long.mid", "-g", "x", "-o", cache)
    run("midi", "plot", cache, "--song", "0", "-o", tmp_path / "song.png")
    assert (tmp_path / "song.png").stat().st_size > 5000


def test_empty_or_conflicting_selection_is_a_clear_error(song_folder, tmp_path):
    cache = tmp_path / "c.h5"
    run("midi", "prepare", song_folder, "-g", "jazz", "-o", cache)
    for args in (["export", cache, "-i", "3:1", "-o", tmp_path / "x.mid"],
                 ["plot", cache, "-i", "2:2", "-o", tmp_path / "x.png"],
                 ["export", cache, "-i", "0", "--song", "0", "-o", tmp_path / "x.mid"]):
        r = run("midi", *args, ok=False)
        assert r.exit_code == 1 and r.output.startswith("Error: ") and len(r.output.strip().splitlines()) == 1


@pytest.fixture
def inputs(song_folder, tmp_path):
    """A MIDI file, a cache, a WAV file, a data set folder and a (fake) model folder."""
    import soundfile as sf

    cache = tmp_path / "c.h5"
    run("midi", "prepare", song_folder / "a.mid", song_folder / "b.mid", "-g", "jazz", "-o", cache)
    wav = tmp_path / "s.wav"
    sf.write(wav, (0.1 * np.sin(np.arange(22050) / 10)).astype(np.float32), 22050)
    (tmp_path / "set").mkdir()
    (tmp_path / "set" / "manifest.json").write_text("{}")
    (tmp_path / "clf").mkdir()
    (tmp_path / "clf" / "model.json").write_text("{}")
    (tmp_path / "hard.mid").hardlink_to(song_folder / "a.mid")
    return {"mid": song_folder / "a.mid", "songs": song_folder, "c": cache, "wav": wav, "set": tmp_path / "set",
            "clf": tmp_path / "clf", "tmp": tmp_path}


@pytest.mark.parametrize(
    "args, victim",
    [
        (["midi", "transfer", "{mid}", "--model", "{tmp}/none", "--to", "jazz", "-o", "{mid}"], "{mid}"),
        (["midi", "transfer", "{mid}", "--model", "{tmp}/none", "--to", "jazz", "-o", "{tmp}/hard.mid"], "{mid}"),
        (["midi", "plot", "{mid}", "-o", "{mid}"], "{mid}"),
        (["midi", "plot", "{c}", "-o", "{c}"], "{c}"),
        (["midi", "export", "{c}", "-o", "{c}"], "{c}"),
        (["midi", "split", "{c}", "-o", "{c}"], "{c}"),
        (["midi", "explain", "{mid}", "--classifier", "{clf}", "-g", "jazz", "-o", "{mid}"], "{mid}"),
        (["midi", "explain", "{mid}", "--classifier", "{clf}", "-g", "jazz", "-o", "{clf}/model.json"], "{clf}/model.json"),
        (["midi", "evaluate", "--classifier", "{clf}", "--a", "{c}", "-o", "{c}"], "{c}"),
        (["midi", "prepare", "{mid}", "-g", "jazz", "-o", "{mid}", "--overwrite"], "{mid}"),
        (["midi", "prepare", "{songs}", "-g", "jazz", "-o", "{songs}/nested/c.midi", "--overwrite"], "{songs}/nested/c.midi"),
        (["render", "{mid}", "-o", "{mid}"], "{mid}"),
        (["audio", "transform", "{wav}", "--classifier", "{clf}", "--to", "a", "-o", "{wav}"], "{wav}"),
        (["audio", "transform", "{wav}", "--classifier", "{clf}", "--to", "a", "-o", "{tmp}/o.wav", "--json", "{wav}"], "{wav}"),
        (["audio", "evaluate", "{clf}", "{set}", "--json", "{set}/manifest.json"], "{set}/manifest.json"),
        (["audio", "evaluate", "{clf}", "{set}", "--png", "{clf}/model.json"], "{clf}/model.json"),
        (["audio", "embed", "{clf}", "{set}", "-o", "{clf}/model.json"], "{clf}/model.json"),
        (["audio", "fad", "--reference", "{set}", "--test", "{wav}", "--json", "{wav}"], "{wav}"),
    ],
)
def test_no_command_writes_over_its_input(args, victim, inputs):
    args = [a.format(**inputs) for a in args]
    victim = Path(victim.format(**inputs))
    before = victim.read_bytes()
    files_before = sorted(inputs["tmp"].rglob("*"))
    result = run(*args, ok=False)
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert result.exit_code == 1 and len(lines) == 1 and "would overwrite the input" in lines[0], result.output
    assert victim.read_bytes() == before
    assert sorted(inputs["tmp"].rglob("*")) == files_before  # refused before any work: nothing written


def test_transfer_of_a_folder_refuses_outputs_that_are_its_songs(song_folder, tmp_path):
    (song_folder / "a.jazz.mid").write_bytes((song_folder / "b.mid").read_bytes())  # a.mid would go to a.jazz.mid
    before = (song_folder / "a.jazz.mid").read_bytes()
    result = run("midi", "transfer", song_folder, "--model", tmp_path / "none", "--to", "jazz", "-o", song_folder, ok=False)
    assert result.exit_code == 1 and "would overwrite the input" in result.output and "a.jazz.mid" in result.output
    assert (song_folder / "a.jazz.mid").read_bytes() == before


def test_audio_arrange_is_listed_and_its_old_name_still_runs():
    """`genre audio arrange` (a recording re-arranged through transcription) no longer sits beside
    `genre audio transform` under a look-alike name; `genre audio transfer` stays as a hidden alias."""
    from click.testing import CliRunner

    from cli.main import main

    listing = CliRunner().invoke(main, ["audio", "--help"]).output
    assert "arrange" in listing and "transform" in listing and " transfer " not in listing
    old = CliRunner().invoke(main, ["audio", "transfer", "--help"])
    new = CliRunner().invoke(main, ["audio", "arrange", "--help"])
    assert old.exit_code == new.exit_code == 0 and old.output.split("\n", 1)[1] == new.output.split("\n", 1)[1]
