"""Sharded preparation (--shard I/N) and merge: N shards merged give the cache of one run."""

from __future__ import annotations

import numpy as np
import pytest
from click.testing import CliRunner

from cli.main import main
from midigenre.dataset import PhraseCache
from midigenre.pianoroll import RollSettings
from midigenre.prepare import find_midi_files, in_shard, prepare


def _tables(path, genre):
    with PhraseCache(path) as c:
        return (c.files(genre), c.dropped(genre), c.phrases(genre, slice(None)), c.phrase_file(genre),
                c.phrase_index(genre))


def _split_apart(names, a, b):
    """A number of shards that puts files ``a`` and ``b`` into different shards."""
    for n in range(2, 9):
        if next(i for i in range(1, n + 1) if in_shard(a, i, n)) != next(i for i in range(1, n + 1) if in_shard(b, i, n)):
            return n
    raise AssertionError("no such split")


def test_shards_merged_equal_one_run(song_folder, tmp_path):
    names = [name for _, name in find_midi_files([song_folder])]
    n = _split_apart(names, "a.mid", "copy_of_a.mid")  # the duplicate pair lands in two shards
    one = tmp_path / "one.h5"
    prepare([song_folder], "x", one)
    shards = []
    for i in range(1, n + 1):
        shards.append(tmp_path / f"s{i}.h5")
        rep = prepare([song_folder], "x", shards[-1], shard=(i, n))
        assert rep.shard == f"{i}/{n}"
    counts = [len(_tables(s, "x")[0]["path"]) + len(_tables(s, "x")[1]["path"]) for s in shards]
    assert sum(counts) == len(names)  # every file in exactly one shard
    result = CliRunner().invoke(main, ["midi", "merge", *map(str, shards), "-o", str(tmp_path / "all.h5")])
    assert result.exit_code == 0, result.output
    assert "across inputs" in result.output  # the copy was kept by its shard, dropped by the merge
    for want, got in zip(_tables(one, "x"), _tables(tmp_path / "all.h5", "x")):
        if isinstance(want, dict):
            assert want.keys() == got.keys()
            for k in want:
                assert np.array_equal(want[k], got[k]), k
        else:
            assert np.array_equal(want, got)
    with PhraseCache(one) as c:
        assert "duplicate" in set(c.dropped("x")["reason"])


def test_merge_refuses_what_does_not_belong_together(song_folder, tmp_path):
    a, b, c = tmp_path / "a.h5", tmp_path / "b.h5", tmp_path / "c.h5"
    prepare([song_folder], "x", a, shard=(1, 2))
    prepare([song_folder], "x", b, RollSettings(meter="lenient"), shard=(2, 2))
    prepare([song_folder], "x", c, shard=(1, 3))
    run = CliRunner()
    for args, words in ((["midi", "merge", str(a), str(b)], "other settings"),
                        (["midi", "merge", str(a), str(a)], "given twice"),
                        (["midi", "merge", str(a), str(c)], "in both"),
                        (["midi", "merge", str(a), "-o", str(a)], "overwrite the input")):
        res = run.invoke(main, args + ([] if "-o" in args else ["-o", str(tmp_path / "m.h5")]))
        assert res.exit_code == 1 and words in res.output and "Traceback" not in res.output, (args, res.output)
        assert len([x for x in res.output.split("\n") if x and "\r" not in x]) == 1  # a bar's line aside
    assert not (tmp_path / "m.h5").exists()
    with pytest.raises(Exception, match="I/N"):
        from midigenre.prepare import check_shard

        check_shard("3")
