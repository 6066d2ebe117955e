"""``genre audio transcribe`` and ``genre audio arrange``: a recording → MIDI → another genre.

Each command parses its options, calls the library (:mod:`audiogenre.transcribe`,
:mod:`audiogenre.arrange`) and prints.
"""

from __future__ import annotations

import click

from cli.common import TqdmProgress

_grid_options = [
    click.option("--bpm", type=click.FloatRange(20, 400), help="The tempo, when the estimate is wrong (e.g. half or double)."),
    click.option("--downbeat", type=click.FloatRange(min=0), metavar="SECONDS",
                 help="Time of a first beat of a bar (bar lines are then every 4 beats from it)."),
    click.option("--tracker", type=click.Choice(["onsets", "librosa"]), default="onsets", show_default=True,
                 help="First tempo estimate: from the transcribed note onsets, or librosa's beat tracker (slower to "
                      "start); both are then fitted to the onsets (benchmarks/transcription.py compares them)."),
    click.option("--grid", "grid", type=click.Choice(["follow", "constant"]), default="follow", show_default=True,
                 help="follow: the 16ths follow the recording's own beats as it speeds up and slows down, and the "
                      "MIDI carries that tempo map; constant: one tempo for the whole recording."),
    click.option("--threads", type=click.IntRange(1), help="CPU threads for the transcription model."),
]


def _grid(f):
    for opt in reversed(_grid_options):
        f = opt(f)
    return f


def _describe(tr) -> str:
    g = tr.grid
    how = "given" if g.source.startswith("given") else "estimated"
    if g.follows:
        tempos = g.tempos()
        tempo = (f"tempo {g.tempo:.1f} bpm ({how}; following the recording: {tempos.min():.0f}–{tempos.max():.0f} bpm "
                 f"over {len(tempos)} beats)")
    else:
        tempo = f"tempo {g.tempo:.1f} bpm ({how}, constant)"
    return f"{tr.seconds:.1f} s at {tr.rate} Hz: {len(tr.notes)} notes, {tempo}, bar 1 at {g.origin:.2f} s"


@click.command()
@click.argument("song", type=click.Path())
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False), help="MIDI file to write (.mid).")
@_grid
def transcribe(song, output, bpm, downbeat, tracker, grid, threads):
    """Transcribe a recording to MIDI on the 16th-note grid (basic-pitch, ONNX).

    Notes by Spotify's basic-pitch (polyphonic, any instrument) run with onnxruntime; the beats
    follow the recording's tempo (or, with --grid constant, one tempo is fitted) and the bar lines
    are fitted to the note onsets; every note is moved to the nearest 16th between its beats. The
    MIDI has the recording's tempo map and 4/4 from bar 1, so `genre midi prepare` and `genre midi
    transfer` read it and it plays on the recording's beats.

    \b
    Example:
      genre render data/examples/jazz_example.mid -o jazz.wav
      genre audio transcribe jazz.wav -o jazz.mid            # add --bpm 120 if the tempo is off
    """
    from audiogenre.transcribe import transcribe_file

    with TqdmProgress(unit="window", leave=False) as progress:
        tr = transcribe_file(song, output, bpm=bpm, downbeat=downbeat, tracker=tracker, grid=grid, threads=threads,
                             progress=progress)
    click.echo(f"{song}: {_describe(tr)}")
    click.echo(f"wrote {output}: {len(tr.qnotes)} notes on the grid, "
               f"{int(tr.qnotes[:, 1].max()) / 16 if len(tr.qnotes) else 0:.1f} bars")


@click.command("arrange")
@click.argument("song", type=click.Path())
@click.option("--to", "target", required=True, help="Target genre (one of the model's).")
@click.option("--from", "source_genre", help="The recording's genre (default: a pair model takes its other genre; a "
              "multi-genre model tells it from the transcription and refuses a recording it takes for --to already). "
              "Saying it overrides the vote.")
@click.option("-o", "--output", required=True, type=click.Path(),
              help="Audio to write (.wav/.flac/.ogg), or a folder for `genre report` (see below).")
@click.option("--model", help="CycleGAN model folder or a shipped model's name.  [default: jazz-classical-melody]")
@click.option("--soundfont", type=click.Path(), help="General MIDI .sf2/.sf3 (default: $GENRE_SOUNDFONT or the system's).")
@click.option("--program", type=click.IntRange(0, 127),
              help="Play every part on this General MIDI instrument (0: piano).  [default: the recording's notes "
                   "on piano, the added ones on the target genre's chord and bass instruments]")
@click.option("--instruments", type=click.Path(dir_okay=False), help="A JSON or YAML instrument table "
              "{genre: {chords: PROGRAM, bass: PROGRAM, drums: keep|drop, bass_below: PITCH}} for the added notes, "
              "as in `genre midi transfer`.")
@_grid
def arrange(song, target, source_genre, output, model, soundfont, program, instruments, bpm, downbeat, tracker, grid,
             threads):
    """Play a recording in another genre: transcribe, transfer the notes, render.

    The recording is transcribed (as `genre audio transcribe`), its 4-bar phrases go through the
    symbolic CycleGAN (as `genre midi transfer`), and the result is rendered with FluidSynth at
    the recording's sample rate on the recording's own beats (its tempo map), bar 1 where the
    recording's first downbeat is. Like `genre midi transfer`, the result is an arrangement: the
    notes the transfer keeps stay as they were heard, the added ones go to the target genre's
    chord and bass instruments (--instruments, --program). Beside OUT it
    writes OUT.transcribed.mid, OUT.<genre>.mid and OUT.json (files, tempo, metrics). With -o
    FOLDER it writes original.<ext> (a copy of SONG), transcription.mid, transferred.mid,
    transferred.wav and bridge.json there: `genre report FOLDER -o page/` then makes its
    listening page.

    Not to be confused with `genre audio transform`, which keeps the recording and adds a small
    classifier-guided change.

    \b
    Example:
      genre audio arrange piano.wav --to classical -o piano_classical.wav
      genre audio arrange piano.wav --to jazz -o piano_jazz.wav --bpm 96
      genre audio arrange piano.wav --to classical -o bridge/ && genre report bridge/ -o page/
    """
    from audiogenre.arrange import transfer_audio

    with TqdmProgress(unit="window", leave=False) as progress:
        res = transfer_audio(song, target, output, model=model, bpm=bpm, downbeat=downbeat, tracker=tracker, grid=grid,
                             soundfont=soundfont, program=program, instruments=instruments, threads=threads,
                             progress=progress, source_genre=source_genre)
    m = res.metrics
    click.echo(f"{song}: {_describe(res.transcription)}")
    cc = "n/a" if m["content_change"] is None else f"{m['content_change']:.2f}"
    told = ""
    if res.song.predicted is not None:
        told = (f" (source genre told by {res.song.told_by}: {res.song.predicted[res.song.source_genre]:.0%} of the "
                "phrases; say it with --from)")
    elif source_genre is None:
        told = " (source genre assumed: the model's other genre; say it with --from)"
    click.echo(f"{res.song.source_genre} → {res.song.target_genre}{told}: {m['phrases']} phrases, notes in the piano roll "
               f"{m['notes_source']} → {m['notes_transferred']}, content change {cc} (added {m['added']}, removed {m['removed']})")
    s = res.seconds
    click.echo(f"took {s['total']:.1f} s (transcription {s['transcription']:.1f}, transfer {s['transfer']:.1f}, "
               f"rendering {s['rendering']:.1f})")
    copy = f", {res.original_copy}" if res.original_copy else ""
    click.echo(f"wrote {res.output}, {res.transcription_midi}, {res.transferred_midi}, {res.sidecar}{copy}")


#: ``genre audio transfer``, the name ``arrange`` had before (it sat beside ``genre audio transform``,
#: a different job): hidden, so scripts that call it keep working.
arrange_as_transfer = click.Command("transfer", callback=arrange.callback, params=arrange.params, help=arrange.help,
                                    hidden=True)
