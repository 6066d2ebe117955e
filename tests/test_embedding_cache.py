"""The embedding cache: its key (encoder identity + preprocessing), the shared cache scheme, old
files, damaged files, and where the cache goes when the data set folder is read-only."""

from __future__ import annotations

import errno
import logging
import os
from pathlib import Path

import h5py
import numpy as np
import pytest
import soundfile as sf

from audiogenre import audio as A
from audiogenre.datasets import open_dataset
from audiogenre.embeddings import CACHE_KIND, EmbeddingCache, cache_settings, default_cache_folder, encode_items
from audiogenre.models import Wav2Vec2Backend, make_random_wav2vec2
from shared.cache import SCHEMA_VERSION, CacheUnreadable, read_header
from shared.errors import GenreError

RATE = 16000
PRE = A.Preprocess(seconds=0.5)


@pytest.fixture(scope="module")
def encoders(tmp_path_factory):
    """Two tiny wav2vec2 encoders with the same architecture and other weights."""
    root = tmp_path_factory.mktemp("enc")
    return [Wav2Vec2Backend.from_pretrained(str(make_random_wav2vec2(root / f"e{s}", size="tiny", seed=s)))
            for s in (0, 1)]


@pytest.fixture(scope="module")
def audio_set(tmp_path_factory):
    root = tmp_path_factory.mktemp("audio") / "set"
    for g, f0 in (("low", 110.0), ("high", 880.0)):
        for k in range(3):
            t = np.arange(int(0.5 * RATE)) / RATE
            (root / g).mkdir(parents=True, exist_ok=True)
            sf.write(root / g / f"{k}.wav", (0.3 * np.sin(2 * np.pi * f0 * (k + 1) * t)).astype(np.float32), RATE)
    return root


def counting(backend):
    calls = []
    handle = backend.register_forward_hook(lambda m, i, o: calls.append(i[0].shape[0]))
    return calls, handle


def test_other_weights_or_preprocessing_make_another_cache_and_nothing_stale_is_read(encoders, audio_set,
                                                                                     tmp_path, caplog):
    a, b = encoders
    items = open_dataset(audio_set).items
    assert a.identity() != b.identity()
    cache_a = EmbeddingCache.in_folder(tmp_path, a.describe(), PRE)
    emb_a, ok = encode_items(a, items, PRE, cache=cache_a, progress=False)
    assert ok == list(range(6)) and len(cache_a) == 6
    bytes_a = cache_a.path.read_bytes()

    # other weights: another file, encoded afresh, and the first file untouched
    cache_b = EmbeddingCache.in_folder(tmp_path, b.describe(), PRE)
    assert cache_b.path != cache_a.path and len(cache_b) == 0
    calls, h = counting(b)
    emb_b, _ = encode_items(b, items, PRE, cache=cache_b, progress=False)
    h.remove()
    assert sum(calls) == 6 and not np.allclose(emb_a, emb_b)
    assert cache_a.path.read_bytes() == bytes_a

    # other preprocessing (length, offset, or a new decoder / resampler version): another file
    names = {EmbeddingCache.file_name(a.describe(), p) for p in
             (PRE, A.Preprocess(seconds=0.25), A.Preprocess(seconds=0.5, offset=0.1))}
    assert len(names) == 3
    import soxr

    real = soxr.__version__
    try:
        soxr.__version__ = real + ".other"
        assert EmbeddingCache.file_name(a.describe(), PRE) != cache_a.path.name
    finally:
        soxr.__version__ = real

    # a file of another encoder under this name (as if the short name collided): not read
    forged = tmp_path / "forged"
    forged.mkdir()
    (forged / cache_a.path.name).write_bytes(cache_b.path.read_bytes())
    with caplog.at_level(logging.WARNING):
        stale = EmbeddingCache.in_folder(forged, a.describe(), PRE)
    assert len(stale) == 0 and "another encoder or preprocessing" in caplog.text
    calls, h = counting(a)
    again, _ = encode_items(a, items, PRE, cache=stale, progress=False)
    h.remove()
    assert sum(calls) == 6 and np.allclose(again, emb_a, atol=1e-6)  # a's embeddings, none of b's
    assert read_header(stale.path).settings_hash == cache_settings(a.describe(), PRE)[1]  # now a's file
    # other preprocessing under this name: not read either
    assert len(EmbeddingCache(cache_a.path, a.describe(), A.Preprocess(seconds=0.25))) == 0


def test_cache_file_follows_the_shared_scheme(encoders, audio_set, tmp_path):
    a = encoders[0]
    cache = EmbeddingCache.in_folder(tmp_path, a.describe(), PRE)
    encode_items(a, open_dataset(audio_set).items[:2], PRE, cache=cache, progress=False)
    h = read_header(cache.path, kind=CACHE_KIND)
    settings, digest = cache_settings(a.describe(), PRE)
    assert h.schema_version == SCHEMA_VERSION and h.settings_hash == digest and h.settings == settings
    assert h.settings["backend_identity"] == a.identity() and h.settings["preprocess_key"] == PRE.key()
    assert h.package_version not in ("", "?") and h.created not in ("", "?")
    with h5py.File(cache.path, "r") as f:
        assert f["keys"].shape == (2,) and f["emb"].shape == (2, a.dim)
        assert f.attrs["backend_identity"] == a.identity() and int(f.attrs["dim"]) == a.dim
    assert sorted(p.name for p in tmp_path.iterdir()) == [cache.path.name]  # no temporary files


def test_cache_written_before_the_shared_scheme_is_still_read(encoders, tmp_path):
    a = encoders[0]
    info = a.describe()
    path = tmp_path / EmbeddingCache.file_name(info, PRE)
    emb = np.arange(2 * a.dim, dtype=np.float32).reshape(2, a.dim)
    with h5py.File(path, "w") as f:  # the layout of the earlier toolkit: no settings / settings_hash
        f.attrs["kind"] = CACHE_KIND
        f.attrs["schema_version"] = 1
        f.attrs["backend_identity"] = info["identity"]
        f.attrs["preprocess_key"] = PRE.key()
        f.attrs["dim"] = a.dim
        f.create_dataset("keys", data=np.array(["a" * 40, "b" * 40], dtype="S40"))
        f.create_dataset("emb", data=emb)
    cache = EmbeddingCache(path, info, PRE)
    assert len(cache) == 2 and np.array_equal(cache.get(["b" * 40]), emb[1:])
    assert len(EmbeddingCache(path, encoders[1].describe(), PRE)) == 0  # its identity still decides
    assert len(EmbeddingCache(path, info, A.Preprocess(seconds=0.25))) == 0


def test_damaged_cache_is_rebuilt_and_another_kind_refused(encoders, tmp_path, caplog):
    a = encoders[0]
    path = tmp_path / EmbeddingCache.file_name(a.describe(), PRE)
    path.write_bytes(b"\x89HDF\r\n\x1a\n" + bytes(200))  # an HDF5 signature and nothing after it
    with caplog.at_level(logging.WARNING):
        cache = EmbeddingCache(path, a.describe(), PRE)
    assert len(cache) == 0 and "will be rebuilt" in caplog.text
    cache.put("k" * 40, np.ones(a.dim))
    cache.flush()
    assert len(EmbeddingCache(path, a.describe(), PRE)) == 1
    other = tmp_path / "phrases.h5"
    with h5py.File(other, "w") as f:
        f.attrs["kind"] = "midi-phrases"
        f.attrs["schema_version"] = 1
    with pytest.raises(GenreError, match="not an audio embedding cache"):
        EmbeddingCache(other, a.describe(), PRE)


@pytest.fixture
def home(tmp_path, monkeypatch):
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    return home


def read_only(root: Path, monkeypatch, how: str) -> None:
    """Make ``root`` unwritable: by its mode, or (as root, who ignores modes) as a read-only file system."""
    if how == "mode":
        root.chmod(0o555)
        if os.access(root, os.W_OK):
            root.chmod(0o755)
            pytest.skip("the folder mode does not stop this user (root) from writing")
        return
    real_mkdir, real_write = Path.mkdir, Path.write_bytes

    def refuse(p: Path) -> None:
        if Path(p).resolve().is_relative_to(root.resolve()):
            raise OSError(errno.EROFS, os.strerror(errno.EROFS), str(p))

    monkeypatch.setattr(Path, "mkdir", lambda self, *a, **k: refuse(self) or real_mkdir(self, *a, **k))
    monkeypatch.setattr(Path, "write_bytes", lambda self, data: refuse(self) or real_write(self, data))


@pytest.mark.parametrize("how", ["mode", "read-only file system"])
def test_cache_folder_falls_back_to_the_home_cache(encoders, audio_set, tmp_path, home, monkeypatch, how):
    import shutil

    root = tmp_path / "data"
    shutil.copytree(audio_set, root)
    assert default_cache_folder(root) == root / ".genre-cache"  # writable: next to the data
    shutil.rmtree(root / ".genre-cache")

    read_only(root, monkeypatch, how)
    try:
        folder = default_cache_folder(root)
        assert folder == home / ".cache" / "genre-transfer" and folder.is_dir()
        a = encoders[0]
        cache = EmbeddingCache.in_folder(folder, a.describe(), PRE)
        encode_items(a, open_dataset(root).items, PRE, cache=cache, progress=False)
        assert cache.path.parent == folder and len(EmbeddingCache.in_folder(folder, a.describe(), PRE)) == 6
        assert not (root / ".genre-cache").exists()
        monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
        assert default_cache_folder(root) == tmp_path / "xdg" / "genre-transfer"
        # nowhere to write: one clear error
        monkeypatch.setenv("XDG_CACHE_HOME", str(audio_set / "low" / "0.wav"))  # a file, not a folder
        with pytest.raises(GenreError, match="cannot write an embedding cache in .* nor in"):
            default_cache_folder(root)
    finally:
        root.chmod(0o755)


@pytest.mark.parametrize("attr, value", [("settings", "{not json"), ("settings", "[1, 2]"), ("schema_version", "one")])
def test_damaged_header_is_one_clear_error(tmp_path, attr, value):
    path = tmp_path / "c.h5"
    with h5py.File(path, "w") as f:
        f.attrs.update({"kind": CACHE_KIND, "schema_version": 1, "settings": "{}", "settings_hash": "x"})
        f.attrs[attr] = value
    with pytest.raises(CacheUnreadable, match="damaged root attributes"):
        read_header(path)
    with pytest.raises(GenreError, match="not a readable HDF5 file"):
        read_header(Path(__file__))
