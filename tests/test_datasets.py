"""audiogenre.datasets on small trees made in tmp_path: folder (with and without manifest), FMA, GTZAN."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import soundfile

from audiogenre import datasets as ds
from audiogenre.datasets import AudioDataset, AudioItem, open_dataset, segment
from shared.errors import GenreError

SR = 8000


def tone(path: Path, seconds: float = 0.5, freq: float = 440.0) -> Path:
    """A real, tiny audio file (format from the extension)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    t = np.arange(int(round(seconds * SR))) / SR
    soundfile.write(str(path), 0.1 * np.sin(2 * np.pi * freq * t), SR)
    return path


def sides_of_groups(parts: dict[str, list[AudioItem]]) -> dict[str, set[str]]:
    out: dict[str, set[str]] = {}
    for side, items in parts.items():
        for it in items:
            out.setdefault(it.group, set()).add(side)
    return out


# ----------------------------------------------------------------------------- folder


@pytest.fixture
def folder_tree(tmp_path: Path) -> Path:
    root = tmp_path / "plain"
    tone(root / "jazz" / "a.wav")
    tone(root / "jazz" / "sub" / "b.flac")
    tone(root / "jazz" / "C.WAV")
    tone(root / "rock" / "c.wav")
    tone(root / "rock" / "d.ogg")
    tone(root / "rock" / "e.au")
    tone(root / ".genre-cache" / "x.wav")  # hidden: ignored
    tone(root / "jazz" / ".hidden.wav")
    tone(root / "rock" / ".cache" / "y.wav")
    tone(root / "loose.wav")  # not in a genre folder
    (root / "rock" / "notes.txt").write_text("not audio")
    return root


def test_folder_layout(folder_tree):
    d = open_dataset(folder_tree)
    assert d.kind == "folder" and d.root == folder_tree.resolve()
    assert d.genres == ["jazz", "rock"]
    assert Counter(it.genre for it in d.items) == {"jazz": 3, "rock": 3}
    assert all(it.path.is_absolute() and it.path.is_file() and it.split is None for it in d.items)
    assert {it.group for it in d.items} == {"jazz/a", "jazz/sub/b", "jazz/C", "rock/c", "rock/d", "rock/e"}
    assert d.skipped == {"not in a genre folder": 1}
    assert not d.has_official_split
    parts = d.splits()
    assert set(parts) == {"train", "valid", "test"} and sum(len(v) for v in parts.values()) == 6
    assert all(len(s) == 1 for s in sides_of_groups(parts).values())
    text = d.summary()
    assert "folder" in text and "jazz" in text and "not in a genre folder 1" in text


def test_folder_with_manifest(tmp_path):
    root = tmp_path / "rendered"
    clips = []
    for genre in ("jazz", "classical"):
        for song in range(3):
            for k, start in enumerate((0.0, 12.5)):
                rel = f"{genre}/s{song}__{start}s.wav"
                tone(root / rel)
                clips.append({"path": rel, "genre": genre, "song": f"{genre}/s{song}.mid", "start": start,
                              "split": ["train", "valid", "test"][song]})  # as audiogenre.render writes them
    clips.append({"path": "jazz/gone.wav", "genre": "jazz", "song": "jazz/gone.mid", "split": "train"})
    tone(root / "jazz" / "stray.wav")  # on disk, not in the manifest
    tone(root / ".genre-cache" / "c.wav")
    (root / "manifest.json").write_text(json.dumps({"format": 1, "kind": "rendered-audio", "clips": clips}))

    d = open_dataset(root)
    assert d.kind == "folder" and d.genres == ["classical", "jazz"]
    assert len(d.items) == 12
    assert d.skipped == {"missing file": 1, "not in manifest": 1}
    assert all(it.start == 0.0 and it.duration is None for it in d.items)  # "start" is in the song, not the file
    assert len(segment(d.items, 0.25)) == 24
    assert d.has_official_split
    parts = d.splits(seed=999)  # official: the seed does not matter
    assert [len(parts[s]) for s in ("train", "valid", "test")] == [4, 4, 4]
    assert {it.group for it in parts["test"]} == {"jazz/s2.mid", "classical/s2.mid"}
    assert all(len(s) == 1 for s in sides_of_groups(parts).values())

    # without splits in the manifest: a seeded split by song
    for c in clips:
        del c["split"]
    (root / "manifest.json").write_text(json.dumps({"format": 1, "kind": "rendered-audio", "clips": clips}))
    d = open_dataset(root)
    assert not d.has_official_split and all(it.split is None for it in d.items)
    assert all(len(s) == 1 for s in sides_of_groups(d.splits()).values())  # both clips of a song together


@pytest.mark.parametrize("text, message", [
    ("{not json", "cannot read"),
    (json.dumps({"format": 1, "kind": "something-else", "clips": []}), "not a 'rendered-audio' manifest"),
    (json.dumps({"format": 99, "kind": "rendered-audio", "clips": []}), "format 99"),
    (json.dumps({"format": 1, "kind": "rendered-audio", "clips": [{"path": "a/x.wav", "genre": "a", "split": "dev"}]}),
     "unknown split 'dev'"),
])
def test_bad_manifest(tmp_path, text, message):
    tone(tmp_path / "a" / "x.wav")
    tone(tmp_path / "b" / "y.wav")
    (tmp_path / "manifest.json").write_text(text)
    with pytest.raises(GenreError, match=message):
        open_dataset(tmp_path)


# ----------------------------------------------------------------------------- FMA

# (track id, artist id, split, subset, genre_top); the audio of 400 is missing, 98565 is known broken
FMA_TRACKS = [
    (2, "1", "training", "small", "Hip-Hop"),
    (3, "1", "training", "small", "Hip-Hop"),
    (5, "1", "validation", "small", "Hip-Hop"),
    (10, "6", "test", "small", "Hip-Hop"),
    (20, "7", "training", "small", "Hip-Hop"),
    (140, "54", "training", "small", "Pop"),
    (141, "54", "training", "small", "Pop"),
    (148, "60", "validation", "small", "Pop"),
    (182, "70", "test", "small", "Pop"),
    (500, "", "test", "small", "Pop"),  # no artist id: grouped by track
    (400, "80", "training", "small", "Pop"),
    (98565, "81", "training", "small", "Pop"),
    (1200, "90", "training", "medium", "Rock"),
    (1201, "91", "test", "medium", "Rock"),
    (155000, "95", "training", "large", ""),  # no top genre (common in fma_large)
]


def write_tracks_csv(path: Path) -> None:
    """tracks.csv in FMA's 3-row-header layout, with quoted fields holding commas and newlines."""
    lines = [
        ",album,artist,artist,set,set,track,track,track",
        ",title,id,name,split,subset,genre_top,title,genres_all",
        "track_id,,,,,,,,",
    ]
    for tid, artist, split, subset, genre in FMA_TRACKS:
        album = '"Live, at home"' if tid == 2 else "AWOL"
        name = '"The ""Band"",\nsecond line, of the name"' if tid == 3 else f"artist {artist}"
        lines.append(f'{tid},{album},{artist},{name},{split},{subset},{genre},"Title {tid}","[21, 100]"')
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def fma_audio(folder: Path, tids) -> None:
    for tid in tids:
        p = folder / f"{tid // 1000:03d}" / f"{tid:06d}.mp3"
        if tid == 98565:
            p.parent.mkdir(parents=True, exist_ok=True)
            p.write_bytes(b"")  # empty, as in the published fma_small
        else:
            tone(p, 0.3)


@pytest.fixture
def fma_tree(tmp_path: Path) -> Path:
    root = tmp_path / "fma"
    write_tracks_csv(root / "fma_metadata" / "tracks.csv")
    fma_audio(root / "fma_small", [t[0] for t in FMA_TRACKS if t[3] == "small" and t[0] != 400])
    return root


def test_fma_small(fma_tree):
    d = open_dataset(fma_tree)
    assert d.kind == "fma"
    assert d.genres == ["Hip-Hop", "Pop"]
    tids = sorted(int(it.path.stem) for it in d.items)
    assert tids == [2, 3, 5, 10, 20, 140, 141, 148, 182, 500]  # row after the multi-line field parsed too
    assert d.skipped == {"known corrupt": 1, "missing file": 1}
    by_tid = {int(it.path.stem): it for it in d.items}
    assert by_tid[3].genre == "Hip-Hop" and by_tid[3].group == "artist:1" and by_tid[3].split == "train"
    assert by_tid[5].split == "valid" and by_tid[10].split == "test"
    assert by_tid[500].group == "track:500"
    assert by_tid[140].path == fma_tree.resolve() / "fma_small" / "000" / "000140.mp3"
    parts = d.splits()
    assert [len(parts[s]) for s in ("train", "valid", "test")] == [5, 2, 3]
    assert "known corrupt 1" in d.summary() and "official split" in d.summary()
    # the genre filter keeps only the skip counts of the kept genres
    assert open_dataset(fma_tree, genres=["hip-hop", "Pop"]).genres == ["Hip-Hop", "Pop"]


def test_fma_subsets_and_flat_layout(tmp_path):
    """ROOT holding tracks.csv with the audio tree next to it; medium includes small, large includes all."""
    root = tmp_path / "flat"
    write_tracks_csv(root / "tracks.csv")
    fma_audio(root, [t[0] for t in FMA_TRACKS if t[0] != 400])
    small = open_dataset(root, "fma")
    assert small.genres == ["Hip-Hop", "Pop"] and len(small.items) == 10
    medium = open_dataset(root, fma_subset="medium")
    assert medium.genres == ["Hip-Hop", "Pop", "Rock"] and len(medium.items) == 12
    large = open_dataset(root, fma_subset="large")
    assert len(large.items) == 12 and large.skipped == {"known corrupt": 1, "missing file": 1, "no top genre": 1}


def test_fma_errors(tmp_path, fma_tree):
    tone(tmp_path / "nometa" / "a" / "x.wav")
    tone(tmp_path / "nometa" / "b" / "y.wav")
    with pytest.raises(GenreError, match=r"FMA metadata missing: expected .*fma_metadata[/\\]tracks\.csv"):
        open_dataset(tmp_path / "nometa", "fma")
    with pytest.raises(GenreError, match="unknown FMA subset 'tiny'"):
        open_dataset(fma_tree, fma_subset="tiny")
    empty = tmp_path / "noaudio"
    write_tracks_csv(empty / "fma_metadata" / "tracks.csv")
    with pytest.raises(GenreError, match="unpack fma_small.zip"):
        open_dataset(empty)
    bad = tmp_path / "badcsv"
    (bad / "fma_metadata").mkdir(parents=True)
    (bad / "fma_metadata" / "tracks.csv").write_text("a,b\n1,2\n3,4\n")
    with pytest.raises(GenreError, match="not FMA's tracks.csv"):
        open_dataset(bad)


# ----------------------------------------------------------------------------- GTZAN

GTZAN_FILES = ["blues.00000", "blues.00012", "blues.00029", "blues.00030", "blues.00098",
               "jazz.00000", "jazz.00002", "jazz.00033", "jazz.00054", "jazz.00073",
               "classical.00000", "classical.00011", "classical.00030"]


@pytest.fixture
def gtzan_tree(tmp_path: Path) -> Path:
    """The Kaggle layout: ROOT/Data/genres_original/<genre>/<genre>.000NN.wav (one .au)."""
    root = tmp_path / "gtzan"
    base = root / "Data" / "genres_original"
    for stem in GTZAN_FILES:
        genre = stem.split(".")[0]
        tone(base / genre / f"{stem}.{'au' if stem == 'blues.00030' else 'wav'}", 0.2)
    (root / "Data" / "features_30_sec.csv").write_text("filename,label\n")
    return root


def test_shipped_filtered_lists():
    lists = ds.read_gtzan_filtered()
    assert Counter(lists.values()) == {"train": 443, "valid": 197, "test": 290}
    assert {stem.split(".")[0] for stem in lists} == set(ds.GTZAN_GENRES)
    assert lists["blues.00029"] == "train" and lists["blues.00000"] == "valid" and lists["jazz.00099"] == "test"
    assert lists["jazz.00054"] == "train" and "jazz.00033" not in lists


def test_gtzan_random(gtzan_tree):
    d = open_dataset(gtzan_tree)
    assert d.kind == "gtzan" and d.genres == ["blues", "classical", "jazz"]
    assert len(d.items) == len(GTZAN_FILES) - 1
    assert d.skipped == {"known corrupt": 1}
    assert all(it.split is None and it.group == it.path.name.rsplit(".", 1)[0] for it in d.items)
    assert any(it.path.suffix == ".au" for it in d.items)
    assert all(len(s) == 1 for s in sides_of_groups(d.splits()).values())


def test_gtzan_filtered(gtzan_tree):
    d = open_dataset(gtzan_tree, gtzan_split="filtered")
    got = {it.path.name.rsplit(".", 1)[0]: it.split for it in d.items}
    assert got == {"blues.00000": "valid", "blues.00012": "test", "blues.00029": "train", "blues.00030": "train",
                   "blues.00098": "test", "jazz.00000": "train", "jazz.00002": "valid", "jazz.00073": "test",
                   "classical.00000": "valid", "classical.00011": "test", "classical.00030": "train"}
    lists = ds.read_gtzan_filtered()
    listed_here = [s for s in lists if s.split(".")[0] in {"blues", "jazz", "classical"}]
    missing = len(listed_here) - len(got) - 1  # jazz.00054 is listed, present, and known corrupt
    assert d.skipped == {"known corrupt": 1, "not in filtered split": 1, "missing file": missing}
    parts = d.splits(seed=5)
    assert [len(parts[s]) for s in ("train", "valid", "test")] == [4, 3, 4]
    # a genre filter also narrows the count of missing files
    dj = open_dataset(gtzan_tree, gtzan_split="filtered", genres=["jazz", "blues"])
    assert dj.skipped["missing file"] == sum(1 for s in lists if s.split(".")[0] in {"blues", "jazz"}) - 8 - 1


def test_gtzan_other_roots(tmp_path):
    for sub in ("genres", ""):
        root = tmp_path / f"r{sub}"
        for stem in ("rock.00001", "pop.00002"):
            tone(root / sub / stem.split(".")[0] / f"{stem}.wav", 0.1)
        assert ds.detect_kind(root) == "gtzan"
        assert open_dataset(root).genres == ["pop", "rock"]
    # GTZAN genre names but other file names: a plain folder collection
    tone(tmp_path / "mine" / "rock" / "song.wav", 0.1)
    tone(tmp_path / "mine" / "pop" / "other.wav", 0.1)
    assert ds.detect_kind(tmp_path / "mine") == "folder"
    # a non-GTZAN genre folder next to GTZAN ones: not GTZAN either
    tone(tmp_path / "mixed" / "rock" / "rock.00001.wav", 0.1)
    tone(tmp_path / "mixed" / "polka" / "polka.00001.wav", 0.1)
    assert ds.detect_kind(tmp_path / "mixed") == "folder"


# ----------------------------------------------------------------------------- errors


def test_errors(tmp_path, gtzan_tree):
    with pytest.raises(GenreError, match="does not exist"):
        open_dataset(tmp_path / "nowhere")
    tone(tmp_path / "file.wav", 0.1)
    with pytest.raises(GenreError, match="is not a folder"):
        open_dataset(tmp_path / "file.wav")
    (tmp_path / "empty" / "jazz").mkdir(parents=True)
    (tmp_path / "empty" / "jazz" / "readme.txt").write_text("x")
    with pytest.raises(GenreError, match="no audio files found in .*empty"):
        open_dataset(tmp_path / "empty")
    tone(tmp_path / "one" / "jazz" / "a.wav", 0.1)
    with pytest.raises(GenreError, match="fewer than 2 genres.*jazz"):
        open_dataset(tmp_path / "one")
    with pytest.raises(GenreError, match=r"genre 'polka' is not in .* \(it has: blues, classical, jazz\)"):
        open_dataset(gtzan_tree, genres=["jazz", "polka"])
    with pytest.raises(GenreError, match="fewer than 2 genres"):
        open_dataset(gtzan_tree, genres=["jazz"])
    with pytest.raises(GenreError, match="unknown dataset kind 'mp3s'"):
        open_dataset(gtzan_tree, "mp3s")
    with pytest.raises(GenreError, match="unknown GTZAN split"):
        open_dataset(gtzan_tree, gtzan_split="sturm")
    with pytest.raises(GenreError, match="no usable audio files found .*not a GTZAN file name 1"):
        open_dataset(tmp_path / "one", "gtzan")
    tone(tmp_path / "nogtzan" / "polka" / "a.wav", 0.1)
    with pytest.raises(GenreError, match="no GTZAN genre folders"):
        open_dataset(tmp_path / "nogtzan", "gtzan")


# ----------------------------------------------------------------------------- seeded splits


def fake_dataset(groups_per_genre: dict[str, int], files_per_group: int = 2) -> AudioDataset:
    items = [AudioItem(path=Path(f"/x/{g}/{g}{k}_{f}.wav"), genre=g, split=None, group=f"{g}/{g}{k}")
             for g, n in groups_per_genre.items() for k in range(n) for f in range(files_per_group)]
    return AudioDataset(root=Path("/x"), kind="folder", items=items, genres=sorted(groups_per_genre), skipped={})


def test_seeded_split_by_group():
    d = fake_dataset({"a": 30, "b": 20}, files_per_group=3)
    parts = d.splits()
    sides = sides_of_groups(parts)
    assert len(sides) == 50 and all(len(s) == 1 for s in sides.values())  # no group on two sides
    assert sum(len(v) for v in parts.values()) == len(d.items)
    n = Counter(next(iter(s)) for s in sides.values())
    assert 33 <= n["train"] <= 46 and 2 <= n["valid"] <= 9 and 2 <= n["test"] <= 9, n
    for genre in ("a", "b"):  # every genre reaches every side
        assert all(any(it.genre == genre for it in parts[s]) for s in parts)
    assert d.splits() == parts  # deterministic
    assert d.splits(seed=1) != parts
    # fractions hold on many groups
    big = fake_dataset({"a": 1200, "b": 800}, files_per_group=1).splits(fractions=(0.6, 0.3, 0.1))
    assert [round(len(big[s]) / 2000, 1) for s in ("train", "valid", "test")] == [0.6, 0.3, 0.1]


def test_seeded_split_is_stable_under_additions():
    d = fake_dataset({"a": 30, "b": 20})
    before = {it: side for side, items in d.splits().items() for it in items}
    extra = [AudioItem(Path("/x/a/new.wav"), "a", None, "a/new"),  # a new group
             AudioItem(Path("/x/b/b3_9.wav"), "b", None, "b/b3")]  # one more file of a group
    d2 = AudioDataset(d.root, d.kind, d.items + extra, d.genres, {})
    after = {it: side for side, items in d2.splits().items() for it in items}
    assert all(after[it] == side for it, side in before.items())
    assert {after[it] for it in d2.items if it.group == "b/b3"} == {before[d.items[66]]}  # b/b3 stays together


def test_seeded_split_small_genre_and_shared_groups():
    d = fake_dataset({"big": 40, "tiny": 3})
    parts = d.splits()
    assert {s for s in parts if any(it.genre == "tiny" for it in parts[s])} == {"train", "valid", "test"}
    # a group with items in two genres stays on one side
    shared = [AudioItem(Path(f"/x/{g}/shared.wav"), g, None, "song-1") for g in ("big", "tiny")]
    d2 = AudioDataset(d.root, d.kind, d.items + shared, d.genres, {})
    assert len(sides_of_groups(d2.splits())["song-1"]) == 1
    # fractions with a zero: that side stays empty
    parts = d.splits(fractions=(0.9, 0.1, 0.0))
    assert parts["test"] == [] and parts["valid"]
    with pytest.raises(GenreError, match="sum to 1"):
        d.splits(fractions=(0.5, 0.2, 0.2))
    with pytest.raises(GenreError, match="three numbers"):
        d.splits(fractions=(1.0, 0.0))


# ----------------------------------------------------------------------------- segments


def test_segment(tmp_path, monkeypatch):
    a = AudioItem(tone(tmp_path / "a.wav", 0.5), "jazz", "train", "s1")
    b = AudioItem(tone(tmp_path / "b.flac", 0.5), "rock", None, "s2")
    pieces = segment([a, b], 0.15)
    assert len(pieces) == 6  # 0, .15, .30 per file; the .05 s tail is dropped
    assert [p.start for p in pieces[:3]] == pytest.approx([0.0, 0.15, 0.30])
    assert all(p.duration == pytest.approx(0.15) for p in pieces)
    assert {(p.genre, p.split, p.group) for p in pieces[:3]} == {("jazz", "train", "s1")}
    assert pieces[3].path == b.path and pieces[3].split is None

    tails = segment([a], 0.15, min_fraction=0.3)  # 0.05 >= 0.3 * 0.15: the tail is kept, and short
    assert len(tails) == 4 and tails[-1].start == pytest.approx(0.45) and tails[-1].duration == pytest.approx(0.05)
    hops = segment([a], 0.2, hop=0.1)  # starts 0, .1, .2, .3; the piece at .3 reaches the end
    assert [p.start for p in hops] == pytest.approx([0.0, 0.1, 0.2, 0.3])
    assert segment([a], 1.0) == [AudioItem(a.path, "jazz", "train", "s1", 0.0, 0.5)]  # 0.5 s of 1 s: kept
    assert segment([a], 1.0, min_fraction=0.6) == []
    # an item that is already a piece: only its own span is cut
    clip = AudioItem(a.path, "jazz", "train", "s1", start=0.1, duration=0.3)
    spans = [x for p in segment([clip], 0.1) for x in (p.start, p.duration)]
    assert spans == pytest.approx([0.1, 0.1, 0.2, 0.1, 0.3, 0.1])

    # lengths are cached per path: soundfile.info is not asked again
    calls = []
    real = soundfile.info
    monkeypatch.setattr(soundfile, "info", lambda p: calls.append(p) or real(p))
    segment([a, b, a], 0.1)
    assert calls == []
    c = AudioItem(tone(tmp_path / "c.wav", 0.22), "pop", None, "s3")  # .1 + .1 + a .02 s tail
    assert len(segment([c, c], 0.1)) == 4 and len(calls) == 1


def test_segment_unreadable_and_bad_arguments(tmp_path):
    good = AudioItem(tone(tmp_path / "ok.wav", 0.2), "jazz", None, "g")
    (tmp_path / "bad.wav").write_bytes(b"this is not audio")
    bad = AudioItem(tmp_path / "bad.wav", "jazz", None, "b")
    with pytest.warns(UserWarning, match="left out 1 unreadable audio file.*bad.wav"):
        assert len(segment([good, bad], 0.1)) == 2
    for kwargs, message in (({"seconds": 0}, "segment length"), ({"seconds": 1, "hop": -1}, "hop"),
                            ({"seconds": 1, "min_fraction": 2}, "min_fraction")):
        with pytest.raises(GenreError, match=message):
            segment([good], **kwargs)


# ----------------------------------------------------------------------------- shared with rendering


class _FakeRenderer:
    """Stands in for FluidSynth: a quiet noise crop, so render-dataset runs without a synthesiser."""

    soundfont = Path("/fake.sf2")

    def render(self, tracks, *, start=0.0, seconds=None, tail=1.0):
        n = int(round(seconds * SR))
        return np.random.default_rng(int(start * 100)).uniform(-0.1, 0.1, (n, 2)).astype(np.float32)


@pytest.fixture
def fake_render(monkeypatch):
    from audiogenre import render

    monkeypatch.setattr(render, "renderer", lambda soundfont=None, rate=None: _FakeRenderer())
    return render


def midi_tree(root: Path, songs: dict[str, list[str]]) -> Path:
    """``root/<genre>/<name>`` MIDI files of 5 s (ten half notes at 120 bpm)."""
    from tests.conftest import make_midi

    for genre, names in songs.items():
        for k, name in enumerate(names):
            (root / genre / name).parent.mkdir(parents=True, exist_ok=True)
            make_midi(root / genre / name, [(i * 480, i * 480 + 400, 50 + (i + k) % 12) for i in range(10)])
    return root


def test_render_dataset_split_is_the_dataset_split(tmp_path, fake_render):
    """render-dataset writes for each song the side a folder of the same songs gets from
    AudioDataset.splits (one hash, ``unit_hash`` + ``side_of``). The seeds are ones where every
    genre has a song on every side: otherwise AudioDataset.splits moves a song to stratify, which
    render-dataset does not do."""
    songs = {g: [f"song{k:02d}.mid" for k in range(30)] for g in ("low", "high")}
    midi = midi_tree(tmp_path / "midi", songs)
    for seed in (7, 13):
        out = tmp_path / f"audio{seed}"
        man = fake_render.render_dataset(midi, out, clips_per_genre=30, seconds=1.0, seed=seed, rate=SR,
                                         progress=False)
        assert len(man["clips"]) == 60 and man["kind"] == ds.MANIFEST_KIND and man["format"] == ds.MANIFEST_FORMAT
        written = {c["song"]: c["split"] for c in man["clips"]}
        assert written == {s: ds.side_of(ds.unit_hash(seed, s), (0.8, 0.1, 0.1)) for s in written}
        assert all({s for g2, s in written.items() if g2.startswith(g)} == set(ds.SPLITS) for g in songs)

        # the manifest read back: its official split is the one written
        d = open_dataset(out)
        assert d.has_official_split and {it.group: it.split for it in d.items} == written

        # the same songs without a written split: the seeded split of the data set agrees song by song
        bare = ds.read_manifest(out)
        for c in bare["clips"]:
            del c["split"]
        ds.write_manifest(out, bare["clips"])
        d = open_dataset(out)
        assert not d.has_official_split
        side = {it.group: s for s, part in d.splits(seed=seed).items() for it in part}
        assert side == written


def test_smf_and_every_midi_suffix_found_by_render_dataset_and_prepare_alike(tmp_path, fake_render):
    from midigenre.prepare import MIDI_SUFFIXES, find_midi_files

    assert ".smf" in MIDI_SUFFIXES and fake_render.MIDI_SUFFIXES is MIDI_SUFFIXES
    midi = midi_tree(tmp_path / "midi", {"jazz": ["a.mid", "b.smf", "sub/c.MIDI", "d.kar", "e.SMF"],
                                         "pop": ["f.midi", "g.smf"]})
    (midi / "jazz" / "notes.txt").write_text("not MIDI")
    (midi / "pop" / "h.wav").write_bytes(b"RIFF")
    by_genre = fake_render.midi_files_by_genre(midi)
    for genre, files in by_genre.items():
        assert {p.resolve() for p in files} == {p for p, _ in find_midi_files([midi / genre])}
    assert sorted(p.name for p in by_genre["jazz"]) == ["a.mid", "b.smf", "c.MIDI", "d.kar", "e.SMF"]

    man = fake_render.render_dataset(midi, tmp_path / "audio", clips_per_genre=2, seconds=1.0, rate=SR,
                                     max_clips_per_song=1, progress=False)
    assert man["skipped"] == {}  # every suffix is read, .smf and .kar too
    songs = {c["song"] for c in man["clips"]}
    assert len(songs) == 4 and {"pop/f.midi", "pop/g.smf"} <= songs

    from midigenre.phrases import is_midi_path as _is_midi_path

    assert all(_is_midi_path(f"x{s}") and _is_midi_path(f"x{s.upper()}") for s in MIDI_SUFFIXES)
    assert not _is_midi_path("x.wav") and not _is_midi_path("x.h5")


def test_manifest_writer_and_reader_agree(tmp_path):
    clips = [ds.manifest_clip("a/x.wav", "a", "a/x.mid", 1.5, "train"),
             ds.manifest_clip("b/y.wav", "b", "b/y.mid", 0.0, None)]
    tone(tmp_path / "a" / "x.wav")
    tone(tmp_path / "b" / "y.wav")
    man = ds.write_manifest(tmp_path, clips, seed=3, seconds=1.0)
    assert list(man) == ["format", "kind", "seed", "seconds", "clips"]
    assert ds.read_manifest(tmp_path) == man == json.loads((tmp_path / ds.MANIFEST_NAME).read_text())
    d = open_dataset(tmp_path)
    assert [(it.genre, it.split, it.group) for it in d.items] == [("a", "train", "a/x.mid"), ("b", None, "b/y.mid")]


def test_dataset_kinds_constant():
    from cli.audio import DATASET_KINDS

    assert tuple(DATASET_KINDS.choices) == ds.DATASET_KINDS == ("auto",) + ds.KINDS  # the CLI reads the library's
    for kind in ds.KINDS:
        assert kind in ds.open_dataset.__doc__


def test_side_of_never_gives_a_side_without_share():
    assert ds.side_of(0.95, (0.7, 0.2, 0.1)) == "test"
    assert ds.side_of(0.9999999, (0.7, 0.2999999, 0.0)) == "valid"  # the rounding sliver
    assert ds.side_of(0.9999999, (0.9999999, 0.0, 0.0)) == "train"
    assert 0 <= ds.unit_hash(24, "jazz/a.mid") < 1 and ds.unit_hash(24, "x") == ds.unit_hash(24, "x")
