import json

import numpy as np
import pytest

from midigenre.dataset import PhraseCache, PhraseDataset, SongSplit, balance
from midigenre.prepare import prepare
from shared.errors import GenreError
from tests.conftest import make_midi, random_grid_notes


@pytest.fixture
def two_genre_cache(tmp_path):
    """Two genres: 'a' with 20 songs of 1–3 phrases, 'b' with 6 songs of 2 phrases."""
    rng = np.random.default_rng(11)
    for genre, n_songs in (("a", 20), ("b", 6)):
        d = tmp_path / genre
        d.mkdir()
        for i in range(n_songs):
            bars = 4 * (1 + i % 3) if genre == "a" else 8
            last = (bars * 16 - 1) * 120, bars * 16 * 120, 60  # the song fills its last phrase
            make_midi(d / f"{genre}{i:02d}.mid", random_grid_notes(rng, bars, n=40 * bars // 4) + [last])
        prepare([d], genre, tmp_path / "c.h5")
    return tmp_path / "c.h5"


def test_split_is_by_song_seeded_and_saved(two_genre_cache, tmp_path):
    with PhraseCache(two_genre_cache) as c:
        s = SongSplit.create(c, test_fraction=0.25, seed=3)
        for genre in ("a", "b"):
            train = {e["sha1"] for e in s.genres[genre]["train"]}
            test = {e["sha1"] for e in s.genres[genre]["test"]}
            assert not train & test and train | test == set(c.files(genre)["sha1"])
            tr, te = s.rows(c, genre, "train"), s.rows(c, genre, "test")
            assert not set(tr) & set(te) and len(tr) + len(te) == c.n_phrases(genre)
            # every phrase of a test song is in the test rows: no song leaks across
            pf = c.phrase_file(genre)
            assert not set(pf[tr]) & set(pf[te])
        assert len(s.genres["a"]["test"]) == 5 and len(s.genres["b"]["test"]) == 2  # ceil(0.25 · n)
        again = SongSplit.create(c, test_fraction=0.25, seed=3)
        other = SongSplit.create(c, test_fraction=0.25, seed=4)
    assert again.genres == s.genres and other.genres != s.genres
    path = s.save(tmp_path / "split.json")
    loaded = SongSplit.load(path)
    assert loaded.genres == s.genres and json.loads(path.read_text())["seed"] == 3


def test_split_refuses_a_cache_with_other_settings(two_genre_cache, tmp_path):
    with PhraseCache(two_genre_cache) as c:
        s = SongSplit.create(c)
    s.settings_hash = "0" * 16
    with PhraseCache(two_genre_cache) as c, pytest.raises(GenreError, match="other settings"):
        s.rows(c, "a", "train")
    (tmp_path / "bad.json").write_text("{}")
    with pytest.raises(GenreError, match="not a song split"):
        SongSplit.load(tmp_path / "bad.json")
    with pytest.raises(GenreError, match="no such split"):
        SongSplit.load(tmp_path / "missing.json")


def test_balance_downsamples_the_larger_genre():
    a, b = np.arange(100), np.arange(1000, 1030)
    a2, b2 = balance(a, b, seed=0)
    assert len(a2) == len(b2) == 30 and set(a2) <= set(a) and len(set(a2)) == 30
    assert (b2 == b).all()
    assert (balance(a, b, seed=0)[0] == a2).all() and not (balance(a, b, seed=1)[0] == a2).all()


def test_dataset_reads_lazily_and_in_batches(two_genre_cache):
    import torch

    with PhraseCache(two_genre_cache) as c:
        split = SongSplit.create(c, seed=0)
        rows = split.rows(c, "a", "train")
        expected = c.phrases("a", rows)
    ds = PhraseDataset(two_genre_cache, "a", rows=rows, label=1)
    assert len(ds) == len(rows)
    x, y = ds[2]
    assert x.shape == (1, 64, 84) and x.dtype == torch.float32 and y == 1
    assert torch.equal(x[0], torch.from_numpy(expected[2].astype(np.float32)))
    batch = ds.__getitems__([5, 0, 5])
    assert torch.equal(batch[0][0], batch[2][0]) and torch.equal(batch[1][0][0], torch.from_numpy(expected[0].astype(np.float32)))
    loader = torch.utils.data.DataLoader(ds, batch_size=4, shuffle=True, num_workers=2,
                                         generator=torch.Generator().manual_seed(0))
    seen = sum(len(xb) for xb, _ in loader)
    assert seen == len(rows)
    with pytest.raises(GenreError, match="no genre"):
        PhraseDataset(two_genre_cache, "zzz")


def test_cache_song_lookup(two_genre_cache):
    with PhraseCache(two_genre_cache) as c:
        phrases, index, tempo, name = c.song("a", "a02")
        assert name == "a02.mid" and len(phrases) == 3 and list(index) == [0, 1, 2] and tempo == 120.0
        with pytest.raises(GenreError, match="songs in the cache match"):
            c.song("a", "a0")
        with pytest.raises(GenreError, match="out of range"):
            c.phrases("a", 10_000)


def test_identical_files_land_on_one_side_of_the_split(tmp_path):
    from midigenre.prepare import prepare

    rng = np.random.default_rng(2)
    d = tmp_path / "g"
    d.mkdir()
    for i in range(6):
        make_midi(d / f"s{i}.mid", random_grid_notes(rng, 4, n=30) + [(63 * 120, 64 * 120, 60)])
    for i in range(3):
        (d / f"zz_copy{i}.mid").write_bytes((d / "s0.mid").read_bytes())
    prepare([d], "g", tmp_path / "c.h5", dedupe=False)
    with PhraseCache(tmp_path / "c.h5") as c:
        for seed in range(5):
            s = SongSplit.create(c, test_fraction=0.3, seed=seed)
            train = {e["sha1"] for e in s.genres["g"]["train"]}
            test = {e["sha1"] for e in s.genres["g"]["test"]}
            assert not train & test and len(train | test) == 6
