"""A listening report of a CycleGAN: one static page to hear and see what the transfer does.

For each song the page has players for the source, the transferred and the cycled-back
version (all three rendered from the piano roll the model reads, so they differ only by what
the model did), their piano rolls with bar lines, and the song's metrics: the genre
classifier's P(target) of each version and the content change of the transfer. At the top:
the model's summary (its model card where it has one), its held-out S_tot table and, for a
training run, the loss curves of ``log.csv``. Everything is written to one folder
(``index.html``, ``report.json``, ``audio/*.ogg``, ``img/*.png``) that opens from disk.

Sound comes from a ``render`` callable, so this module needs no synthesiser of its own::

    >>> from audiogenre.render import midi_renderer
    >>> build_midi_report("jazz-classical-melody", "report/", render=midi_renderer(), data=["../shared/data/midi"])
"""

from __future__ import annotations

import csv
import dataclasses
import datetime as _dt
import hashlib
import math
import os
import time
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from shared.errors import GenreError

#: Bars of each song played and drawn (from its first phrase with notes), unless asked otherwise.
DEFAULT_MAX_BARS = 16
#: ... and no more whole bars than fit in this many seconds (slow songs get fewer bars).
DEFAULT_MAX_SECONDS = 30.0
#: Held-out songs in a report unless asked otherwise.
DEFAULT_HELD_OUT = 4

#: ``render(pretty_midi, seconds) -> (samples, rate)``: float samples ``(frames,)`` or ``(frames, channels)``.
Render = Callable[..., tuple]


@dataclasses.dataclass
class ReportSong:
    """A song to put in the report: its file, the genre to transfer it to, and where it came from."""

    path: Path
    target: str
    origin: str  # "held-out jazz song" or "given song"
    source: str | None = None  # the song's genre where it is known (held-out songs); else the model's direction or guess


# ----------------------------------------------------------------------------- choosing songs


def _sha1(path: Path) -> str:
    return hashlib.sha1(path.read_bytes()).hexdigest()


def heldout_songs(model, n: int, data: Sequence[str | os.PathLike] = ()) -> tuple[list[ReportSong], str]:
    """``n`` held-out songs of the model's split (alternating between its two genres), as files.

    The split (``split.json`` of the model or run) names each held-out song and the SHA-1 of its
    bytes. Files are looked for under the ``data`` folders (searched recursively by name) when
    they are given, else in the model's own caches (the paths they recorded); a file counts only
    if its bytes match.
    Returns the songs and a sentence saying how many were found where.
    """
    from midigenre.dataset import PhraseCache, SongSplit
    from midigenre.prepare import find_midi_files

    split_path = model.folder / "split.json"
    if not split_path.is_file():
        raise GenreError(f"{model.folder} has no split.json, so its held-out songs are unknown; pass --songs SONG.mid")
    split = SongSplit.load(split_path)
    genres = list(model.names)
    tests = {g: list(split.genres.get(g, {}).get("test", [])) for g in genres}
    wanted = {e["sha1"]: g for g in genres for e in tests[g]}
    names = {e["name"] for g in genres for e in tests[g]} | {Path(e["name"]).name for g in genres for e in tests[g]}
    if not wanted:
        raise GenreError(f"{split_path} holds no held-out songs of {' or '.join(genres)}; pass --songs SONG.mid")
    candidates: list[Path] = []
    for genre, cache in _caches(model) if not data else ():
        if cache and Path(cache).is_file():
            try:
                with PhraseCache(cache) as c:
                    files = c.files(genre)
            except GenreError:
                continue
            candidates += [Path(p) for p, h in zip(files["path"], files["sha1"]) if h in wanted]
    for folder in data:
        if not Path(folder).is_dir():
            raise GenreError(f"no such folder: {folder} (--data names folders holding the held-out songs)")
        candidates += [p for p, _ in find_midi_files([folder]) if p.name in names]
    found: dict[str, Path] = {}
    for p in candidates:
        try:
            h = _sha1(p) if p.is_file() else None
        except OSError:
            continue
        if h in wanted:
            found.setdefault(h, p)
    total = sum(len(v) for v in tests.values())
    if not found:
        example = next(e["name"] for g in genres for e in tests[g])
        where = ", ".join(map(str, data)) if data else "the model's caches"
        raise GenreError(f"none of the {total} held-out songs of {model.folder.name} is in {where}: pass --data FOLDER "
                         f"holding them (split.json names them, e.g. {example}) or --songs SONG.mid")
    queues = {g: [(e["name"], found[e["sha1"]]) for e in sorted(tests[g], key=lambda e: e["name"]) if e["sha1"] in found]
              for g in genres}
    songs: list[ReportSong] = []
    taken = dict.fromkeys(genres, 0)
    while len(songs) < n and any(queues.values()):
        for g in genres:  # the genres in turn; each genre's songs go to the other genres in turn
            if queues[g] and len(songs) < n:
                _, path = queues[g].pop(0)
                others = [x for x in genres if x != g]
                songs.append(ReportSong(path, others[taken[g] % len(others)], f"held-out {g} song", source=g))
                taken[g] += 1
    note = (f"{len(songs)} held-out songs of the model's split ({len(found)} of its {total} found"
            + (f" under {', '.join(map(str, data))}" if data else " through its caches") + ")")
    return songs, note


def _caches(model) -> list[tuple[str, str | None]]:
    """(genre, cache path) of each cache the model was trained from, as its model.json records them."""
    data = model.meta.get("data") or {}
    if isinstance(data.get("genres"), list):  # a multi-genre model
        return [(d.get("genre"), d.get("cache")) for d in data["genres"] if isinstance(d, dict)]
    return [(model.genres[k], (data.get(k) or {}).get("cache")) for k in ("a", "b")]


def _multi(model) -> bool:
    return getattr(model, "kind", "cyclegan") == "multi-genre"


def given_songs(paths: Sequence[str | os.PathLike], model, target: str | None) -> list[ReportSong]:
    """Songs named on the command line (files, or folders searched recursively), all transferred to
    ``target`` (default: a pair model's genre B; a multi-genre model needs it)."""
    from midigenre.prepare import find_midi_files

    if target is None and _multi(model):
        raise GenreError(f"give --to: the model transfers to any of {', '.join(model.names)}")
    target = target or model.genres["b"]
    model.direction(target)  # a clear error for a genre the model does not know
    songs = []
    for p in paths:
        if not Path(p).exists():
            raise GenreError(f"no such song: {p}")
        songs += [ReportSong(f, target, "given song") for f, _ in find_midi_files([p])]
    if not songs:
        raise GenreError("no songs given")
    return songs


# ----------------------------------------------------------------------------- one song


@dataclasses.dataclass
class Excerpt:
    """The part of a song that is played and drawn: rolls of shape (T, 84) from bar ``first_bar``."""

    source: np.ndarray
    transferred: np.ndarray
    cycled: np.ndarray
    phrases: tuple[np.ndarray, np.ndarray, np.ndarray]  # (n, 64, 84) each: what the classifier scores
    first_bar: int
    song_bars: int
    tempo: float
    source_genre: str = ""
    melody: np.ndarray | None = None  # (T, 84) the source's melody cells
    melody_found: str = "none"  # how (midigenre.transfer.song_melody)
    melody_locked: bool = False  # the model keeps the melody whatever its generator writes


def transfer_excerpt(path: Path, model, target: str, max_bars: int, max_seconds: float | None = None,
                     source: str | None = None) -> Excerpt:
    """Transfer the first ``max_bars`` bars of a song, from its first phrase with notes (fewer
    where ``max_bars`` bars would last longer than ``max_seconds``; at least one bar).

    Phrases are transferred as in :func:`midigenre.transfer.transfer_midi` (whole phrases, the
    tail padded, silent phrases kept silent), so the excerpt equals that part of a whole-song
    transfer.
    """
    from midigenre.melody import locked_input
    from midigenre.pianoroll import Unusable, join_phrases, read_song, split_phrases
    from midigenre.transfer import song_melody

    source = model.direction(target, source)[0]
    s = model.settings_for(source)
    try:
        song = read_song(path, s, keep_notes=True)
    except Unusable as err:
        raise GenreError(f"cannot use {path}: {err}") from None
    mel, _, how = song_melody(song, s, "auto")
    phrases, _ = split_phrases(song.roll, s, keep_empty=True, pad_tail=True)
    mel_phrases, _ = split_phrases(mel, s, keep_empty=True, pad_tail=True)
    # a melody-locked model reads the melody and what lies under it
    inputs = split_phrases(locked_input(song.roll, mel), s, keep_empty=True, pad_tail=True)[0] \
        if model.melody_lock else phrases
    sounding = np.flatnonzero(phrases.any(axis=(1, 2)))
    if not len(sounding):
        raise GenreError(f"cannot use {path}: it has no notes in the model's pitch range")
    first = int(sounding[0])
    if max_seconds is not None:
        bar_seconds = s.steps_per_bar / s.steps_per_beat * 60.0 / song.tempo
        max_bars = max(1, min(max_bars, int(max_seconds / bar_seconds + 1e-9)))
    count = max(1, math.ceil(max_bars / s.bars_per_phrase))
    x, m = phrases[first : first + count], mel_phrases[first : first + count]
    if source is None:  # a multi-genre model tells the song's genre from all its phrases
        source = model.predict_genre(phrases)[0]
    y, z = model.transfer_phrases(inputs[first : first + count], target, source=source, cycle=True, melody=m)
    silent = ~x.any(axis=(1, 2))
    y[silent] = False
    z[silent] = False
    steps = min(max_bars * s.steps_per_bar, len(song.roll) - first * s.phrase_steps)
    return Excerpt(join_phrases(x)[:steps], join_phrases(y)[:steps], join_phrases(z)[:steps], (x, y, z),
                   first * s.bars_per_phrase + 1, math.ceil(len(song.roll) / s.steps_per_bar), song.tempo, source,
                   join_phrases(m)[:steps], how, bool(model.melody_lock))


def song_metrics(ex: Excerpt, classifier, source_genre: str, target_genre: str) -> dict:
    """Metrics of one excerpt: P(target) of each version (mean classifier probability over the
    phrases that have notes in the source; None without a classifier) and of its matched baseline
    (the source with random notes deleted and added at the transfer's own rates, the melody kept
    where the model keeps it: :func:`midigenre.baselines.random_edit`, seed 0); the content change
    of the transfer (and of the cycle) over the whole excerpt; and whether it keeps the song:
    melody still sounding / still the top voice, harmony kept (per-beat pitch-class similarity)
    for the transfer and for the baseline."""
    from midigenre.baselines import random_edit
    from midigenre.metrics import (content_added, content_change, content_change_transposed, content_removed,
                                   harmony_kept, melody_kept)

    out = {}
    added, removed = content_added(ex.source, ex.transferred), content_removed(ex.source, ex.transferred)
    x, y, _ = ex.phrases
    keep = x.any(axis=(1, 2))
    mel = ex.melody if ex.melody is not None else np.zeros_like(ex.source)
    n = len(x)
    mel_phrases = np.zeros_like(x)
    flat = mel_phrases.reshape(-1, x.shape[-1])
    flat[: len(mel)] = mel
    edit = random_edit(x, float(np.nan_to_num(removed)), float(np.nan_to_num(added)),
                       np.random.default_rng([0, 25]), melody=mel_phrases if ex.melody_locked else None) if n else x
    if classifier is not None:
        it = classifier.index(target_genre)
        out["p_target"] = {name: float(classifier.probabilities(v[keep])[:, it].mean())
                           for name, v in zip(("source", "transferred", "cycled", "random_edit"), (*ex.phrases, edit))}
    else:
        out["p_target"] = None
    sounding, top = melody_kept(mel, ex.transferred) if mel.any() else (None, None)
    out.update(content_change=content_change(ex.source, ex.transferred), added=added, removed=removed,
               transposition_invariant=content_change_transposed(ex.source, ex.transferred),
               cycle_content_change=content_change(ex.source, ex.cycled),
               melody=ex.melody_found, melody_sounding=sounding, melody_top=top,
               harmony=harmony_kept(ex.source, ex.transferred),
               harmony_random_edit=harmony_kept(x, edit))
    return out


# ----------------------------------------------------------------------------- the model


def model_summary(model, name: str) -> dict:
    """What the page says about the model, from its ``model.json`` (JSON-ready)."""
    from shared.registry import shipped_models_dir

    meta = model.meta
    train = meta.get("train") or {}
    shipped = model.folder is not None and model.folder.resolve().parent == shipped_models_dir().resolve()
    data = meta.get("data") or {}
    keys = ("preset", "variant", "spectral_norm", "self_attention", "residual", "pitch_plane", "identity", "genre_loss", "genre_ba_scale",
            "genre_scale", "critic", "conditioning", "real_fake", "content", "keep", "add", "binarize", "epochs", "batch_size", "lr", "sigma_d", "seed",
            "test_fraction")
    return {
        "name": name, "path": str(model.folder), "shipped": shipped, "kind": getattr(model, "kind", "cyclegan"),
        "names": list(model.names), "genres": dict(model.genres) if hasattr(model, "genres") else None,
        "created": meta.get("created"),
        "package_version": meta.get("package_version"), "epochs_done": meta.get("epochs_done"),
        "generators": {d: {"from": Path(g.get("from", "?")).name, "epochs_done": g.get("epochs_done"),
                           "seed": (g.get("train") or {}).get("seed")} for d, g in (meta.get("generators") or {}).items()},
        "per_target_generators": [{"genre": g.get("genre"), "from": Path(str(g.get("from", "?"))).name,
                                   "epochs_done": g.get("epochs_done")} for g in (meta.get("per_target_generators") or [])],
        "train": {k: train[k] for k in keys if k in train}, "thresholds": model.thresholds,
        "pair_thresholds": dict(getattr(model, "pair_thresholds", {}) or {}),
        "keep_source": dict(getattr(model, "keep_source", {}) or {}),
        "train_songs": data.get("train_songs"), "test_songs": data.get("test_songs"),
        "settings": dict(meta.get("settings") or {}),
    }


def read_log(path: Path) -> list[dict]:
    """Rows of a run's ``log.csv`` as floats (empty cells and text as NaN)."""
    rows = []
    try:
        with open(path, newline="") as fh:
            for row in csv.DictReader(fh):
                rows.append({k: _float(v) for k, v in row.items() if k})
    except (OSError, csv.Error, UnicodeDecodeError) as err:
        raise GenreError(f"cannot read {path}: {err}") from None
    return rows


def _float(v) -> float:
    try:
        return float(v)
    except (TypeError, ValueError):
        return float("nan")


def plot_losses(rows: list[dict], path: Path) -> tuple[Path, str]:
    """Generator and discriminator losses per epoch (two panels); returns the PNG and its alt text."""
    from shared.plotting import new_figure, save_png

    epochs = [r.get("epoch", i + 1) for i, r in enumerate(rows)]
    groups = {"generator": sorted(k for k in rows[0] if k.startswith("g/")),
              "discriminator": sorted(k for k in rows[0] if k.startswith("d/"))}
    groups = {k: v for k, v in groups.items() if v}
    if not groups:
        groups = {"losses": [k for k in rows[0] if k not in ("epoch", "lr", "seconds", "phrases_per_s")]}
    fig, axes = new_figure(1, len(groups), figsize=(4.6 * len(groups), 3.2), squeeze=False)
    for ax, (title, keys) in zip(axes[0], groups.items()):
        for k in keys:
            ax.plot(epochs, [r.get(k, float("nan")) for r in rows], marker="o" if len(rows) < 30 else None, ms=3, label=k)
        ax.set_title(f"{title} losses", fontsize=10)
        ax.set_xlabel("epoch")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.tight_layout()
    save_png(fig, path, dpi=80)
    last = rows[-1]
    alt = (f"Line charts of the training losses over {len(rows)} epochs. "
           + "; ".join(f"{title}: " + ", ".join(f"{k} from {rows[0].get(k, float('nan')):.3f} to {last.get(k, float('nan')):.3f}"
                                                for k in keys) for title, keys in groups.items()) + ".")
    return path, alt


# ----------------------------------------------------------------------------- the report


def build_midi_report(model, out: str | os.PathLike, *, render: Render, songs: Sequence[str | os.PathLike] = (),
                      target: str | None = None, held_out: int = DEFAULT_HELD_OUT,
                      data: Sequence[str | os.PathLike] = (), classifier=None, max_bars: int = DEFAULT_MAX_BARS,
                      max_seconds: float | None = DEFAULT_MAX_SECONDS, progress=None) -> dict:
    """Write the listening report of a CycleGAN into the folder ``out`` and return its report.json.

    Parameters
    ----------
    model : a :class:`~midigenre.transfer.TransferModel`, or a run folder, model folder or shipped model's name.
    render : ``render(pretty_midi, seconds) -> (samples, rate)``, e.g. :func:`audiogenre.render.midi_renderer`.
    songs : MIDI files or folders; all transferred to ``target`` (default the model's genre B).
        Without songs, ``held_out`` songs of the model's split are taken (see :func:`heldout_songs`,
        which also explains ``data``).
    classifier : a :class:`~midigenre.classifier.Classifier` or its folder, for P(target); None: no P values.
    max_bars, max_seconds : each song is played, drawn and measured from its first phrase with
        notes, for ``max_bars`` bars or as many whole bars as fit in ``max_seconds`` (at least one).

    The folder is built beside ``out`` and moved into place when complete (an existing report
    there is replaced; any other non-empty folder is refused).
    """
    from midigenre.classifier import Classifier
    from midigenre.transfer import GenreTransfer, TransferModel
    from shared.atomic import atomic_folder
    from shared.listening import REPORT_JSON, finish_report
    from shared.progress import progress_callback

    report_progress = progress_callback(progress)
    started = time.perf_counter()
    if max_bars < 1:
        raise GenreError("--max-bars must be at least 1")
    if not isinstance(model, GenreTransfer):
        model = TransferModel.load(model)  # a pair or a multi-genre model
    name = model.folder.name if model.folder is not None else "model"
    if classifier is not None and not isinstance(classifier, Classifier):
        clf_path = str(classifier)
        classifier = Classifier.load(classifier)
    else:
        clf_path = None if classifier is None else "(given)"
    if classifier is not None:
        from midigenre.evaluate import _model_settings_hash

        hashes = {_model_settings_hash(model)} | {st.hash() for st in getattr(model, "genre_settings", {}).values()}
        if classifier.settings_hash not in hashes:
            raise GenreError("the classifier was trained on caches with other piano-roll settings than the model")
        for g in model.names:
            classifier.index(g)
    if songs:
        chosen, songs_note = given_songs(songs, model, target), "songs given on the command line"
    else:
        if held_out < 1:
            raise GenreError("--held-out must be at least 1")
        chosen, songs_note = heldout_songs(model, held_out, data)

    # every song is read and transferred before anything is rendered: a bad song stops the command at once
    excerpts = []
    for i, song in enumerate(chosen):
        report_progress("transferring", i, len(chosen), song.path.name)
        excerpts.append(transfer_excerpt(song.path, model, song.target, max_bars, max_seconds, source=song.source))
    with atomic_folder(out, marker=REPORT_JSON, keep_others=True) as tmp:
        (tmp / "audio").mkdir()
        (tmp / "img").mkdir()
        report = {
            "format": 1, "kind": "midi-transfer-report",
            "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
            "package_version": _version(), "model": model_summary(model, name),
            "model_metrics": (model.meta.get("metrics") or {}).get("heldout"),
            "classifier": None if classifier is None else {
                "path": clf_path, "genres": list(classifier.genres),
                "accuracy": ((classifier.meta.get("metrics") or {}).get("accuracy") if hasattr(classifier, "meta") else None)},
            "max_bars": max_bars, "max_seconds": max_seconds, "songs_from": songs_note, "songs": [],
        }
        log = model.folder / "log.csv"
        if log.is_file():
            rows = read_log(log)
            if rows:
                _, alt = plot_losses(rows, tmp / "img" / "losses.png")
                report["losses"] = {"picture": "img/losses.png", "alt": alt, "epochs": len(rows)}
        for i, (song, ex) in enumerate(zip(chosen, excerpts)):
            report_progress("rendering", i, len(chosen), song.path.name)
            report["songs"].append(_song(song, ex, model, classifier, render, tmp, i + 1))
        report_progress("rendering", len(chosen), len(chosen))
        report["summary"] = _summary(report["songs"])
        report = finish_report(tmp, report, started, midi_page)
    return report


def _version() -> str:
    from shared.version import __version__

    return __version__


def arrangement_excerpt(path: Path, model, target: str, ex: Excerpt):
    """The excerpt's bars of the whole-song transfer as ``genre midi transfer`` writes it (an
    arrangement: :meth:`midigenre.transfer.SongTransfer.midi`), as ``pretty_midi`` with time 0 at
    the excerpt's first bar; None where the song cannot be written so."""
    import pretty_midi

    from midigenre.transfer import transfer_midi

    try:
        res = transfer_midi(path, model, target, source_genre=ex.source_genre)
    except GenreError:
        return None
    if res.notes is None:
        return None
    pm = res.midi()
    s = res.settings
    first = (ex.first_bar - 1) * s.steps_per_bar
    tick = lambda step: int(step * pm.resolution // s.steps_per_beat)  # noqa: E731
    t0, t1 = pm.tick_to_time(tick(first)), pm.tick_to_time(tick(first + len(ex.source)))
    out = pretty_midi.PrettyMIDI(initial_tempo=ex.tempo)
    for inst in pm.instruments:
        part = pretty_midi.Instrument(inst.program, is_drum=inst.is_drum, name=inst.name)
        part.notes = [pretty_midi.Note(n.velocity, n.pitch, n.start - t0, min(n.end, t1) - t0)
                      for n in inst.notes if t0 - 1e-6 <= n.start < t1]
        if part.notes:
            out.instruments.append(part)
    return out


def _song(song: ReportSong, ex: Excerpt, model, classifier, render: Render, folder: Path, number: int) -> dict:
    from midigenre.pianoroll import roll_to_midi
    from shared.listening import write_ogg
    from shared.plotting import plot_rolls

    source_genre, target_genre = ex.source_genre, song.target
    s = model.settings_for(source_genre)
    bars = math.ceil(len(ex.source) / s.steps_per_bar)
    seconds = len(ex.source) / s.steps_per_beat * 60.0 / ex.tempo
    entry = {
        "name": song.path.stem, "file": str(song.path), "origin": song.origin, "source_genre": source_genre,
        "target_genre": target_genre, "first_bar": ex.first_bar, "bars": bars, "song_bars": ex.song_bars,
        "tempo": round(ex.tempo, 3), "audio": {}, "notes": {},
    }
    stem = f"{number:02d}"
    for which, roll in (("source", ex.source), ("transferred", ex.transferred), ("cycled", ex.cycled)):
        pm = roll_to_midi(roll, ex.tempo, s, name=f"Piano ({which})")
        entry["notes"][which] = sum(len(inst.notes) for inst in pm.instruments)
        samples, rate = render(pm, seconds + 1.0)  # + 1 s for the last notes' release
        rel = f"audio/{stem}-{which}.ogg"
        entry["audio"][which] = {"file": rel, "seconds": round(write_ogg(folder / rel, samples, rate), 4), "rate": int(rate)}
    arranged = arrangement_excerpt(song.path, model, target_genre, ex)
    if arranged is not None:  # what genre midi transfer writes: the file's instruments, dynamics and timing
        entry["notes"]["arrangement"] = sum(len(inst.notes) for inst in arranged.instruments)
        samples, rate = render(arranged, seconds + 1.0)
        rel = f"audio/{stem}-arrangement.ogg"
        entry["audio"]["arrangement"] = {"file": rel, "seconds": round(write_ogg(folder / rel, samples, rate), 4),
                                         "rate": int(rate)}
    rel = f"img/{stem}-rolls.png"
    last = ex.first_bar + bars - 1
    mel = ex.melody if ex.melody is not None and ex.melody.any() else None
    red = "; melody in red" if mel is not None else ""
    plot_rolls([(f"source ({source_genre}), bars {ex.first_bar}–{last}{red}", ex.source),
                (f"transferred → {target_genre}{red + ' where it still sounds' if red else ''}", ex.transferred),
                (f"cycled back → {source_genre}", ex.cycled)],
               folder / rel, lowest_pitch=s.lowest_pitch, steps_per_bar=s.steps_per_bar, phrase_steps=s.phrase_steps,
               first_bars=[ex.first_bar] * 3, dpi=72,
               melodies=None if mel is None else [mel, mel & ex.transferred, mel & ex.cycled])
    entry["piano_roll"] = rel
    entry["metrics"] = song_metrics(ex, classifier, source_genre, target_genre)
    return entry


def _summary(songs: list[dict]) -> dict:
    def mean(values):
        v = [x for x in values if x is not None and math.isfinite(x)]
        return float(np.mean(v)) if v else None

    out = {"songs": len(songs), "content_change": mean(s["metrics"]["content_change"] for s in songs),
           "melody_top": mean(s["metrics"].get("melody_top") for s in songs),
           "harmony": mean(s["metrics"].get("harmony") for s in songs),
           "harmony_random_edit": mean(s["metrics"].get("harmony_random_edit") for s in songs)}
    if songs and songs[0]["metrics"]["p_target"] is not None:
        out["p_target_source"] = mean(s["metrics"]["p_target"]["source"] for s in songs)
        out["p_target_transferred"] = mean(s["metrics"]["p_target"]["transferred"] for s in songs)
        out["p_target_random_edit"] = mean(s["metrics"]["p_target"].get("random_edit") for s in songs)
    return out


# ----------------------------------------------------------------------------- the page


def midi_page(report: dict, folder: Path) -> str:
    """The report's ``index.html`` (pictures and sounds already in ``folder``)."""
    from shared.listening import Html, esc, facts, inline_markdown, metric, page, picture, table

    m = report["model"]
    multi = m.get("kind") == "multi-genre"
    a, b = (None, None) if multi else (m["genres"]["a"], m["genres"]["b"])
    title = f"Listening report: {' / '.join(m['names']) if multi else f'{a} ↔ {b}'} ({m['name']})"
    clf = report["classifier"]
    parts = ['<header>', f"<h1>{esc(title)}</h1>",
             f'<p class="muted">Made {esc(report["created"].replace("T", " ").replace("+00:00", " UTC"))} by genre-transfer {esc(report["package_version"])} from '
             f'{esc(report["songs_from"])}; each song from its first phrase with notes, {report["max_bars"]} bars or what '
             f'fits in {report["max_seconds"]:g} s, '
             "rendered with FluidSynth (one piano) from the piano roll the model reads, and the transfer as written (its instruments).</p>", "</header>",
             '<main id="main">', '<section aria-labelledby="model-h"><h2 id="model-h">The model</h2>']
    t = m["train"]
    arch = ", ".join(x for x in (f"preset {t.get('preset', '?')}", "one generator for every pair" if multi else f"variant {t.get('variant', '?')}",
                                 "spectral norm" if t.get("spectral_norm") else "", "self-attention" if t.get("self_attention") else "",
                                 "residual generators" if t.get("residual") else "",
                                 "pitch plane (G and D see the register)" if t.get("pitch_plane") else "",
                                 f"identity loss {t['identity']:g}" if t.get("identity") else "",
                                 f"genre loss {t['genre_loss']:g}" + (f" ({t['critic']} critic)" if t.get("critic") else "")
                                 + (f", ×{t['genre_ba_scale']:g} going {m['names'][1]} → {m['names'][0]}"
                                    if t.get("genre_ba_scale", 1.0) != 1.0 else "")
                                 + "".join(f", ×{w:g} into {g}" for g, w in (t.get("genre_scale") or {}).items() if w != 1.0)
                                 if t.get("genre_loss") else "",
                                 f"conditioning {t['conditioning']}" if t.get("conditioning") else "",
                                 "real/fake per genre" if t.get("real_fake") == "per-genre" else "",
                                 f"content loss {t['content']:g}" if t.get("content") else "",
                                 f"keep loss {t['keep']:g}" if t.get("keep") else "",
                                 f"add loss {t['add']:g}" if t.get("add") else "") if x)
    items = [("model", esc(f"{m['name']}, shipped with the toolkit" if m.get("shipped") else m["path"])),
             ("genres", esc(", ".join(m["names"])) if multi else f"A = {esc(a)}, B = {esc(b)}"), ("architecture", esc(arch)),
             ("trained", esc(f"{m['epochs_done'] if m['epochs_done'] is not None else '?'} epoch{'' if m['epochs_done'] == 1 else 's'}"
                             + (f" of {t['epochs']} planned" if t.get("epochs") and t.get("epochs") != m["epochs_done"] else "")
                             + (f", σ_D {t['sigma_d']:g}" if "sigma_d" in t else "") + (f", seed {t['seed']}" if "seed" in t else ""))),
             ("binarised at", esc(", ".join(f"{v:.3g} (→ {g})" for g, v in m["thresholds"].items())
                                  + "".join(f"; {s} → {g} {v:.3g}" for s, row in (m.get("pair_thresholds") or {}).items()
                                            for g, v in row.items()) if multi else
                                  f"{m['thresholds']['ab']:.3g} ({a} → {b}), {m['thresholds']['ba']:.3g} ({b} → {a})"))]
    gens = m.get("generators") or {}
    if gens and not multi:  # a pair combined per direction (midigenre.models.combine_generators)
        items.append(("generators", esc("; ".join(
            f"{src} → {dst}: after epoch {gens[d].get('epochs_done', '?')} of a training with seed {gens[d].get('seed', '?')}"
            for d, src, dst in (("ab", a, b), ("ba", b, a)) if d in gens) + " (each direction chosen on its own)")))
    per_target = m.get("per_target_generators") or []
    if per_target and multi:  # one generator per target genre (midigenre.stargan.combine_targets)
        items.append(("generators", esc("; ".join(f"→ {g['genre']}: after epoch {g.get('epochs_done', '?')} ({g['from']})"
                                                  for g in per_target) + " (each target's chosen on its own)")))
    kept = m.get("keep_source") or {}
    if any(kept.values()):
        which = (", ".join(f"→ {g}" for g, v in kept.items() if v) if multi else
                 ", ".join(d for k, d in (("ab", f"{a} → {b}"), ("ba", f"{b} → {a}")) if kept.get(k)))
        items.append(("keeps the source", esc(which + ": every source note stays; the model only adds")))
    if m.get("train_songs"):
        items.append(("songs", esc(f"training {_counts(m['train_songs'])}; held out {_counts(m.get('test_songs') or {})}")))
    if m.get("created"):
        items.append(("saved", esc(f"{m['created']} by genre-transfer {m.get('package_version') or '?'}")))
    items.append(("classifier", esc("none given: no P(target) values (pass --classifier)") if clf is None else
                  esc(f"{clf['path']} ({', '.join(clf['genres'])}"
                      + (f"; held-out accuracy {clf['accuracy']:.1%}" if clf.get("accuracy") is not None else "") + ")")))
    parts.append(facts(items))
    card = Path(m["path"]) / "README.md"
    if card.is_file():
        text = card.read_text(encoding="utf-8", errors="replace")
        lead = next((p.strip() for p in text.split("\n\n") if p.strip() and not p.lstrip().startswith("#")), "")
        if lead:
            parts.append(f"<p>{inline_markdown(lead)}</p>")
        parts.append(f"<details><summary>The whole model card (README.md)</summary><pre>{esc(text)}</pre></details>")
    mm = report.get("model_metrics")
    if multi and mm and (mm.get("tables") or {}).get("reference"):
        names, tab = m["names"], mm["tables"]["reference"]
        rows = [[Html(f'<th scope="row" class="text">{esc(src)}</th>')]
                + [metric(tab[i][j], f"model_metrics.tables.reference.{i}.{j}", 2) for j in range(len(names))]
                for i, src in enumerate(names)]
        parts.append("<p>Held-out songs, as saved with the model: the share of transferred phrases the reference "
                     "classifier assigns to the target genre (on the diagonal, its accuracy on the real phrases).</p>")
        parts.append(table("Share classified as the target: source genre (rows) → target genre (columns)",
                           ["source \\ target", *names], rows))
    elif mm and "S_tot" in mm:
        rows = []
        for key in (f"{a}→{b}", f"{b}→{a}"):
            r = mm.get(key)
            if not r:
                continue
            k = f"model_metrics.{key}"
            rows.append([key, metric(r.get("n"), f"{k}.n", 0), metric(r.get("P_src(x)"), f"{k}.P_src(x)"),
                         metric(r.get("P_src(transferred)"), f"{k}.P_src(transferred)"),
                         metric(r.get("P_src(cycled)"), f"{k}.P_src(cycled)"), metric(r.get("S"), f"{k}.S"),
                         metric((r.get("content_change") or {}).get("mean"), f"{k}.content_change.mean", 2)])
        parts.append(f'<p>Held-out transfer strength, as saved with the model: S_tot = '
                     f'{metric(mm["S_tot"], "model_metrics.S_tot", 1, scale=100, unit=" %", tag="strong")} '
                     "(P = share of phrases classified as the source genre; S = ½[P(x) + P(x̃) − 2·P(x̂)]).</p>")
        parts.append(table("S_tot per direction on the model's held-out songs",
                           ["direction", "phrases", "P_src(x)", "P_src(x̂)", "P_src(x̃)", "S", "content change"], rows))
    else:
        parts.append('<p class="muted">No held-out S_tot saved with this model (measure it with '
                     "<code>genre midi evaluate --model … --classifier …</code>).</p>")
    if report.get("losses"):
        lo = report["losses"]
        parts.append(picture(folder, lo["picture"], lo["alt"], f"Training losses per epoch (log.csv, {lo['epochs']} epoch{'' if lo['epochs'] == 1 else 's'})."))
    parts.append("</section>")

    songs = report["songs"]
    parts.append('<section aria-labelledby="songs-h"><h2 id="songs-h">The songs</h2>')
    have_p = clf is not None
    head = ["song", "direction", "bars"] + (["P(target) source", "P(target) transferred", "P(target) random edit"]
                                            if have_p else []) + \
        ["melody on top", "harmony kept", "content change", "added", "removed"]
    rows = []
    for i, s in enumerate(songs):
        k = f"songs.{i}.metrics"
        row = [Html(f'<th scope="row" class="text"><a href="#song-{i + 1}">{esc(s["name"])}</a></th>'),
               f"{s['source_genre']} → {s['target_genre']}", f"{s['first_bar']}–{s['first_bar'] + s['bars'] - 1}"]
        if have_p:
            row += [metric(s["metrics"]["p_target"]["source"], f"{k}.p_target.source"),
                    metric(s["metrics"]["p_target"]["transferred"], f"{k}.p_target.transferred"),
                    metric(s["metrics"]["p_target"].get("random_edit"), f"{k}.p_target.random_edit")]
        row += [metric(s["metrics"].get("melody_top"), f"{k}.melody_top", 2),
                metric(s["metrics"].get("harmony"), f"{k}.harmony", 2),
                metric(s["metrics"]["content_change"], f"{k}.content_change", 2), metric(s["metrics"]["added"], f"{k}.added", 2),
                metric(s["metrics"]["removed"], f"{k}.removed", 2)]
        rows.append(row)
    parts.append(table(f"{len(songs)} songs at a glance", head, rows))
    for i, s in enumerate(songs):
        parts.append(_song_html(s, i, folder, have_p))
    parts.append("</section>")
    parts.append('<section aria-labelledby="how-h"><h2 id="how-h">How to read it</h2><ul>'
                 "<li><strong>P(target)</strong>: the genre classifier's mean probability of the target genre over the "
                 "excerpt's 4-bar phrases that have notes (source, transferred and cycled-back version).</li>"
                 "<li><strong>Random edit</strong>: the matched baseline — the source with notes deleted and added at "
                 "random at the transfer's own rates (the melody kept where the model keeps it). A transfer counts "
                 "only as far as it beats it: deleting notes alone moves a genre classifier too.</li>"
                 "<li><strong>Melody</strong>: the song's melody track where the file names one, else the top voice "
                 "(skyline), drawn in red; <strong>still sounding</strong> / <strong>on top</strong> are the shares of its "
                 "notes still played / still the highest note in the transfer. <strong>Harmony kept</strong>: per-beat "
                 "pitch-class (chroma) similarity of source and transfer (1: the same chords; a random accompaniment "
                 "of the genre scores about 0.3–0.5).</li>"
                 "<li><strong>Content change</strong> Σ|x − x̂| / Σx over the excerpt's piano roll: cells added plus cells "
                 "removed by the transfer, relative to the source's cells; <strong>added</strong> and <strong>removed</strong> "
                 "are its two parts; 1 means as many changed cells as the source has notes.</li>"
                 "<li><strong>As written</strong>: the transfer as <code>genre midi transfer</code> writes it — the song's own "
                 "instruments, velocities and timing for the notes it keeps, the target genre's chord and bass instruments "
                 "for the notes it adds.</li>"
                 "<li>Source, transferred and cycled back are rendered from binary piano rolls (16th-note grid, one piano, velocity 100), so "
                 "what differs between them is what the model did, not the source file's instruments or dynamics.</li>"
                 "<li>The numbers are also in <a href=\"report.json\">report.json</a>.</li></ul></section>")
    parts.append("</main>")
    return page(title, "\n".join(parts), description=f"Source, transferred and cycled-back songs of the {a} ↔ {b} model {m['name']}")


def _counts(d: dict) -> str:
    return ", ".join(f"{v} {k}" for k, v in d.items())


def _song_html(s: dict, i: int, folder: Path, have_p: bool) -> str:
    from shared.listening import esc, metric, picture, player, table

    n = i + 1
    src, dst = s["source_genre"], s["target_genre"]
    last = s["first_bar"] + s["bars"] - 1
    labels = {"source": f"Source ({src})", "transferred": f"Transferred → {dst}", "cycled": f"Cycled back → {src}",
              "arrangement": f"Transferred → {dst}, as written (the file's instruments; added notes on {dst}'s)"}
    players = "".join(player(s["audio"][w]["file"], labels[w], s["audio"][w]["seconds"], f"song-{n}-{w}",
                             f"{s['notes'][w]} notes") for w in ("source", "transferred", "arrangement", "cycled")
                      if w in s["audio"])
    k = f"songs.{i}.metrics"
    mt = s["metrics"]
    tables = []
    if have_p:
        tables.append(table(f"Classifier, song {n}", ["version", f"P({dst})"], [
            ["source", metric(mt["p_target"]["source"], f"{k}.p_target.source")],
            ["transferred", metric(mt["p_target"]["transferred"], f"{k}.p_target.transferred")],
            ["cycled back", metric(mt["p_target"]["cycled"], f"{k}.p_target.cycled")],
            ["random edit (baseline)", metric(mt["p_target"].get("random_edit"), f"{k}.p_target.random_edit")]]))
    if mt.get("melody_top") is not None or mt.get("harmony") is not None:
        tables.append(table(f"The song kept, song {n}", ["measure", "value"], [
            [f"melody ({mt.get('melody', '?')}) still sounding", metric(mt.get("melody_sounding"), f"{k}.melody_sounding")],
            ["melody still on top", metric(mt.get("melody_top"), f"{k}.melody_top")],
            ["harmony kept", metric(mt.get("harmony"), f"{k}.harmony")],
            ["harmony kept by the random edit", metric(mt.get("harmony_random_edit"), f"{k}.harmony_random_edit")]]))
    tables.append(table(f"Content change, song {n}", ["measure", "value"], [
        ["source → transferred", metric(mt["content_change"], f"{k}.content_change")],
        ["added", metric(mt["added"], f"{k}.added")], ["removed", metric(mt["removed"], f"{k}.removed")],
        ["transposition-invariant", metric(mt["transposition_invariant"], f"{k}.transposition_invariant")],
        ["source → cycled back", metric(mt["cycle_content_change"], f"{k}.cycle_content_change")]]))
    alt = (f"Three piano rolls of bars {s['first_bar']} to {last} of {s['name']}, time from left to right and pitch from "
           f"bottom to top, bar lines in grey and phrase lines in blue: the {src} source ({s['notes']['source']} notes), "
           f"the transfer to {dst} ({s['notes']['transferred']} notes) and the cycle back to {src} "
           f"({s['notes']['cycled']} notes).")
    return (f'<article class="song" id="song-{n}" aria-labelledby="song-{n}-h">'
            f'<h3 id="song-{n}-h">{n}. {esc(s["name"])}: {esc(src)} → {esc(dst)}</h3>'
            f'<p class="muted">{esc(s["origin"])} · bars {s["first_bar"]}–{last} of {s["song_bars"]} · '
            f'{s["tempo"]:.0f} quarter notes per minute · <span class="text">{esc(Path(s["file"]).name)}</span></p>'
            f'<div class="players">{players}</div><div class="tables">{"".join(tables)}</div>'
            + picture(folder, s["piano_roll"], alt) + "</article>")


__all__ = ["DEFAULT_HELD_OUT", "DEFAULT_MAX_BARS", "DEFAULT_MAX_SECONDS", "Excerpt", "ReportSong", "build_midi_report", "given_songs",
           "heldout_songs", "midi_page", "model_summary", "plot_losses", "read_log", "song_metrics", "transfer_excerpt"]
