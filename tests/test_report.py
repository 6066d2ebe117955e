"""``genre report``: listening pages for a CycleGAN, for ``genre audio transform`` outputs and for
transcription-bridge folders — the folder, its numbers against the library, bad input, and the
page opened in headless Chromium."""

from __future__ import annotations

import json
import os
import re
import shutil
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from cli.main import main
from shared.errors import GenreError
from shared.registry import read_meta
from tests.conftest import REPO, make_midi, random_grid_notes
from tests.test_audio import fluidsynth_ready, needs_fluidsynth




# ----------------------------------------------------------------------------- reading a page


class _Page(HTMLParser):
    """What a test checks in a page: the html tag's lang, images, audio players, ids, metrics."""

    def __init__(self):
        super().__init__()
        self.lang, self.images, self.audio, self.ids, self.metrics, self.scripts = None, [], [], set(), [], 0
        self._metric, self._text = None, []

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if "id" in a:
            self.ids.add(a["id"])
        if tag == "html":
            self.lang = a.get("lang")
        elif tag == "img":
            self.images.append(a)
        elif tag == "audio":
            self.audio.append(a)
        elif tag == "script":
            self.scripts += 1
        if "data-metric" in a:
            self._metric, self._text = (a["data-metric"], float(a.get("data-scale", 1))), []

    def handle_data(self, data):
        if self._metric is not None:
            self._text.append(data)

    def handle_endtag(self, tag):
        if self._metric is not None and tag in ("td", "strong", "span"):
            self.metrics.append((*self._metric, "".join(self._text)))
            self._metric = None


def read_page(folder: Path) -> _Page:
    p = _Page()
    p.feed((folder / "index.html").read_text(encoding="utf-8"))
    return p


def check_metrics(metrics, report: dict) -> int:
    """Every shown number equals report.json's value at its key, to the digits shown; returns how many."""
    from shared.listening import lookup

    for key, scale, text in metrics:
        value = lookup(report, key)
        if value is None:
            assert text == "—", (key, text)
            continue
        m = re.match(r"^-?\d+(\.(\d+))?", text.strip())
        assert m, (key, text)
        decimals = len(m.group(2) or "")
        assert abs(float(m.group(0)) - value * scale) <= 0.5 * 10 ** -decimals + 1e-9, (key, text, value)
    return len(metrics)


def check_page_files(folder: Path, report: dict) -> _Page:
    """The page in ``folder`` is self-contained, labelled and agrees with report.json."""
    page = read_page(folder)
    assert page.lang == "en" and page.scripts == 0
    assert page.images and all(i.get("alt") and (folder / i["src"]).is_file() for i in page.images)
    assert page.audio and all((folder / a["src"]).is_file() and a.get("aria-labelledby") in page.ids for a in page.audio)
    assert check_metrics(page.metrics, report) > 0
    html = (folder / "index.html").read_text(encoding="utf-8")
    assert "http://" not in html and "https://" not in html  # nothing fetched from elsewhere
    return page


def page_song_numbers(folder: Path) -> list[dict]:
    """Per song on the page (in order): its direction, bars and every number it shows, read from
    index.html alone: ``{"source", "target", "first_bar", "last_bar", "numbers": {key: [(scale, text)]}}``
    (key without the ``songs.N.metrics.`` prefix; the glance table and the song's own tables both)."""
    html = (folder / "index.html").read_text(encoding="utf-8")
    heads = re.findall(r'<h3 id="song-(\d+)-h">\d+\. .*?: (.+?) → (.+?)</h3>'
                       r'<p class="muted">[^<]*?· bars (\d+)–(\d+) of', html)
    songs = [{"source": src, "target": dst, "first_bar": int(a), "last_bar": int(b), "numbers": {}}
             for _, src, dst, a, b in heads]
    assert [int(h[0]) for h in heads] == list(range(1, len(songs) + 1))
    for key, scale, text in read_page(folder).metrics:
        m = re.match(r"^songs\.(\d+)\.metrics\.(.+)$", key)
        if m:
            songs[int(m.group(1))]["numbers"].setdefault(m.group(2), []).append((scale, text))
    return songs


#: Numbers a page shows that are seeded baselines (midigenre.baselines.random_edit), not measures of the transfer.
BASELINES = {"p_target.random_edit", "harmony_random_edit"}


def library_numbers(song, model, target: str, max_bars: int, classifier=None, source_genre: str | None = None) -> dict:
    """What the library says of the bars a report plays of ``song``, computed without the report:
    the whole-song transfer ``genre midi transfer`` makes (:func:`midigenre.transfer.transfer_midi`,
    cycled back), cut to the excerpt (``max_bars`` bars from the first phrase with notes), measured
    with :mod:`midigenre.metrics`, and P(target) of the excerpt's phrases with notes by
    ``classifier`` (the judge the report was given). ``model``: a loaded model or its name; a
    pair's song is of its other genre, a multi-genre model's is told by the model."""
    from midigenre.metrics import (content_added, content_change, content_change_transposed, content_removed,
                                   harmony_kept, melody_kept)
    from midigenre.pianoroll import split_phrases
    from midigenre.transfer import GenreTransfer, transfer_midi

    model = model if isinstance(model, GenreTransfer) else GenreTransfer.load(model)
    if source_genre is None and model.kind == "cyclegan":  # a pair's song comes from its other genre
        source_genre = model.direction(target)[0]
    whole = transfer_midi(song, model, target, cycle=True, source_genre=source_genre)
    s = whole.settings
    first = int(np.flatnonzero(split_phrases(whole.source, s, keep_empty=True, pad_tail=True)[0].any(axis=(1, 2)))[0])
    assert max_bars * s.steps_per_bar / s.steps_per_beat * 60 / whole.tempo <= 30  # the excerpt is max_bars long
    start = first * s.phrase_steps
    steps = min(max_bars * s.steps_per_bar, len(whole.source) - start)
    x, y, z = (v[start:start + steps] for v in (whole.source, whole.transferred, whole.cycled))
    mel = whole.melody[start:start + steps]
    sounding, top = melody_kept(mel, y) if mel.any() else (None, None)
    out = {"source": whole.source_genre, "target": whole.target_genre, "first_bar": first * s.bars_per_phrase + 1,
           "last_bar": first * s.bars_per_phrase + -(-steps // s.steps_per_bar),
           "numbers": {"content_change": content_change(x, y), "added": content_added(x, y),
                       "removed": content_removed(x, y), "transposition_invariant": content_change_transposed(x, y),
                       "cycle_content_change": content_change(x, z), "harmony": harmony_kept(x, y),
                       "melody_sounding": sounding, "melody_top": top}}
    if classifier is not None:
        n = -(-steps // s.phrase_steps) * s.phrase_steps  # whole phrases, as the classifier reads them
        phrases = {k: split_phrases(np.pad(v[:n], ((0, n - len(v[:n])), (0, 0))), s, keep_empty=True)[0]
                   for k, v in (("source", x), ("transferred", y), ("cycled", z))}
        keep = phrases["source"].any(axis=(1, 2))
        it = classifier.index(target)
        for k, v in phrases.items():
            out["numbers"][f"p_target.{k}"] = float(classifier.probabilities(v[keep])[:, it].mean())
    return out


def check_page_against_library(folder: Path, expected: list[dict]) -> None:
    """Every song's direction, bars and shown number on the page (read from index.html, not
    report.json) equal ``expected`` (:func:`library_numbers` of each song), to the digits shown;
    every number shown is checked, except the seeded baselines."""
    shown = page_song_numbers(folder)
    assert len(shown) == len(expected) > 0
    for page, lib in zip(shown, expected):
        assert {k: page[k] for k in ("source", "target", "first_bar", "last_bar")} == \
            {k: lib[k] for k in ("source", "target", "first_bar", "last_bar")}
        assert set(page["numbers"]) - BASELINES == set(lib["numbers"]), sorted(page["numbers"])
        for key, texts in page["numbers"].items():
            if key in BASELINES:
                continue
            value = lib["numbers"][key]
            for scale, text in texts:
                if value is None or not np.isfinite(value):
                    assert text == "—", (key, text, value)
                    continue
                m = re.match(r"^-?\d+(\.(\d+))?", text.strip())
                assert m, (key, text)
                decimals = len(m.group(2) or "")
                assert abs(float(m.group(0)) - value * scale) <= 0.5 * 10 ** -decimals + 1e-9, (key, text, value)


# ----------------------------------------------------------------------------- helpers and the folder


def test_atomic_folder_replaces_a_report_and_refuses_other_folders(tmp_path):
    from shared.atomic import atomic_folder

    out = tmp_path / "rep"
    with atomic_folder(out, marker="report.json") as tmp:
        (tmp / "report.json").write_text("{}")
        (tmp / "old.txt").write_text("old")
    with atomic_folder(out, marker="report.json") as tmp:
        (tmp / "report.json").write_text("{}")
    assert sorted(p.name for p in out.iterdir()) == ["report.json"]  # replaced whole, not merged
    with pytest.raises(RuntimeError), atomic_folder(out, marker="report.json") as tmp:
        (tmp / "report.json").write_text('{"half": 1}')
        raise RuntimeError("interrupted")
    assert (out / "report.json").read_text() == "{}" and [p.name for p in tmp_path.iterdir()] == ["rep"]
    other = tmp_path / "mine"
    other.mkdir()
    (other / "thesis.tex").write_text("x")
    with pytest.raises(GenreError, match="other files in it"), atomic_folder(other, marker="report.json"):
        pass
    (tmp_path / "file").write_text("x")
    with pytest.raises(GenreError, match="not a folder"), atomic_folder(tmp_path / "file", marker="report.json"):
        pass
    assert (other / "thesis.tex").read_text() == "x"


def test_html_pieces_escape_and_round():
    from shared.listening import inline_markdown, metric, number_text, table

    assert number_text(float("nan")) == "—" and number_text(0.39123, 1, scale=100, unit=" %") == "39.1 %"
    assert metric(0.5, "a.b") == '<td data-metric="a.b">0.500</td>'
    t = table("<cap>", ["x", "y"], [["<b>", metric(1.0, "k", 0)]])
    assert "&lt;cap&gt;" in t and '<th scope="row">&lt;b&gt;</th>' in t and '<td data-metric="k">1</td>' in t
    assert inline_markdown("**a** `b` <i>") == "<strong>a</strong> <code>b</code> &lt;i&gt;"


# ----------------------------------------------------------------------------- the MIDI report


@pytest.fixture(scope="module")
def tiny_classifier(caches, tmp_path_factory):
    from midigenre.classifier import ClassifierConfig, train_classifier
    from midigenre.train import GenreSource

    out = tmp_path_factory.mktemp("clf") / "clf"
    train_classifier([GenreSource.parse(caches[0]), GenreSource.parse(caches[1])], out,
                     ClassifierConfig(channels=(8, 8, 8, 8), epochs=2, batch_size=8, lr=2e-3))
    return out


@pytest.fixture(scope="module")
def midi_report(tiny_run, tiny_classifier, tmp_path_factory):
    """The report of the tiny run on its two held-out songs (found through its caches): (folder, stdout)."""
    if fluidsynth_ready() is not None:
        pytest.skip(f"FluidSynth not usable: {fluidsynth_ready()}")
    out = tmp_path_factory.mktemp("report") / "rep"
    res = CliRunner().invoke(main, ["report", str(tiny_run), "-o", str(out), "--classifier", str(tiny_classifier),
                                    "--max-bars", "4"])
    assert res.exit_code == 0, res.output
    return out, res.output


def test_midi_report_folder_and_numbers(midi_report, tiny_run, tiny_classifier):
    from midigenre.classifier import Classifier
    from midigenre.transfer import TransferModel, transfer_midi

    out, stdout = midi_report
    rep = json.loads((out / "report.json").read_text())
    assert "wrote" in stdout and "2 songs" in stdout
    assert rep["kind"] == "midi-transfer-report" and rep["model_metrics"] is None and rep["losses"]["epochs"] == 1
    songs = rep["songs"]
    assert [(s["source_genre"], s["target_genre"]) for s in songs] == [("low", "high"), ("high", "low")]
    model, clf = TransferModel.load(tiny_run), Classifier.load(tiny_classifier)
    for s in songs:
        assert s["origin"] == f"held-out {s['source_genre']} song" and s["bars"] == 4 and s["first_bar"] == 1
        for which in ("source", "transferred", "cycled"):
            a = s["audio"][which]
            # 4 bars at the song's tempo, plus one second of release
            assert a["seconds"] == pytest.approx(4 * 4 * 60 / s["tempo"] + 1.0, abs=2 / a["rate"])
            assert (out / a["file"]).stat().st_size > 1000
    # the page's numbers are the library's on the start of the whole-song transfer, its P(target) the classifier's
    check_page_against_library(out, [library_numbers(s["file"], model, s["target_genre"], 4, clf) for s in songs])
    page = check_page_files(out, rep)
    # 4 players per song (source, transferred, as written, cycled back); 2 roll pictures + the loss curves
    assert len(page.audio) == 8 and len(page.images) == 3
    for s in songs:  # "as written" plays the arrangement genre midi transfer writes, for the excerpt's bars
        a = s["audio"]["arrangement"]
        assert a["seconds"] == pytest.approx(4 * 4 * 60 / s["tempo"] + 1.0, abs=2 / a["rate"])
        written = transfer_midi(s["file"], model, s["target_genre"]).midi()
        first_bars = [n for i in written.instruments for n in i.notes if n.start < 4 * 4 * 60 / s["tempo"] - 1e-6]
        assert s["notes"]["arrangement"] == len(first_bars) > 0
    assert "No held-out S_tot saved" in (out / "index.html").read_text()
    assert rep["bytes"] == sum(p.stat().st_size for p in out.rglob("*") if p.is_file() and p.name not in ("report.json", "index.html"))


#: Held-out numbers as `genre midi evaluate` saves them in a pair's model.json (metrics.heldout;
#: those of the retired jazz-classical, docs/retired-models.md): the shipped models save none.
PAIR_HELDOUT = {"S_tot": 0.722, "sigma_c": 0.0, "genres": {"a": "jazz", "b": "classical"},
                "content_change": {"mean": 0.91, "std": 0.35},
                "jazz→classical": {"n": 753, "P_src(x)": 0.987, "P_src(transferred)": 0.025, "P_src(cycled)": 0.803,
                                   "S": 0.870, "content_change": {"mean": 0.91, "std": 0.27}},
                "classical→jazz": {"n": 198, "P_src(x)": 0.985, "P_src(transferred)": 0.419, "P_src(cycled)": 1.0,
                                   "S": 0.573, "content_change": {"mean": 0.92, "std": 0.55}}}
#: A multi-genre model's held-out K × K table (metrics.heldout.tables; the retired four-genres' reference judge).
MULTI_HELDOUT = {"tables": {"reference": [[0.96, 0.74, 0.65, 0.61], [0.56, 0.93, 0.60, 0.82],
                                          [0.62, 0.76, 0.98, 0.66], [0.89, 0.95, 0.68, 0.98]]}}


def _with_model_metrics(folder: Path, dest: Path, heldout: dict) -> dict:
    """A copy of the report ``folder`` in ``dest`` whose model had saved ``heldout`` numbers: its
    report.json says so and its page is drawn again from it, as the report would have drawn it."""
    from midigenre.report import midi_page
    from shared.atomic import write_json

    shutil.copytree(folder, dest)
    rep = json.loads((dest / "report.json").read_text())
    rep["model_metrics"] = heldout
    write_json(dest / "report.json", rep)
    (dest / "index.html").write_text(midi_page(rep, dest), encoding="utf-8")
    return rep


def test_midi_report_of_given_songs_and_the_shipped_model(song_folder, tmp_path):
    if fluidsynth_ready() is not None:
        pytest.skip(f"FluidSynth not usable: {fluidsynth_ready()}")
    out = tmp_path / "rep"
    res = CliRunner().invoke(main, ["report", "jazz-classical-melody", "--songs", str(song_folder / "a.mid"), "--songs",
                                    str(REPO / "data" / "examples" / "classical_example.mid"), "--to", "jazz",
                                    "--max-bars", "4", "-o", str(out)])
    assert res.exit_code == 0, res.output
    rep = json.loads((out / "report.json").read_text())
    assert [s["name"] for s in rep["songs"]] == ["a", "classical_example"]
    assert all(s["target_genre"] == "jazz" and s["origin"] == "given song" for s in rep["songs"])
    # every song's numbers on the page are what the library measures on genre midi transfer's result
    check_page_against_library(out, [library_numbers(f, "jazz-classical-melody", "jazz", 4) for f in
                                     (song_folder / "a.mid", REPO / "data" / "examples" / "classical_example.mid")])
    check_page_files(out, rep)
    html = (out / "index.html").read_text()
    assert "model card" in html
    # the shipped pair takes each direction's generator from the epoch chosen for it, and the page says which
    gens = rep["model"]["generators"]
    saved = read_meta("jazz-classical-melody")["generators"]
    assert set(gens) == {"ab", "ba"}
    for d, src, dst in (("ab", "jazz", "classical"), ("ba", "classical", "jazz")):
        assert (gens[d]["epochs_done"], gens[d]["seed"]) == (saved[d]["epochs_done"], saved[d]["train"]["seed"])
        assert f"{src} → {dst}: after epoch {gens[d]['epochs_done']} of a training with seed {gens[d]['seed']}" in html
    # a pair's held-out S_tot saved with the model (genre midi evaluate's) is shown as report.json has it
    shown = _with_model_metrics(out, tmp_path / "with-s-tot", PAIR_HELDOUT)
    page = check_page_files(tmp_path / "with-s-tot", shown)
    assert {k for k, _, _ in page.metrics if k.startswith("model_metrics.")} >= {
        "model_metrics.S_tot", "model_metrics.jazz→classical.S", "model_metrics.classical→jazz.content_change.mean"}
    assert "No held-out S_tot saved" not in (tmp_path / "with-s-tot" / "index.html").read_text()
    # written again over itself: replaced whole
    res = CliRunner().invoke(main, ["report", "jazz-classical-melody", "--songs", str(song_folder / "b.mid"), "--to", "jazz",
                                    "--max-bars", "4", "-o", str(out)])
    assert res.exit_code == 0, res.output
    assert sorted(p.name for p in (out / "audio").iterdir()) == ["01-arrangement.ogg", "01-cycled.ogg", "01-source.ogg",
                                                                 "01-transferred.ogg"]


def test_midi_report_of_the_shipped_multi_genre_model(song_folder, tmp_path):
    """The four-genres-melody model: a song goes to the --to genre, its source genre told by the
    model; the page carries a model's held-out K × K table, and the cycle goes back to that genre."""
    if fluidsynth_ready() is not None:
        pytest.skip(f"FluidSynth not usable: {fluidsynth_ready()}")
    out = tmp_path / "rep"
    song = REPO / "data" / "examples" / "jazz_example.mid"
    res = CliRunner().invoke(main, ["report", "four-genres-melody", "--songs", str(song), "--to", "folk", "--max-bars", "4",
                                    "-o", str(out)])
    assert res.exit_code == 0, res.output
    rep = json.loads((out / "report.json").read_text())
    names = ["pop", "classical", "jazz", "folk"]
    assert rep["model"]["kind"] == "multi-genre" and rep["model"]["names"] == names
    (s,) = rep["songs"]
    assert s["target_genre"] == "folk" and s["source_genre"] in names
    # the source genre the model tells and the numbers are those of genre midi transfer's result
    check_page_against_library(out, [library_numbers(song, "four-genres-melody", "folk", 4)])
    page = check_page_files(out, rep)
    assert "pop / classical / jazz / folk" in (out / "index.html").read_text()
    # a multi-genre model's held-out K × K table saved with it is shown, every cell as report.json has it
    shown = _with_model_metrics(out, tmp_path / "with-table", MULTI_HELDOUT)
    page = check_page_files(tmp_path / "with-table", shown)
    assert sum(k.startswith("model_metrics.tables.reference.") for k, _, _ in page.metrics) == len(names) ** 2
    # each target's generator from its own epoch (combine_targets): the page says which
    chosen = read_meta("four-genres-melody")["per_target_generators"]
    assert [g["genre"] for g in rep["model"]["per_target_generators"]] == names
    assert all(f"→ {g['genre']}: after epoch {g['epochs_done']}" in (out / "index.html").read_text() for g in chosen)
    # … and the threshold of each direction calibrated on its own
    pairs = read_meta("four-genres-melody")["pair_thresholds"]
    assert pairs and all(f"{s} → {t} {v:.3g}" in (out / "index.html").read_text() for s, row in pairs.items() for t, v in row.items())
    res = CliRunner().invoke(main, ["report", "four-genres-melody", "--songs", str(song), "-o", str(tmp_path / "r2")])
    assert res.exit_code == 1 and res.output.strip().splitlines() == [
        "Error: give --to: the model transfers to any of pop, classical, jazz, folk"], res.output


@pytest.mark.parametrize("args, message", [
    (["no-such-model"], "no such model"),
    (["jazz-classical-melody", "--songs", "{songs}/text.mid"], "cannot use"),
    (["jazz-classical-melody", "--songs", "{songs}/zero.mid"], "empty file"),
    (["jazz-classical-melody", "--songs", "{songs}/silent.mid"], "no notes"),
    (["jazz-classical-melody", "--songs", "{songs}/missing.mid"], "no such song"),
    (["jazz-classical-melody", "--songs", "{songs}/a.mid", "--to", "rock"], "must be one of them"),
    (["jazz-classical-melody", "--data", "{songs}"], "none of the 82 held-out songs"),
    (["jazz-classical-melody", "--songs", "{songs}/a.mid", "--classifier", "{songs}"], "not a model folder"),
    (["{songs}/notes.txt"], "not a model folder"),
    (["jazz-classical-melody", "--songs", "{songs}/a.mid", "--held-out", "2"], "not both"),
    (["jazz-classical-melody", "--to", "jazz"], "--to goes with --songs"),
    (["audio-rendered", "--songs", "{songs}/a.mid"], "not a 'cyclegan' or 'multi-genre' model"),
])
def test_report_bad_input_is_one_line(song_folder, tmp_path, args, message):
    out = tmp_path / "rep"
    args = [a.replace("{songs}", str(song_folder)) for a in args]
    res = CliRunner().invoke(main, ["report", *args, "-o", str(out)])
    assert res.exit_code == 1, res.output
    lines = [x for x in res.output.split("\n") if x.strip() and "\r" not in x]  # a progress bar's line aside
    last = lines[-1] if lines else ""
    assert len(lines) == 1 and last.startswith("Error:") and message in last and "Traceback" not in res.output, res.output
    assert not out.exists() and [p.name for p in tmp_path.iterdir()] == ["songs"]  # no half-written folder


def test_report_refuses_to_write_over_its_inputs(song_folder, tmp_path):
    for out in (song_folder, tmp_path):
        res = CliRunner().invoke(main, ["report", "jazz-classical-melody", "--songs", str(song_folder / "a.mid"), "-o", str(out)])
        assert res.exit_code == 1 and "would replace the input" in res.output, res.output
    res = CliRunner().invoke(main, ["report", "jazz-classical-melody", "--songs", str(song_folder / "a.mid"), "-o",
                                    str(song_folder / "a.mid")])
    assert res.exit_code == 2 and "is a file" in res.output  # (click's own check of -o)
    foreign = tmp_path / "notes"
    foreign.mkdir()
    (foreign / "mine.txt").write_text("keep")
    res = CliRunner().invoke(main, ["report", "jazz-classical-melody", "--songs", str(song_folder / "a.mid"), "-o", str(foreign)])
    assert res.exit_code == 1 and "other files in it" in res.output and (foreign / "mine.txt").read_text() == "keep"
    wav = tmp_path / "x.wav"
    wav.write_bytes(b"RIFF")
    res = CliRunner().invoke(main, ["report", str(wav), "-o", str(tmp_path / "r")])
    assert res.exit_code == 1 and "no record beside it" in res.output


def test_report_help_is_instant():
    import subprocess
    import sys
    import time

    t = time.perf_counter()
    res = subprocess.run([sys.executable, "-c", "import sys; from cli.main import main; main(['report', '--help'])"],
                         capture_output=True, text=True, cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)})
    assert res.returncode == 0 and "--held-out" in res.stdout
    res = subprocess.run([sys.executable, "-c", "import sys\nfrom cli.main import main\ntry: main(['report', '--help'])\n"
                          "except SystemExit: pass\nprint(sorted(m for m in ('torch', 'matplotlib', 'soundfile') if m in sys.modules))"],
                         capture_output=True, text=True, cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)})
    assert res.stdout.strip().endswith("[]"), res.stdout
    assert time.perf_counter() - t < 30


# ----------------------------------------------------------------------------- the audio reports


@pytest.fixture(scope="module")
def transform_report(tmp_path_factory):
    """``genre audio transform`` on 4 s of the rendered jazz example with the shipped classifier,
    then ``genre report`` on its output: (folder, output wav)."""
    if fluidsynth_ready() is not None:
        pytest.skip(f"FluidSynth not usable: {fluidsynth_ready()}")
    d = tmp_path_factory.mktemp("transform")
    runner = CliRunner()
    res = runner.invoke(main, ["render", str(REPO / "data" / "examples" / "jazz_example.mid"), "--seconds", "4",
                               "-o", str(d / "song.wav")])
    assert res.exit_code == 0, res.output
    res = runner.invoke(main, ["audio", "transform", str(d / "song.wav"), "--to", "jazz", "-o", str(d / "out.wav"),
                               "--steps", "3", "--threads", "1"])
    assert res.exit_code == 0, res.output
    assert (d / "out.wav.json").is_file() and "out.wav.json" in res.output
    res = runner.invoke(main, ["report", str(d / "out.wav"), "-o", str(d / "rep")])
    assert res.exit_code == 0, res.output
    return d / "rep", d / "out.wav"


def test_transform_report_folder_and_numbers(transform_report):
    import soundfile as sf

    out, wav = transform_report
    rep = json.loads((out / "report.json").read_text())
    rec = json.loads(Path(str(wav) + ".json").read_text())
    assert rep["kind"] == "audio-transform-report" and rep["transform"] == rec["report"] and rep["target"] == "jazz"
    a, rate = sf.read(rec["source"], dtype="float32")
    b, _ = sf.read(wav, dtype="float32")
    assert rep["excerpt"]["snr_db"] == pytest.approx(10 * np.log10((a.astype(np.float64) ** 2).sum() / ((b - a).astype(np.float64) ** 2).sum()), abs=1e-3)
    assert rep["excerpt"]["snr_db"] == pytest.approx(rec["report"]["snr_db"], abs=0.05)  # the whole 4 s are played
    for name in ("before", "after", "change"):
        assert rep["audio"][name]["seconds"] == pytest.approx(len(a) / rate, abs=1e-3)
    page = check_page_files(out, rep)
    assert len(page.audio) == 3 and len(page.images) == 2
    assert sum(k.startswith("transform.windows.") for k, _, _ in page.metrics) == 4 * len(rec["report"]["windows"])


def test_transform_report_refuses_a_changed_output(transform_report, tmp_path):
    out, wav = transform_report
    copy = tmp_path / "out.wav"
    shutil.copy(wav, copy)
    shutil.copy(str(wav) + ".json", str(copy) + ".json")
    with open(copy, "r+b") as fh:  # one sample changed
        fh.seek(-2, 2)
        fh.write(b"\x11\x22")
    res = CliRunner().invoke(main, ["report", str(copy), "-o", str(tmp_path / "rep")])
    assert res.exit_code == 1 and "has changed since" in res.output and not (tmp_path / "rep").exists()


@needs_fluidsynth
def test_bridge_folder_report(tmp_path):
    import soundfile as sf

    d = tmp_path / "bridge"
    d.mkdir()
    t = np.arange(3 * 22050) / 22050
    sf.write(d / "original.wav", (0.2 * np.sin(2 * np.pi * 220 * t)).astype(np.float32), 22050)
    rng = np.random.default_rng(3)
    make_midi(d / "transcription.mid", random_grid_notes(rng, 4))
    make_midi(d / "transferred.mid", random_grid_notes(rng, 4))
    (d / "bridge.json").write_text(json.dumps({"onset_f1": 0.71, "note": "text is not shown as a number"}))
    res = CliRunner().invoke(main, ["report", str(d), "-o", str(tmp_path / "rep")])
    assert res.exit_code == 0, res.output
    rep = json.loads((tmp_path / "rep" / "report.json").read_text())
    assert rep["kind"] == "bridge-report" and rep["audio"]["recording"]["seconds"] == pytest.approx(3.0)
    page = check_page_files(tmp_path / "rep", rep)
    assert len(page.audio) == 3 and [k for k, _, _ in page.metrics] == ["bridge.onset_f1"]


# ----------------------------------------------------------------------------- in a real browser


def _browser():
    """(chromium, chromedriver) paths, or a pytest skip saying what is missing. With
    GENRE_REQUIRE_BROWSER=1 (.ci/run sets it: CI installs the browser) a missing browser fails."""
    chromium = next((shutil.which(n) for n in ("chromium", "chromium-browser", "google-chrome") if shutil.which(n)), None)
    driver = shutil.which("chromedriver")
    missing = [what for what, ok in (("a Chromium browser", chromium), ("chromedriver", driver)) if not ok]
    try:
        import selenium  # noqa: F401
    except ImportError:
        missing.append("selenium (pip install -e '.[test]')")
    if missing:
        reason = (f"no browser to open the report in: {', '.join(missing)} missing (Debian/Ubuntu: apt-get install "
                  "chromium chromium-driver; bash scripts/setup.sh --test does it as root)")
        if os.environ.get("GENRE_REQUIRE_BROWSER") == "1":
            pytest.fail(reason)
        pytest.skip(reason)
    return chromium, driver


@pytest.fixture(scope="module")
def browser():
    chromium, driver = _browser()
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    opts.binary_location = chromium
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=1200,900",
                "--autoplay-policy=no-user-gesture-required"):
        opts.add_argument(arg)
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    d = webdriver.Chrome(service=Service(driver), options=opts)
    d.set_page_load_timeout(30)
    yield d
    d.quit()


READ_PAGE = """
return {
  images: Array.from(document.images).map(i => [i.getAttribute('src'), i.complete, i.naturalWidth]),
  audio: Array.from(document.querySelectorAll('audio')).map(a => [a.getAttribute('src'), a.readyState, a.duration, a.error && a.error.code]),
  metrics: Array.from(document.querySelectorAll('[data-metric]')).map(e => [e.dataset.metric, parseFloat(e.dataset.scale || '1'), e.textContent]),
  width: document.documentElement.scrollWidth,
};
"""


def _open_and_check(browser, folder: Path, screenshot: Path, width: int = 1200) -> dict:
    from selenium.webdriver.support.ui import WebDriverWait

    rep = json.loads((folder / "report.json").read_text())
    browser.set_window_size(width, 900)
    browser.get_log("browser")  # drop what earlier pages logged
    browser.get((folder / "index.html").resolve().as_uri())
    WebDriverWait(browser, 30).until(lambda d: d.execute_script(
        "return Array.from(document.images).every(i => i.complete) && "
        "Array.from(document.querySelectorAll('audio')).every(a => a.readyState >= 1 || a.error)"))
    got = browser.execute_script(READ_PAGE)
    errors = [e for e in browser.get_log("browser") if e["level"] in ("SEVERE", "ERROR")]
    assert errors == [], errors
    assert got["images"] and all(ok and w > 0 for _, ok, w in got["images"]), got["images"]
    seconds = {a["file"]: a["seconds"] for a in _audio_entries(rep)}
    assert len(got["audio"]) == len(seconds) > 0
    for src, ready, duration, err in got["audio"]:
        assert err is None and ready >= 1 and duration is not None and np.isfinite(duration) and duration > 0, (src, duration, err)
        assert duration == pytest.approx(seconds[src], abs=0.05), (src, duration, seconds[src])  # Vorbis: ± a block
    assert check_metrics([tuple(m) for m in got["metrics"]], rep) == len(read_page(folder).metrics)
    assert got["width"] <= width  # nothing wider than the window: no sideways scrolling of the page
    h = browser.execute_script("return document.documentElement.scrollHeight")
    browser.set_window_size(width, min(h, 8000))
    browser.save_screenshot(str(screenshot))
    assert screenshot.stat().st_size > 10_000
    return got


def _audio_entries(rep: dict) -> list[dict]:
    if rep["kind"] == "midi-transfer-report":
        return [a for s in rep["songs"] for a in s["audio"].values()]
    return list(rep["audio"].values())


def test_midi_report_in_chromium(browser, midi_report, tmp_path):
    out, _ = midi_report
    _open_and_check(browser, out, tmp_path / "midi-report.png")
    _open_and_check(browser, out, tmp_path / "midi-report-phone.png", width=390)  # a phone's width
    if os.environ.get("GENRE_SCREENSHOTS"):
        shutil.copy(tmp_path / "midi-report.png", Path(os.environ["GENRE_SCREENSHOTS"]) / "midi-report.png")


def test_transform_report_in_chromium(browser, transform_report, tmp_path):
    out, _ = transform_report
    _open_and_check(browser, out, tmp_path / "transform-report.png")


@pytest.fixture(scope="module")
def multi_report(tmp_path_factory):
    """The shipped four-genres-melody model's report of the jazz example sent to folk (folder),
    its page drawn again with a held-out K × K table saved with the model (MULTI_HELDOUT)."""
    if fluidsynth_ready() is not None:
        pytest.skip(f"FluidSynth not usable: {fluidsynth_ready()}")
    out = tmp_path_factory.mktemp("multi") / "rep"
    res = CliRunner().invoke(main, ["report", "four-genres-melody", "--songs", str(REPO / "data" / "examples" / "jazz_example.mid"),
                                    "--to", "folk", "--max-bars", "4", "-o", str(out)])
    assert res.exit_code == 0, res.output
    _with_model_metrics(out, out.parent / "with-table", MULTI_HELDOUT)
    return out.parent / "with-table"


def test_multi_genre_report_in_chromium(browser, multi_report, tmp_path):
    """The K × K table's cells are numbers of report.json like every other shown number."""
    got = _open_and_check(browser, multi_report, tmp_path / "multi-report.png")
    assert sum(m[0].startswith("model_metrics.tables.reference.") for m in got["metrics"]) == 16
    _open_and_check(browser, multi_report, tmp_path / "multi-report-phone.png", width=390)
