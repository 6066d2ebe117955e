"""``genre midi …``: the symbolic path (piano-roll phrases, cache, plots, MIDI export)."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from shared.errors import GenreError

METERS = ("strict", "lenient", "assume-4/4")


@click.group()
def midi() -> None:
    """Symbolic genre transfer on 64×84 piano-roll phrases (4 bars × 16 steps, MIDI 24–107)."""


def _table(rows: list[tuple[str, str]], title: str | None = None) -> str:
    width = max(len(k) for k, _ in rows)
    lines = [title] if title else []
    lines += [f"  {k:<{width}}  {v}" for k, v in rows]
    return "\n".join(lines)


def _settings_options(f):
    options = [
        click.option("--meter", type=click.Choice(METERS), default="strict", show_default=True,
                     help="strict: exactly one 4/4 signature at tick 0 (Brunner et al.). lenient: every signature "
                          "is 4/4 (restated 4/4 allowed, none = 4/4). assume-4/4: ignore signatures and read 4 beats "
                          "per bar (for collections like POP909 that write 1/4)."),
        click.option("--max-bars", type=click.IntRange(1), default=4096, show_default=True,
                     help="Drop files whose notes reach beyond this bar (guards against corrupt note times)."),
        click.option("--keep-drums", is_flag=True, help="Keep drum-channel notes (dropped by default)."),
    ]
    for opt in reversed(options):
        f = opt(f)
    return f


@midi.command()
@click.argument("sources", nargs=-1, required=True)
@click.option("-g", "--genre", required=True, help="Genre name the phrases are stored under, e.g. jazz.")
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False), help="Cache file (.h5) to create or add to.")
@_settings_options
@click.option("-j", "--workers", type=click.IntRange(1), default=1, show_default=True, help="Parallel parser processes.")
@click.option("--resume", is_flag=True, help="Keep this genre's files already in the cache or in an interrupted run's "
              "journal; process only the others.")
@click.option("--overwrite", is_flag=True, help="Replace the genre if it is there; replace the whole cache if it was "
              "made with other settings.")
@click.option("--keep-duplicates", is_flag=True, help="Keep files whose bytes equal an earlier file's (dropped by default "
              "so one song cannot sit on both sides of a train/test split).")
def prepare(sources, genre, output, meter, max_bars, keep_drums, workers, resume, overwrite, keep_duplicates):
    """Turn MIDI files into 64×84 phrases of one genre in an HDF5 cache.

    SOURCES are MIDI files, folders (searched recursively) or glob patterns ('**' works).
    Several genres can share one cache: run once per genre with the same -o.

    \b
    Example:
      genre midi prepare ../shared/data/midi/jazz --genre jazz -o data.h5 -j 2
      genre midi prepare ../shared/data/midi/pop --genre pop -o pop.h5 --meter assume-4/4
    """
    from tqdm import tqdm

    from midigenre.pianoroll import RollSettings
    from midigenre.prepare import prepare as run_prepare

    settings = RollSettings(meter=meter, max_bars=max_bars, keep_drums=keep_drums)
    bar = None
    kept = [0, 0, 0]  # files done, kept, phrases

    def on_start(n):
        nonlocal bar
        bar = tqdm(total=n, unit="file", desc=f"prepare {genre}", file=sys.stderr, dynamic_ncols=True, disable=None)

    def progress(res):
        kept[0] += 1
        if not res.reason:
            kept[1] += 1
            kept[2] += res.n_phrases
        bar.update(1)
        bar.set_postfix(kept=kept[1], phrases=kept[2], refresh=False)

    _sigterm_as_interrupt()

    try:
        report = run_prepare(
            sources, genre, output, settings, workers=workers, resume=resume, overwrite=overwrite,
            dedupe=not keep_duplicates, progress=progress, on_start=on_start,
        )
    except KeyboardInterrupt:
        if bar:
            bar.close()
        click.echo(f"Interrupted: {output} is unchanged; the {kept[0]} files done so far are kept in a journal. "
                   "Run the same command with --resume to continue.", err=True)
        sys.exit(130)
    finally:
        if bar:
            bar.close()
    click.echo(_table(report.rows(), title=f"Prepared '{genre}' → {report.output}"))


def _sigterm_as_interrupt() -> None:
    """Let `kill` (SIGTERM) stop a run the way Ctrl-C does, so finished work reaches the journal."""
    import signal

    def handler(signum, frame):
        raise KeyboardInterrupt

    try:
        signal.signal(signal.SIGTERM, handler)
    except ValueError:  # not in the main thread (e.g. some test runners): keep the default
        pass


@midi.command()
@click.argument("cache", type=click.Path(dir_okay=False))
@click.option("-g", "--genre", help="Only this genre.")
@click.option("--files", "show_files", is_flag=True, help="List the kept source files with their phrase counts.")
@click.option("--dropped", "show_dropped", is_flag=True, help="List the dropped files with their reasons.")
def inspect(cache, genre, show_files, show_dropped):
    """Show what a cache holds: genres, counts, settings, sources."""
    import collections

    import numpy as np

    from midigenre.dataset import PhraseCache
    from midigenre.pianoroll import DROP_REASONS

    with PhraseCache(cache) as c:
        h = c.header
        click.echo(_table([
            ("kind", f"{h.kind} (schema {h.schema_version})"),
            ("written by", f"genre-transfer {h.package_version} at {h.created}"),
            ("settings hash", h.settings_hash),
            *[(f"  {k}", str(v)) for k, v in h.settings.items()],
        ], title=f"{c.path}"))
        genres = [genre] if genre else c.genres
        if not genres:
            click.echo("  (no genres yet)")
        for g in genres:
            files, dropped = c.files(g), c.dropped(g)
            n = c.n_phrases(g)
            steps = c.settings.phrase_steps / c.settings.steps_per_beat
            hours = float(np.sum(files["n_phrases"] * steps * 60.0 / files["tempo"])) / 3600 if len(files["tempo"]) else 0.0
            reasons = collections.Counter(dropped["reason"])
            rows = [("files kept", str(len(files["name"]))), ("files dropped", str(len(dropped["name"])))]
            rows += [(f"  {r}", str(reasons[r])) for r in DROP_REASONS if reasons.get(r)]
            rows += [("phrases", str(n)), ("hours of music", f"{hours:.2f}")]
            if len(files["n_phrases"]):
                rows.append(("phrases per song", f"median {int(np.median(files['n_phrases']))}, max {int(files['n_phrases'].max())}"))
            click.echo("\n" + _table(rows, title=f"genre '{g}'"))
            if show_files:
                click.echo("  kept files (song number, phrases, tempo, name):")
                for i, (name, k, t) in enumerate(zip(files["name"], files["n_phrases"], files["tempo"])):
                    click.echo(f"    {i:5d}  {k:4d}  {t:6.1f}  {name}")
            if show_dropped:
                click.echo("  dropped files (reason: detail, name):")
                for name, r, d in zip(dropped["name"], dropped["reason"], dropped["detail"]):
                    click.echo(f"    {r}{': ' + d if d else ''}  {name}")


def _parse_indices(values: tuple[str, ...]) -> list[int]:
    out: list[int] = []
    for v in values:
        for part in v.split(","):
            part = part.strip()
            if ":" in part:
                a, b = part.split(":", 1)
                try:
                    out += list(range(int(a or 0), int(b)))
                except ValueError:
                    raise GenreError(f"bad index range {part!r}: write START:STOP, e.g. 0:8") from None
            elif part:
                try:
                    out.append(int(part))
                except ValueError:
                    raise GenreError(f"bad index {part!r}: give numbers such as 3, 0:8 or 1,4,9") from None
    return out


def _is_midi_path(path: str) -> bool:
    return Path(path).suffix.lower() in (".mid", ".midi", ".kar", ".smf")


def _load_rolls(source, genre, index, song, meter):
    """Rolls to draw or export: list of (title, phrases (n, 64, 84), first phrase number), settings, tempo."""
    from midigenre.pianoroll import RollSettings, read_song, split_phrases

    if _is_midi_path(source):
        settings = RollSettings(meter=meter)
        s = read_song(source, settings)
        phrases, pos = split_phrases(s.roll, settings, keep_empty=True, pad_tail=True)
        chosen = _parse_indices(index) if index else list(range(min(4, len(phrases))))
        for i in chosen:
            if not 0 <= i < len(phrases):
                raise GenreError(f"phrase {i} is out of range: {Path(source).name} has {len(phrases)} phrases (0..{len(phrases) - 1})")
        return [(f"{Path(source).name}, phrase {i}", phrases[i], i) for i in chosen], settings, s.tempo

    from midigenre.dataset import PhraseCache

    with PhraseCache(source) as c:
        if genre is None:
            if len(c.genres) != 1:
                raise GenreError(f"{source} holds several genres ({', '.join(c.genres)}): choose one with --genre")
            genre = c.genres[0]
        if song is not None:
            phrases, pos, tempo, name = c.song(genre, song)
            return [(f"{genre}: {name}, phrase {p}", ph, int(p)) for ph, p in zip(phrases, pos)], c.settings, tempo
        chosen = _parse_indices(index) if index else [0]
        files = c.files(genre)
        pf, pi = c.phrase_file(genre), c.phrase_index(genre)
        out, tempo = [], None
        for i in chosen:
            ph = c.phrases(genre, i)
            f = int(pf[i])
            tempo = tempo or float(files["tempo"][f])
            out.append((f"{genre} #{i}: {files['name'][f]}, phrase {int(pi[i])}", ph, int(pi[i])))
        return out, c.settings, tempo


@midi.command()
@click.argument("source", type=click.Path(dir_okay=False))
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False), help="PNG file to write.")
@click.option("-g", "--genre", help="Genre in the cache (needed when it holds several).")
@click.option("-i", "--index", multiple=True, help="Phrase rows (cache) or phrase numbers (MIDI): 3, 0:8 or 1,4,9. "
              "Default: the first phrase of a cache, the first four of a MIDI file.")
@click.option("--song", help="Draw every phrase of one cached song: its number (see inspect --files) or name.")
@click.option("--meter", type=click.Choice(METERS), default="assume-4/4", show_default=True,
              help="Meter rule when SOURCE is a MIDI file.")
def plot(source, output, genre, index, song, meter):
    """Draw phrases of a cache or of a MIDI file as piano-roll images with bar lines.

    \b
    Examples:
      genre midi plot jazz.h5 --index 0:4 -o roll.png
      genre midi plot jazz.h5 --song ArtPepper_Anthropology -o song.png
      genre midi plot song.mid -o song.png
    """
    import numpy as np

    from midigenre.pianoroll import join_phrases
    from shared.plotting import plot_rolls

    items, settings, _ = _load_rolls(source, genre, index, song, meter)
    if not items:
        raise GenreError("nothing to draw")
    if song is not None or _is_midi_path(source):
        # one panel per 4 consecutive phrases: reads like a score, line by line
        title = items[0][0].rsplit(", phrase", 1)[0]
        phrases = np.stack([ph for _, ph, _ in items])
        pos = np.array([p for _, _, p in items])
        roll = join_phrases(phrases, pos - pos.min())
        per_line = 4 * settings.phrase_steps
        panels, firsts = [], []
        for start in range(0, len(roll), per_line):
            panels.append((f"{title}, bars {start // settings.steps_per_bar + 1 + int(pos.min()) * settings.bars_per_phrase}–"
                           f"{(start + min(per_line, len(roll) - start)) // settings.steps_per_bar + int(pos.min()) * settings.bars_per_phrase}",
                           roll[start : start + per_line]))
            firsts.append(start // settings.steps_per_bar + 1 + int(pos.min()) * settings.bars_per_phrase)
        if len(panels) > 12:
            click.echo(f"note: drawing the first 12 of {len(panels)} lines", err=True)
            panels, firsts = panels[:12], firsts[:12]
    else:
        panels = [(title, ph) for title, ph, _ in items]
        firsts = [p * settings.bars_per_phrase + 1 for _, _, p in items]
    path = plot_rolls(panels, output, lowest_pitch=settings.lowest_pitch, steps_per_bar=settings.steps_per_bar,
                      phrase_steps=settings.phrase_steps, first_bars=firsts)
    click.echo(f"wrote {path}")


@midi.command("export")
@click.argument("cache", type=click.Path(dir_okay=False))
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False), help="MIDI file to write.")
@click.option("-g", "--genre", help="Genre in the cache (needed when it holds several).")
@click.option("-i", "--index", multiple=True, help="Phrase rows to write back to back: 3, 0:8 or 1,4,9.")
@click.option("--song", help="Write one whole cached song (its number or name), phrases at their places.")
@click.option("--tempo", type=click.FloatRange(min=1.0), help="Tempo in BPM (default: the source file's).")
def export(cache, output, genre, index, song, tempo):
    """Write cached phrases (one, several, or a whole song) back to a MIDI file.

    Notes get velocity 100 on one piano track; the file carries tempo and a 4/4 signature,
    so notation software and DAWs read its bars.

    \b
    Examples:
      genre midi export jazz.h5 --index 12 -o phrase.mid
      genre midi export jazz.h5 --song 0 -o song.mid
    """
    import numpy as np

    from midigenre.pianoroll import join_phrases, roll_to_midi, write_midi

    if _is_midi_path(cache):
        raise GenreError(f"{cache} is a MIDI file; export reads a cache (.h5)")
    if index and song is not None:
        raise GenreError("give --index or --song, not both")
    items, settings, file_tempo = _load_rolls(cache, genre, index, song, "strict")
    phrases = np.stack([ph for _, ph, _ in items])
    if song is not None:
        pos = np.array([p for _, _, p in items])
        roll = join_phrases(phrases, pos)  # silent gaps where empty phrases were dropped
    else:
        roll = join_phrases(phrases)
    pm = roll_to_midi(roll, tempo or file_tempo or 120.0, settings)
    write_midi(pm, output)
    n_notes = sum(len(i.notes) for i in pm.instruments)
    click.echo(f"wrote {output}: {len(items)} phrases, {n_notes} notes, {pm.get_end_time():.1f} s at {tempo or file_tempo:.1f} BPM")


@midi.command()
@click.argument("caches", nargs=-1, required=True, type=click.Path(dir_okay=False))
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False), help="Split file (.json) to write.")
@click.option("--test-fraction", type=click.FloatRange(0.0, 1.0, max_open=True), default=0.1, show_default=True,
              help="Share of each genre's songs held out for testing.")
@click.option("--seed", type=int, default=0, show_default=True)
def split(caches, output, test_fraction, seed):
    """Make a seeded train/test split by song (never by phrase) and save it as JSON.

    CACHES may be one cache with several genres or one cache per genre (same settings).
    """
    from midigenre.dataset import PhraseCache, SongSplit

    merged = None
    for path in caches:
        with PhraseCache(path) as c:
            s = SongSplit.create(c, test_fraction=test_fraction, seed=seed)
            if merged is None:
                merged = s
                continue
            if s.settings_hash != merged.settings_hash:
                raise GenreError(f"{path} was prepared with other settings than {caches[0]}; they cannot share a split")
            for g, parts in s.genres.items():
                if g in merged.genres:
                    raise GenreError(f"genre '{g}' is in more than one of the caches")
                merged.genres[g] = parts
    merged.save(output)
    rows = [(g, f"{len(p['train'])} train songs, {len(p['test'])} test songs") for g, p in merged.genres.items()]
    click.echo(_table(rows, title=f"wrote {output} (seed {seed}, test fraction {test_fraction})"))
