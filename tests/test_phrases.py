"""Phrase selection (midigenre.phrases), the panel layout and pictures (midigenre.plots, shared.plotting)."""

import subprocess
import sys

import numpy as np
import pytest

from midigenre.pianoroll import RollSettings
from midigenre.plots import MAX_LINES, layout_panels, plot_attribution, plot_phrases
from midigenre.phrases import Phrase, Selection, is_midi_path, parse_indices, select_phrases
from shared.errors import GenreError
from tests.conftest import make_midi, random_grid_notes

PNG = b"\x89PNG\r\n\x1a\n"


def test_parse_indices():
    assert parse_indices(["3", "0:3", "1,4, 9", ":2"]) == [3, 0, 1, 2, 1, 4, 9, 0, 1]
    assert parse_indices([]) == [] and parse_indices(["2:2"]) == []
    with pytest.raises(GenreError, match="bad index range"):
        parse_indices(["x:y"])
    with pytest.raises(GenreError, match="bad index 'a'"):
        parse_indices(["1,a"])


def test_is_midi_path():
    assert is_midi_path("x.MID") and is_midi_path("a/b.smf") and is_midi_path("k.kar") and not is_midi_path("c.h5")


@pytest.fixture
def long_song(tmp_path):
    path = tmp_path / "long.mid"
    make_midi(path, random_grid_notes(np.random.default_rng(3), 24, n=200))  # 24 bars: 6 phrases
    return path


def test_select_from_a_midi_file(long_song):
    sel = select_phrases(long_song)
    assert [p.number for p in sel.items] == [0, 1, 2, 3] and sel.song == "long.mid"
    assert sel.items[1].title == "long.mid, phrase 1" and sel.phrases.shape == (4, 64, 84)
    assert sel.tempo == pytest.approx(120.0) and sel.settings.meter == "assume-4/4"
    assert len(select_phrases(long_song, whole_midi=True).items) == 6
    assert list(select_phrases(long_song, index=["5,0"]).numbers) == [5, 0]
    with pytest.raises(GenreError, match="phrase 6 is out of range: long.mid has 6 phrases"):
        select_phrases(long_song, index=["6"])
    with pytest.raises(GenreError, match="for a MIDI file use --index"):
        select_phrases(long_song, song="0")
    with pytest.raises(GenreError, match="not both"):
        select_phrases(long_song, index=["0"], song="0")
    with pytest.raises(GenreError, match="no phrases selected"):
        select_phrases(long_song, index=["2:2"])


def test_select_from_a_cache(song_folder, tmp_path):
    from midigenre.dataset import PhraseCache
    from midigenre.prepare import prepare

    cache = tmp_path / "c.h5"
    prepare([song_folder / "a.mid", song_folder / "b.mid"], "jazz", cache)
    with PhraseCache(cache) as c:
        n = c.n_phrases("jazz")
        expect = c.phrases("jazz", [1, 0])
        song_b, pos_b, tempo_b, _ = c.song("jazz", "b.mid")
    rows = select_phrases(cache, index=["1", "0"])
    assert rows.song is None and [p.title.split(":")[0] for p in rows.items] == ["jazz #1", "jazz #0"]
    np.testing.assert_array_equal(rows.phrases, expect)
    song = select_phrases(cache, song="b.mid")
    assert song.song == "jazz: b.mid" and song.tempo == pytest.approx(tempo_b)
    np.testing.assert_array_equal(song.phrases, song_b)
    np.testing.assert_array_equal(song.numbers, pos_b)
    with pytest.raises(GenreError, match=f"phrase row {n} is out of range"):
        select_phrases(cache, index=[str(n)])
    with pytest.raises(GenreError, match="out of range"):
        select_phrases(cache, index=["-1"])
    prepare([song_folder / "nested"], "pop", cache)
    with pytest.raises(GenreError, match="several genres"):
        select_phrases(cache)
    assert select_phrases(cache, genre="pop").items[0].title.startswith("pop #0")


def _selection(numbers, song="s.mid", seed=0):
    rng = np.random.default_rng(seed)
    items = [Phrase(f"{song or 'row'}, phrase {n}", rng.random((64, 84)) > 0.97, n) for n in numbers]
    return Selection(items, RollSettings(), 100.0, song=song)


def test_rows_get_one_panel_each():
    sel = _selection([5, 0], song=None)
    panels = layout_panels(sel)
    assert [p.name for p in panels] == ["row, phrase 5", "row, phrase 0"]
    assert [(p.first_bar, p.last_bar) for p in panels] == [(21, 24), (1, 4)] and [p.rows for p in panels] == [[0], [1]]
    np.testing.assert_array_equal(panels[0].roll, sel.items[0].roll)


def test_a_song_is_laid_out_in_lines_of_four_places_with_gaps():
    sel = _selection([1, 2, 6])
    maps = np.random.default_rng(1).random((3, 64, 84)).astype(np.float32)
    panels = layout_panels(sel, overlays=maps)
    assert [list(p.places) for p in panels] == [[1, 2, 3, 4], [5, 6]]
    assert [(p.first_bar, p.last_bar) for p in panels] == [(5, 20), (21, 28)]
    assert [p.rows for p in panels] == [[0, 1], [2]] and panels[0].name == "s.mid"
    first, second = panels
    assert first.roll.shape == (4 * 64, 84) and second.roll.shape == (2 * 64, 84)
    np.testing.assert_array_equal(first.roll[:64], sel.items[0].roll)
    np.testing.assert_array_equal(first.roll[64:128], sel.items[1].roll)
    assert not first.roll[128:].any() and not second.roll[:64].any()  # places 3, 4 and 5 are silent gaps
    np.testing.assert_array_equal(second.roll[64:], sel.items[2].roll)
    np.testing.assert_array_equal(second.overlay[64:], maps[2])
    assert not second.overlay[:64].any()


def test_plot_phrases_draws_at_most_twelve_lines_of_a_song(tmp_path, monkeypatch):
    # drawn: 3 lines of a song with max_lines=2, and 3 cache rows (never capped)
    drawing = plot_phrases(_selection(list(range(4 * 2 + 3))), tmp_path / "song.png", max_lines=2)
    assert drawing.total == 3 and len(drawing.panels) == 2
    assert drawing.path.read_bytes()[:8] == PNG
    rows = plot_phrases(_selection(range(3), song=None), tmp_path / "rows.png", max_lines=2)
    assert rows.total == len(rows.panels) == 3 and rows.path.read_bytes()[:8] == PNG
    # the default, laid out only (matplotlib needs ~5 s for 12 tall panels)
    import midigenre.plots

    drawn = []
    monkeypatch.setattr(midigenre.plots, "_draw", lambda panels, titles, path, settings: drawn.append(len(panels)) or path)
    assert MAX_LINES == 12
    drawing = plot_phrases(_selection(list(range(4 * MAX_LINES + 3))), tmp_path / "song.png")
    assert drawing.total == MAX_LINES + 1 and len(drawing.panels) == MAX_LINES
    rows = plot_phrases(_selection(range(14), song=None), tmp_path / "rows.png")  # cache rows: every one
    assert rows.total == len(rows.panels) == 14 and drawn == [MAX_LINES, 14]


class _Classifier:
    def index(self, genre):
        if genre != "jazz":
            raise GenreError(f"unknown genre {genre!r}")
        return 1

    def probabilities(self, x):
        p = np.linspace(0.1, 0.9, len(x))
        return np.stack([1 - p, p], 1)


def test_plot_attribution_titles_and_gaps(tmp_path, monkeypatch):
    import midigenre.attribution

    monkeypatch.setattr(midigenre.attribution, "attribute", lambda clf, x, genre, method: np.asarray(x, np.float32))
    ex = plot_attribution(_selection([0, 2]), _Classifier(), "jazz", tmp_path / "a.png")
    assert ex.path.read_bytes()[:8] == PNG and ex.total == 1
    assert list(ex.probabilities) == pytest.approx([0.1, 0.9])
    rows = plot_attribution(_selection([3, 1], song=None), _Classifier(), "jazz", tmp_path / "b.png")
    assert rows.total == 2 and rows.panels[0].first_bar == 13
    with pytest.raises(GenreError, match="unknown genre"):
        plot_attribution(_selection([0]), _Classifier(), "rock", tmp_path / "c.png")


def test_explain_titles_show_p_per_place(tmp_path, monkeypatch):
    import midigenre.attribution
    import shared.plotting

    monkeypatch.setattr(midigenre.attribution, "attribute", lambda clf, x, genre, method: np.asarray(x, np.float32))
    seen = {}
    monkeypatch.setattr(shared.plotting, "plot_rolls", lambda panels, path, **kw: seen.update(panels=panels, **kw) or path)
    plot_attribution(_selection([0, 2]), _Classifier(), "jazz", tmp_path / "a.png")
    assert [t for t, _ in seen["panels"]] == ["s.mid, phrases 0–2: P(jazz) = 0.10, –, 0.90"]
    assert seen["first_bars"] == [1] and len(seen["overlays"]) == 1
    plot_phrases(_selection([4]), tmp_path / "b.png")
    assert [t for t, _ in seen["panels"]] == ["s.mid, bars 17–20"] and seen["overlays"] is None


def test_plots_leave_the_matplotlib_backend_alone(tmp_path):
    code = f"""
import sys, matplotlib
matplotlib.use("svg")
import numpy as np
from shared.plotting import plot_grid, plot_rolls
from shared.classification import plot_confusion
plot_rolls([("a", np.zeros((64, 84), bool))], {str(tmp_path / 'a.png')!r})
plot_grid([[np.zeros((64, 84))]], [["t"]], {str(tmp_path / 'b.png')!r})
plot_confusion({{"confusion": [[1, 0], [0, 1]], "genres": ["x", "y"], "accuracy": 1.0}}, {str(tmp_path / 'c.png')!r})
print(matplotlib.rcParams["backend"], "matplotlib.pyplot" in sys.modules)
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out == ["svg", "False"]
    for name in "abc":
        assert (tmp_path / f"{name}.png").read_bytes()[:8] == PNG
