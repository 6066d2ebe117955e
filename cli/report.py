"""``genre report``: a static listening page (index.html + sounds + pictures) for a transfer.

The work is done in :mod:`midigenre.report` (CycleGAN runs and models) and
:mod:`audiogenre.report` (``genre audio transform`` outputs, transcription-bridge folders).
"""

from __future__ import annotations

from pathlib import Path

import click

from cli.common import TqdmProgress, model_files
from shared.errors import GenreError

AUDIO_SUFFIXES = (".wav", ".flac", ".ogg", ".mp3", ".aif", ".aiff")


@click.command()
@click.argument("source", metavar="RUN_OR_MODEL|TRANSFORMED_AUDIO")
@click.option("-o", "--output", required=True, type=click.Path(file_okay=False),
              help="Report folder to write (index.html, report.json, audio/, img/). An earlier report there is replaced.")
@click.option("--songs", "songs", multiple=True, type=click.Path(), metavar="SONG.mid",
              help="A song (or a folder of songs) to transfer; repeat for more.  [default: held-out songs of the model's split]")
@click.option("--held-out", type=click.IntRange(1),
              help="How many held-out songs of the model's split, alternating between its genres.  [default: 4]")
@click.option("--data", "data", multiple=True, type=click.Path(file_okay=False), metavar="FOLDER",
              help="Where to look for the held-out songs (searched recursively; files are matched by name and "
                   "content hash); repeatable. The model's own caches are tried first.")
@click.option("--to", "target", help="Target genre for --songs.  [default: a pair model's genre B; needed for a multi-genre model]")
@click.option("--classifier", "clf_path", type=click.Path(),
              help="Genre classifier folder (genre midi train-classifier) for P(target); without it the page has no P values.")
@click.option("--max-bars", type=click.IntRange(1), default=16, show_default=True,
              help="Bars of each song played, drawn and measured (from its first phrase with notes).")
@click.option("--max-seconds", type=click.FloatRange(min=1.0), default=30.0, show_default=True,
              help="At most this long: whole bars of a MIDI song (at least one), seconds of a recording.")
@click.option("--soundfont", type=click.Path(dir_okay=False), help="Sound font for rendering MIDI (default: $GENRE_SOUNDFONT or the system's).")
def report(source, output, songs, held_out, data, target, clf_path, max_bars, max_seconds, soundfont):
    """Write a listening report: one page to hear and see what a transfer did.

    \b
    SOURCE is one of
      a CycleGAN or multi-genre run or model folder, or a shipped model's
        name (jazz-classical-melody, four-genres-melody): per song, players
        for the source, transferred and cycled-back versions (FluidSynth,
        OGG Vorbis), their piano rolls and metrics; the model's summary,
        held-out S_tot (or the K × K table) and, for a run, its loss curves;
      the output of `genre audio transform` (OUT.wav with its OUT.wav.json):
        before/after players, the change alone, spectrograms and p(target) per window;
      a transcription-bridge folder (original.wav, transcription.mid[, transferred.mid, bridge.json]).
    Open OUTPUT/index.html in a browser: no server or internet needed.

    \b
    Examples:
      genre report jazz-classical-melody --data ../shared/data/midi -o report/
      genre report runs/jc --songs song.mid --to classical --classifier clf/ -o report/
      genre report four-genres-melody --songs song.mid --to folk -o report-folk/
      genre report work/jazz_more_jazz.wav -o report-audio/
    """
    import json
    import time

    from shared.registry import model_folder

    if songs and held_out is not None:
        raise GenreError("give --songs or --held-out, not both")
    if target is not None and not songs:
        raise GenreError("--to goes with --songs (each held-out song is transferred to the model's other genre)")
    started = time.perf_counter()
    src = Path(source)
    if not src.exists() and source.endswith(("/", "\\")):  # a path, not a shipped model's name
        raise GenreError(f"no such folder: {source}")
    if not src.exists() and src.suffix.lower() in (*AUDIO_SUFFIXES, ".json", ".mid", ".midi"):
        raise GenreError(f"no such file: {source}")
    inputs = [source, *songs, *data, soundfont, *model_files(clf_path)]
    if not src.is_file():
        try:
            inputs += model_files(model_folder(source))
        except GenreError:
            pass  # said when the model is loaded
    from audiogenre.report import bridge_files, is_transform_output

    if is_transform_output(src):
        try:
            inputs.append(json.loads(Path(str(src) + ".json").read_text(encoding="utf-8"))["source"])
        except (OSError, ValueError, KeyError, TypeError):
            pass  # said when the report reads the record
    _refuse_output_over_inputs(inputs, output)

    if is_transform_output(src):
        from audiogenre.report import build_transform_report

        with TqdmProgress(unit="step", leave=False) as progress:
            rep = build_transform_report(src, output, max_seconds=max_seconds, progress=progress)
    elif bridge_files(src) is not None:
        from audiogenre.render import midi_renderer
        from audiogenre.report import build_bridge_report

        with TqdmProgress(unit="file", leave=False) as progress:
            rep = build_bridge_report(src, output, render=midi_renderer(soundfont), max_seconds=max_seconds,
                                      progress=progress)
    elif src.is_file() and src.suffix.lower() in AUDIO_SUFFIXES:
        raise GenreError(f"{src} has no record beside it ({src}.json): make it with `genre audio transform`, "
                         "which writes one, or give a model or run folder")
    elif src.is_file() and src.suffix.lower() in (".mid", ".midi"):
        raise GenreError(f"{src} is a song, not a model: give the model and the song, e.g. "
                         f"genre report jazz-classical-melody --songs {src} --to classical -o {output}")
    else:
        from audiogenre.render import midi_renderer
        from midigenre.report import build_midi_report

        render = midi_renderer(soundfont)
        with TqdmProgress(unit="song", leave=False) as progress:
            rep = build_midi_report(source, output, render=render, songs=songs, target=target, held_out=held_out or 4,
                                    data=data, classifier=clf_path, max_bars=max_bars, max_seconds=max_seconds,
                                    progress=progress)
    n = len(rep.get("songs", [])) or 1
    what = f"{n} song{'s' if n != 1 else ''}" if rep["kind"] == "midi-transfer-report" else "1 recording"
    click.echo(f"wrote {Path(output) / 'index.html'}: {what}, {rep['bytes'] / 1e6:.1f} MB in {time.perf_counter() - started:.0f} s "
               f"(numbers in {Path(output) / 'report.json'})")


def _refuse_output_over_inputs(inputs, output) -> None:
    """The report folder is replaced whole: it must not be, or hold, one of the inputs."""
    out = Path(output).expanduser().resolve()
    for given in inputs:
        if given is None:
            continue
        p = Path(given).expanduser()
        try:
            p = p.resolve()
        except (OSError, RuntimeError):
            continue
        if p == out or out in p.parents:
            raise GenreError(f"-o {output} would replace the input {given}; choose another output folder")
