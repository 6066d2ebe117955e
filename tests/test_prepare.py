import os
import stat

import h5py
import numpy as np
import pytest

from midigenre.dataset import PhraseCache
from midigenre.pianoroll import RollSettings, phrases_of_file
from midigenre.prepare import find_midi_files, prepare
from shared.cache import SCHEMA_VERSION, read_header
from shared.errors import GenreError
from tests.conftest import REAL_JAZZ, SONG_FOLDER_EXPECTED, make_midi, random_grid_notes


def dropped_by_name(cache, genre):
    with PhraseCache(cache) as c:
        d = c.dropped(genre)
        return dict(zip(d["name"], d["reason"]))


def test_folder_is_scanned_recursively_and_every_bad_file_has_its_reason(song_folder, tmp_path):
    out = tmp_path / "c.h5"
    report = prepare([song_folder], "jazz", out)
    expected_drops = {k: v for k, v in SONG_FOLDER_EXPECTED.items() if v}
    assert dropped_by_name(out, "jazz") == expected_drops
    assert report.kept == 3 and report.files_found == len(SONG_FOLDER_EXPECTED)
    assert sum(report.dropped.values()) == len(expected_drops)
    assert report.dropped["parse error"] == 2
    with PhraseCache(out) as c:
        files = c.files("jazz")
        assert sorted(files["name"]) == ["a.mid", "b.mid", "nested/c.midi"]
        assert report.phrases == c.n_phrases("jazz") == files["n_phrases"].sum()
        ph = c.phrases("jazz", slice(None))
        assert ph.dtype == bool and ph.shape[1:] == (64, 84) and ph.any(axis=(1, 2)).all()
        # per phrase: source file and its place in the song; per file: tempo
        row = list(files["name"]).index("b.mid")
        assert files["tempo"][row] == pytest.approx(90.0)
        first, n = files["first_phrase"][row], files["n_phrases"][row]
        assert (c.phrase_file("jazz")[first : first + n] == row).all()
        expect, index, _ = phrases_of_file(song_folder / "b.mid")
        np.testing.assert_array_equal(ph[first : first + n], expect)
        np.testing.assert_array_equal(c.phrase_index("jazz")[first : first + n], index)


def test_root_attributes_and_dataset_layout(song_folder, tmp_path):
    out = tmp_path / "c.h5"
    prepare([song_folder], "jazz", out)
    h = read_header(out, kind="midi-phrases")
    assert h.schema_version == SCHEMA_VERSION and h.settings == RollSettings().to_dict()
    assert h.settings_hash == RollSettings().hash() and h.package_version
    with h5py.File(out) as f:
        ds = f["genres/jazz/phrases"]
        assert ds.dtype == bool and ds.chunks[1:] == (64, 84) and ds.compression == "gzip"


def test_several_genres_in_one_file_and_conflicts(song_folder, tmp_path):
    out = tmp_path / "c.h5"
    prepare([song_folder / "a.mid"], "jazz", out)
    prepare([song_folder / "b.mid"], "pop", out)
    with PhraseCache(out) as c:
        assert c.genres == ["jazz", "pop"] and c.n_phrases("jazz") == 2
    before = out.read_bytes()
    with pytest.raises(GenreError, match="already in"):
        prepare([song_folder / "b.mid"], "jazz", out)
    with pytest.raises(GenreError, match="other settings.*meter"):
        prepare([song_folder / "b.mid"], "folk", out, RollSettings(meter="lenient"))
    assert out.read_bytes() == before  # refused runs leave the cache as it was
    prepare([song_folder / "b.mid"], "jazz", out, overwrite=True)  # same settings: replaces one genre
    with PhraseCache(out) as c:
        assert c.genres == ["jazz", "pop"] and list(c.files("jazz")["name"]) == ["b.mid"]
    prepare([song_folder / "a.mid"], "folk", out, RollSettings(meter="lenient"), overwrite=True)
    with PhraseCache(out) as c:  # other settings: the whole cache is replaced
        assert c.genres == ["folk"] and c.settings.meter == "lenient"


def test_not_a_cache_is_refused_unless_overwrite(song_folder, tmp_path):
    out = tmp_path / "c.h5"
    out.write_text("my notes")
    with pytest.raises(GenreError, match="not a readable HDF5"):
        prepare([song_folder / "a.mid"], "jazz", out)
    assert out.read_text() == "my notes"
    prepare([song_folder / "a.mid"], "jazz", out, overwrite=True)
    assert read_header(out).kind == "midi-phrases"


def test_resume_adds_only_new_files(song_folder, tmp_path):
    out = tmp_path / "c.h5"
    prepare([song_folder / "a.mid"], "jazz", out)
    seen = []
    report = prepare([song_folder], "jazz", out, resume=True, progress=lambda r: seen.append(r.name))
    assert "a.mid" not in seen and report.files_already_done == 1
    with PhraseCache(out) as c:
        assert sorted(c.files("jazz")["name"]) == ["a.mid", "b.mid", "nested/c.midi"]
        assert dropped_by_name(out, "jazz")["copy_of_a.mid"] == "duplicate"  # found against the cached a.mid


def test_interrupted_run_leaves_cache_intact_and_resumes(song_folder, tmp_path, monkeypatch):
    import midigenre.prepare as prep

    monkeypatch.setattr(prep, "_JOURNAL_EVERY_FILES", 2)
    out = tmp_path / "c.h5"
    prepare([song_folder / "a.mid"], "pop", out)
    before = out.read_bytes()

    count = {"n": 0}

    def stop_after_five(res):
        count["n"] += 1
        if count["n"] == 5:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        prepare([song_folder], "jazz", out, progress=stop_after_five)
    assert out.read_bytes() == before  # the cache is untouched
    assert not [p for p in tmp_path.iterdir() if ".tmp" in p.name]  # no temporary files left behind
    journal = tmp_path / ".c.h5.jazz.partial"
    assert journal.is_dir() and list(journal.glob("shard-*.npz"))

    seen = []
    report = prepare([song_folder], "jazz", out, resume=True, progress=lambda r: seen.append(r.name))
    assert report.files_resumed == 5 and len(seen) == len(SONG_FOLDER_EXPECTED) - 5
    assert not journal.exists()

    clean = tmp_path / "clean.h5"
    prepare([song_folder], "jazz", clean)
    with PhraseCache(out) as a, PhraseCache(clean) as b:
        assert a.genres == ["jazz", "pop"]
        np.testing.assert_array_equal(a.phrases("jazz", slice(None)), b.phrases("jazz", slice(None)))
        assert list(a.files("jazz")["sha1"]) == list(b.files("jazz")["sha1"])
    assert dropped_by_name(out, "jazz") == dropped_by_name(clean, "jazz")


def test_a_new_run_without_resume_discards_the_journal(song_folder, tmp_path):
    out = tmp_path / "c.h5"
    with pytest.raises(KeyboardInterrupt):
        prepare([song_folder], "jazz", out, progress=lambda r: (_ for _ in ()).throw(KeyboardInterrupt()))
    assert not out.exists() and (tmp_path / ".c.h5.jazz.partial").is_dir()
    report = prepare([song_folder], "jazz", out)
    assert report.files_resumed == 0 and report.kept == 3
    assert not (tmp_path / ".c.h5.jazz.partial").exists()


def test_workers_give_the_same_cache(song_folder, tmp_path, monkeypatch):
    import midigenre.prepare as prep

    assert prep.effective_workers(8, 100) == 1 and prep.effective_workers(2, 10_000) == 2
    monkeypatch.setattr(prep, "MIN_FILES_PER_WORKER", 1)  # use a real pool on this small folder
    one, two = tmp_path / "one.h5", tmp_path / "two.h5"
    prepare([song_folder], "jazz", one, workers=1)
    assert prepare([song_folder], "jazz", two, workers=2).workers == 2
    with PhraseCache(one) as a, PhraseCache(two) as b:
        np.testing.assert_array_equal(a.phrases("jazz", slice(None)), b.phrases("jazz", slice(None)))
        assert list(a.files("jazz")["name"]) == list(b.files("jazz")["name"])
    assert dropped_by_name(one, "jazz") == dropped_by_name(two, "jazz")


def test_keep_duplicates_and_globs(song_folder, tmp_path):
    out = tmp_path / "c.h5"
    report = prepare([str(song_folder / "**" / "*.mid*")], "jazz", out, dedupe=False)
    assert report.kept == 4 and "duplicate" not in report.dropped
    assert len(find_midi_files([song_folder, song_folder / "a.mid"])) == len(SONG_FOLDER_EXPECTED)


def test_bad_sources_and_outputs(song_folder, tmp_path):
    with pytest.raises(GenreError, match="no such file or folder"):
        prepare([tmp_path / "nope"], "jazz", tmp_path / "c.h5")
    (tmp_path / "empty").mkdir()
    with pytest.raises(GenreError, match="no MIDI files"):
        prepare([tmp_path / "empty"], "jazz", tmp_path / "c.h5")
    with pytest.raises(GenreError, match="no MIDI files match"):
        prepare([str(tmp_path / "*.mid")], "jazz", tmp_path / "c.h5")
    with pytest.raises(GenreError, match="invalid genre name"):
        prepare([song_folder], "a/b", tmp_path / "c.h5")
    with pytest.raises(GenreError, match="is a folder"):
        prepare([song_folder], "jazz", tmp_path)


@pytest.mark.skipif(os.geteuid() == 0, reason="root can write anywhere")
def test_unwritable_output(song_folder, tmp_path):
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(stat.S_IRUSR | stat.S_IXUSR)
    try:
        with pytest.raises(GenreError, match="cannot write"):
            prepare([song_folder], "jazz", locked / "c.h5")
    finally:
        locked.chmod(stat.S_IRWXU)


def test_output_under_a_file_is_a_clear_error(song_folder, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(GenreError, match="cannot write"):
        prepare([song_folder], "jazz", blocker / "c.h5")


def test_unreadable_file_is_counted(song_folder, tmp_path):
    (song_folder / "dangling.mid").symlink_to(tmp_path / "gone.mid")  # unreadable even for root
    report = prepare([song_folder], "jazz", tmp_path / "c.h5")
    assert report.dropped["unreadable"] == 1
    assert "No such file" in [d for n, d in zip(*_dropped_detail(tmp_path / "c.h5")) if n == "dangling.mid"][0]


def _dropped_detail(cache):
    with PhraseCache(cache) as c:
        d = c.dropped("jazz")
        return list(d["name"]), list(d["detail"])


def test_absurdly_long_file_is_dropped_without_allocating(tmp_path):
    far = 480 * 4 * 100_000  # a note 100,000 bars in (MIDI delta times stop at 2**28)
    make_midi(tmp_path / "long.mid", [(0, 480, 60), (far, far + 480, 60)])
    report = prepare([tmp_path / "long.mid"], "jazz", tmp_path / "c.h5")
    assert report.dropped["too long"] == 1 and report.kept == 0


def test_real_subset(shared_midi, tmp_path):
    files = [shared_midi / "jazz" / n for n in REAL_JAZZ]
    report = prepare(files, "jazz", tmp_path / "c.h5", workers=2)
    assert report.kept == 3 and report.phrases > 30
    with PhraseCache(tmp_path / "c.h5") as c:
        assert c.files("jazz")["tempo"].min() > 30
    # POP909 writes 1/4: strict drops it, assume-4/4 reads it
    pop = sorted((shared_midi / "pop").rglob("*.mid"))[:4]
    strict = prepare(pop, "pop", tmp_path / "p.h5")
    assume = prepare(pop, "pop", tmp_path / "q.h5", RollSettings(meter="assume-4/4"))
    assert assume.kept == 4 and strict.kept < 4 and set(strict.dropped) <= {"not 4/4", "meter changes"}


def test_rng_notes_fill_expected_phrases(tmp_path):
    rng = np.random.default_rng(3)
    make_midi(tmp_path / "x.mid", random_grid_notes(rng, 16, n=400))
    report = prepare([tmp_path / "x.mid"], "g", tmp_path / "c.h5")
    assert report.phrases == 4 and report.seconds_of_music == pytest.approx(4 * 16 * 60 / 120)


def test_written_files_get_normal_permissions(tmp_path):
    from midigenre.classifier import GenreClassifier, save_classifier

    save_classifier(tmp_path / "m", GenreClassifier(2, (8, 8, 8, 8)), genres=["a", "b"], roll_settings={}, roll_settings_hash="0")
    umask = os.umask(0)
    os.umask(umask)
    for name in ("model.safetensors", "model.json"):
        assert stat.S_IMODE((tmp_path / "m" / name).stat().st_mode) == 0o666 & ~umask, name


def test_journal_of_other_settings_is_discarded(song_folder, tmp_path):
    out = tmp_path / "c.h5"
    with pytest.raises(KeyboardInterrupt):
        prepare([song_folder], "jazz", out, RollSettings(meter="lenient"),
                progress=lambda r: (_ for _ in ()).throw(KeyboardInterrupt()))
    journal = tmp_path / ".c.h5.jazz.partial"
    assert journal.is_dir()
    report = prepare([song_folder], "jazz", out, resume=True)  # strict now: the lenient shards must go
    assert report.files_resumed == 0 and report.kept == 3 and not journal.exists()
