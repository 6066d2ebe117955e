import re
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

COMMANDS = [[], ["midi"], ["audio"], ["midi", "prepare"], ["midi", "inspect"], ["midi", "plot"], ["midi", "export"], ["midi", "split"],
            ["render"], ["audio", "render-dataset"], ["audio", "make-encoder"], ["audio", "train"], ["audio", "evaluate"],
            ["audio", "embed"], ["audio", "transform"], ["audio", "fad"]]


def run(*args, ok=True):
    result = CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)
    if ok:
        assert result.exit_code == 0, result.output
    return result


@pytest.mark.parametrize("cmd", COMMANDS)
def test_every_command_has_help(cmd):
    out = run(*cmd, "--help").output
    assert "Usage:" in out and len(out.splitlines()) > 4


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
