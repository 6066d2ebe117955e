"""Transfer of files and folders (midigenre.transfer.transfer_files) with the shipped model."""

import numpy as np
import pytest

from midigenre.transfer import TransferModel, transfer_files, transfer_jobs
from shared.errors import GenreError
from tests.conftest import make_midi, random_grid_notes

PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def model():
    return TransferModel.load()  # the shipped model is package data: not finding it is a failure


@pytest.fixture
def songs(tmp_path):
    rng = np.random.default_rng(11)
    d = tmp_path / "songs"
    (d / "deep").mkdir(parents=True)
    make_midi(d / "one.mid", random_grid_notes(rng, 8))
    make_midi(d / "deep" / "two.midi", random_grid_notes(rng, 6))
    (d / "text.mid").write_text("not MIDI")
    make_midi(d / "waltz.mid", random_grid_notes(rng, 8), time_signatures=[(0, 3, 4)])
    (d / "notes.txt").write_text("ignored")
    return d


def test_a_folder_with_good_and_bad_songs(model, songs, tmp_path):
    seen = []
    # random notes: the pair's judge would not take them for jazz, so their genre is given
    batch = transfer_files(songs, tmp_path / "out", "classical", model=model, cycle=True, png=True, on_song=seen.append,
                           source_genre="jazz")
    assert seen == batch.songs and len(batch.songs) == 4
    assert len(batch.done) + len(batch.failed) == len(batch.songs)
    assert sorted(s.source.name for s in batch.done) == ["one.mid", "two.midi"]
    errors = {s.source.name: s.error for s in batch.failed}
    assert errors["text.mid"].startswith("parse error")
    assert errors["waltz.mid"].startswith("not 4/4") and "--meter assume-4/4" in errors["waltz.mid"]
    two = next(s for s in batch.done if s.source.name == "two.midi")
    out = tmp_path / "out" / "deep"
    assert two.output == out / "two.classical.mid"
    assert two.written == [out / "two.classical.mid", out / "two.classical.cycle.mid", out / "two.classical.png"]
    assert all(p.exists() for p in two.written) and two.written[-1].read_bytes()[:8] == PNG
    assert two.result.target_genre == "classical" and two.result.cycled is not None
    assert not any(s.written for s in batch.failed)
    assert sorted(p.name for p in (tmp_path / "out").rglob("*")) == sorted(
        ["deep", "one.classical.mid", "one.classical.cycle.mid", "one.classical.png",
         "two.classical.mid", "two.classical.cycle.mid", "two.classical.png"])
    # the meter hint works: read as 4/4 anyway, the waltz goes through
    again = transfer_files(songs / "waltz.mid", tmp_path / "w.mid", "jazz", model=model, meter="assume-4/4",
                           source_genre="classical")
    assert [s.ok for s in again.songs] == [True] and again.songs[0].result.source_genre == "classical"


def test_jobs(songs, tmp_path):
    assert transfer_jobs(songs / "one.mid", tmp_path, "jazz") == [(songs / "one.mid", tmp_path / "one.jazz.mid")]
    assert transfer_jobs(songs / "one.mid", tmp_path / "x.mid", "jazz") == [(songs / "one.mid", tmp_path / "x.mid")]
    with pytest.raises(GenreError, match="no such file or folder"):
        transfer_jobs(songs / "none.mid", tmp_path, "jazz")
    with pytest.raises(GenreError, match="-o must be a folder"):
        transfer_jobs(songs, tmp_path / "x.mid", "jazz")
    with pytest.raises(GenreError, match="would overwrite the input"):
        transfer_jobs(songs / "one.mid", songs / "one.mid", "jazz")
    with pytest.raises(GenreError, match="would overwrite the input"):  # the cycled-back file would be a song
        (songs / "x.cycle.mid").write_bytes((songs / "one.mid").read_bytes())
        transfer_jobs(songs / "x.cycle.mid", songs / "x.mid", "jazz", cycle=True)
