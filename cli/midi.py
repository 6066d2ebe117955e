"""``genre midi …``: the symbolic path (piano-roll phrases, cache, plots, MIDI export).

Each command parses its options, calls the library and prints; the work is done in
:mod:`midigenre` (selection, plots, transfer, prepare, evaluate, …).
"""

from __future__ import annotations

import sys
from pathlib import Path

import click

from cli.common import ATTRIBUTION_METHODS, METERS, TqdmProgress, model_files, nproc_option, relaunch, table
from cli.options import config_options
from midigenre.config import ClassifierConfig, MultiGenreConfig, TrainConfig
from shared.errors import GenreError
from shared.runtime import DEVICE_HELP, sigterm_as_interrupt


@click.group()
def midi() -> None:
    """Symbolic genre transfer on 64×84 piano-roll phrases (4 bars × 16 steps, MIDI 24–107)."""


def _settings_options(f):
    options = [
        click.option("--meter", type=METERS, default="strict", show_default=True,
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
@click.option("--shard", metavar="I/N", help="Prepare only shard I of N (a fixed 1/N of the files, chosen by name) into "
              "its own cache, e.g. one per machine; join them with `genre midi merge`.")
@click.option("--allow-empty", is_flag=True, help="Exit 0 even when no file is kept (the genre then holds no phrases).")
def prepare(sources, genre, output, meter, max_bars, keep_drums, workers, resume, overwrite, keep_duplicates, shard,
            allow_empty):
    """Turn MIDI files into 64×84 phrases of one genre in an HDF5 cache.

    SOURCES are MIDI files, folders (searched recursively) or glob patterns ('**' works).
    Several genres can share one cache: run once per genre with the same -o.

    \b
    Example:
      genre midi prepare ../shared/data/midi/jazz --genre jazz -o data.h5 -j 2
      genre midi prepare ../shared/data/midi/pop --genre pop -o pop.h5 --meter assume-4/4
      genre midi prepare /data/lmd --genre pop -o pop-2.h5 --shard 2/4   (on machine 2 of 4)
    """
    from midigenre.pianoroll import RollSettings
    from midigenre.prepare import check_shard, find_midi_files
    from midigenre.phrases import is_midi_path
    from shared.atomic import refuse_overwriting_input

    inputs = list(sources)
    if is_midi_path(output):  # a cache named like a MIDI file: it may be one of the files found in a folder
        inputs += [path for path, _ in find_midi_files(sources)]
    refuse_overwriting_input(inputs, output)
    shard = check_shard(shard) if shard else None
    settings = RollSettings(meter=meter, max_bars=max_bars, keep_drums=keep_drums)
    report = _prepare_with_progress(sources, genre, output, settings, workers=workers, resume=resume, overwrite=overwrite,
                                    dedupe=not keep_duplicates, shard=shard)
    click.echo(table(report.rows(), title=f"Prepared '{genre}' → {report.output}"))
    _warn_small_genre(report)
    if report.genre_files_total == 0 and not allow_empty:
        raise GenreError(f"no file was kept: '{genre}' in {report.output} holds no phrases (the reasons are above and in "
                         f"`genre midi inspect {report.output} --dropped`); pass --allow-empty if that is meant")


def _warn(notes) -> None:
    for note in notes:
        click.echo(f"warning: {note}", err=True)


def _warn_small_genre(report) -> None:
    """A genre prepared whole (not a shard) that is too small to learn from gets a warning line."""
    from midigenre.dataset import MIN_GENRE_PHRASES

    if report.shard is None and 0 < report.genre_phrases_total < MIN_GENRE_PHRASES:
        _warn([f"'{report.genre}' in {report.output} holds only {report.genre_phrases_total} phrases "
               f"({report.genre_files_total} files; this run kept {report.kept} of the {report.files_read} files it "
               f"read): too little to learn a genre from (fewer than {MIN_GENRE_PHRASES})"])


def _prepare_with_progress(sources, genre, output, settings, *, again="Run the same command with --resume to continue",
                           **options):
    """``midigenre.prepare.prepare`` with a progress bar; Ctrl-C says how to go on (``again``) and exits 130."""
    from tqdm import tqdm

    from midigenre.prepare import prepare as run_prepare

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

    sigterm_as_interrupt()
    try:
        return run_prepare(sources, genre, output, settings, progress=progress, on_start=on_start, **options)
    except KeyboardInterrupt:
        if bar:
            bar.close()
        click.echo(f"Interrupted: {output} is unchanged; the {kept[0]} files done so far are kept in a journal. "
                   f"{again}.", err=True)
        sys.exit(130)
    finally:
        if bar:
            bar.close()


@midi.command()
@click.argument("caches", nargs=-1, required=True, type=click.Path(dir_okay=False))
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False), help="Cache file (.h5) to write.")
@click.option("--overwrite", is_flag=True, help="Replace --output if it exists.")
@click.option("--partial", is_flag=True, help="Merge an incomplete set of shards (some of --shard 1..N missing).")
def merge(caches, output, overwrite, partial):
    """Join caches prepared apart (--shard I/N on several machines) into one.

    The caches must have been prepared with the same settings. The result is the cache one
    run over all the files gives: files in path order, duplicates found across the caches,
    every drop reason and source path kept.

    \b
    Example:
      genre midi merge jazz-1.h5 jazz-2.h5 jazz-3.h5 jazz-4.h5 -o jazz.h5
    """
    from midigenre.merge import merge_caches

    with TqdmProgress(unit="cache", leave=False) as progress:
        reports = merge_caches(caches, output, overwrite=overwrite, progress=progress, partial=partial)
    for r in reports:
        click.echo(table(r.rows(), title=f"'{r.genre}' → {output}"))


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
    from midigenre.prepare import music_seconds

    with PhraseCache(cache) as c:
        h = c.header
        click.echo(table([
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
            hours = float(np.sum(music_seconds(files["n_phrases"], files["tempo"], c.settings))) / 3600 if len(files["tempo"]) else 0.0
            reasons = collections.Counter(dropped["reason"])
            rows = [("files kept", str(len(files["name"]))), ("files dropped", str(len(dropped["name"])))]
            rows += [(f"  {r}", str(reasons[r])) for r in DROP_REASONS if reasons.get(r)]
            rows += [("phrases", str(n)), ("hours of music", f"{hours:.2f}")]
            if len(files["n_phrases"]):
                rows.append(("phrases per song", f"median {int(np.median(files['n_phrases']))}, max {int(files['n_phrases'].max())}"))
            click.echo("\n" + table(rows, title=f"genre '{g}'"))
            if show_files:
                click.echo("  kept files (song number, phrases, tempo, name):")
                for i, (name, k, t) in enumerate(zip(files["name"], files["n_phrases"], files["tempo"])):
                    click.echo(f"    {i:5d}  {k:4d}  {t:6.1f}  {name}")
            if show_dropped:
                click.echo("  dropped files (reason: detail, name):")
                for name, r, d in zip(dropped["name"], dropped["reason"], dropped["detail"]):
                    click.echo(f"    {r}{': ' + d if d else ''}  {name}")


@midi.command()
@click.argument("source", type=click.Path(dir_okay=False))
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False), help="PNG file to write.")
@click.option("-g", "--genre", help="Genre in the cache (needed when it holds several).")
@click.option("-i", "--index", multiple=True, help="Phrase rows (cache) or phrase numbers (MIDI): 3, 0:8 or 1,4,9. "
              "Default: the first phrase of a cache, the first four of a MIDI file.")
@click.option("--song", help="Draw every phrase of one cached song: its number (see inspect --files) or name.")
@click.option("--meter", type=METERS, default="assume-4/4", show_default=True,
              help="Meter rule when SOURCE is a MIDI file.")
def plot(source, output, genre, index, song, meter):
    """Draw phrases of a cache or of a MIDI file as piano-roll images with bar lines.

    \b
    Examples:
      genre midi plot jazz.h5 --index 0:4 -o roll.png
      genre midi plot jazz.h5 --song ArtPepper_Anthropology -o song.png
      genre midi plot song.mid -o song.png
    """
    from midigenre.plots import plot_phrases
    from midigenre.phrases import select_phrases
    from shared.atomic import refuse_overwriting_input

    refuse_overwriting_input([source], output)
    drawing = plot_phrases(select_phrases(source, genre=genre, index=index, song=song, meter=meter), output)
    if drawing.total > len(drawing.panels):
        click.echo(f"note: drawing the first {len(drawing.panels)} of {drawing.total} lines", err=True)
    click.echo(f"wrote {drawing.path}")


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
    from midigenre.pianoroll import write_midi
    from midigenre.phrases import is_midi_path, select_phrases
    from shared.atomic import refuse_overwriting_input

    refuse_overwriting_input([cache], output)
    if is_midi_path(cache):
        raise GenreError(f"{cache} is a MIDI file; export reads a cache (.h5)")
    sel = select_phrases(cache, genre=genre, index=index, song=song, meter="strict")
    pm = sel.to_midi(tempo)
    write_midi(pm, output)
    n_notes = sum(len(i.notes) for i in pm.instruments)
    click.echo(f"wrote {output}: {len(sel.items)} phrases, {n_notes} notes, {pm.get_end_time():.1f} s at {tempo or sel.bpm:.1f} BPM")


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
    from midigenre.dataset import SongSplit
    from shared.atomic import refuse_overwriting_input

    refuse_overwriting_input(caches, output)
    merged = SongSplit.for_sources([(path, None) for path in caches], test_fraction=test_fraction, seed=seed)
    merged.save(output)
    rows = [(g, f"{len(p['train'])} train songs, {len(p['test'])} test songs") for g, p in merged.genres.items()]
    click.echo(table(rows, title=f"wrote {output} (seed {seed}, test fraction {test_fraction})"))


def _multi_default(name: str) -> str | None:
    """The help's default of a training option: the CycleGAN's (the paper's), and the multi-genre
    model's where it differs (the shipped four-genres-melody's recipe, MultiGenreConfig)."""
    import dataclasses

    from cli.options import _show
    from midigenre.config import MultiGenreConfig

    pair = {f.name: f.default for f in dataclasses.fields(TrainConfig)}
    multi = {f.name: f.default for f in dataclasses.fields(MultiGenreConfig)}
    if name not in multi:
        return f"{_show(pair[name])}; CycleGAN only"
    if name == "batch_size":
        return f"{pair[name]} of each genre; with --genre: {multi[name]} in all"
    return None if multi[name] == pair[name] else f"{_show(pair[name])}; with --genre: {_show(multi[name])}"


@midi.command()
@click.option("--genre", "genre_specs", multiple=True, help="NAME=FILE.h5 (or FILE.h5[:GENRE]), once per genre: two or "
              "more train one multi-genre generator (any genre to any genre). NAME=FOLDER: a folder of MIDI files, "
              "prepared first into OUT/caches/NAME.h5 (see --meter).")
@click.option("--meter", "meter_specs", multiple=True, metavar="[NAME=]RULE", help="With --genre NAME=FOLDER: the meter "
              "rule the folders are prepared with (strict, lenient, assume-4/4 as in `genre midi prepare`), RULE for all "
              "or NAME=RULE for one genre; repeatable.  [default: strict]")
@click.option("--a", "a_spec", help="Genre A of a CycleGAN: a cache FILE.h5, or FILE.h5:GENRE when it holds several.")
@click.option("--b", "b_spec", help="Genre B of a CycleGAN, likewise.")
@click.option("--mixed", "mixed_spec", help="A third genre (FILE.h5[:GENRE]) for the full variant's mixed discriminators.")
@click.option("--out", required=True, type=click.Path(file_okay=False), help="Run folder (created).")
@click.option("--config", "config_file", type=click.Path(dir_okay=False), help="YAML/JSON file of training settings; "
              "options given on the command line win.")
@config_options(TrainConfig, into="given", given_only=True, default_text=_multi_default)
@config_options(MultiGenreConfig, into="multi_given", only=("critic", "conditioning", "keep_source_into"), given_only=True,
                prefix="With --genre. ")
@click.option("--split", "split_file", type=click.Path(dir_okay=False), help="Use this split.json (default: a new song-level split).")
@click.option("--device", default="auto", show_default=True, help=DEVICE_HELP)
@click.option("--precision", type=click.Choice(["auto", "fp32", "bf16"]), default="auto", show_default=True,
              help="auto: bf16 autocast on CUDA, fp32 elsewhere; bf16: autocast on the CPU too (faster on CPUs with "
                   "AVX512-BF16).")
@click.option("--threads", type=click.IntRange(1), help="CPU threads for torch. Use 1 when other jobs share the "
              "machine: waiting OpenMP threads spin and can make 2 threads 10x slower than 1.")
@click.option("--resume", is_flag=True, help="Continue the interrupted run in --out exactly where it stopped (on any "
              "number of processes).")
@click.option("--choose", is_flag=True, help="With --genre, --keep-epochs and --valid-fraction: after the last epoch, "
              "choose the model on the validation songs into OUT/chosen/model, as `genre midi choose OUT --out "
              "OUT/chosen` does (it first trains the judge, a 10-epoch classifier, on the training songs); a "
              "melody-locked model whose every --genre is a FOLDER is chosen by keeping the song on whole validation "
              "songs, as with --keep-the-song.")
@click.option("--recipe", "recipe_name", metavar="NAME|FILE.toml", help="Make a model by a recipe (a shipped one, e.g. "
              "four-genres-melody, or a recipe file) in one go: prepare the --genre NAME=FOLDER options, train, choose on "
              "the validation songs, measure on the held-out ones and write OUT/model with its card. Every step is kept: "
              "the same command continues an interrupted run. Takes --genre, --split (a file or a shipped model's name), "
              "--device, --precision and --threads only.")
@nproc_option
def train(genre_specs, meter_specs, a_spec, b_spec, mixed_spec, out, config_file, given, multi_given,
          split_file, device, precision, threads, resume, choose, nproc,
          recipe_name=None):
    """Train a CycleGAN between two genres (--a, --b), or one generator over any number of genres (--genre),
    or make a whole model by a recipe (--recipe).

    \b
    Example (the shipped jazz-classical-melody, made again in one command: prepare, train, choose,
    measure, model folder with its card; see docs/recipes.md):
      genre midi train --recipe jazz-classical-melody --genre jazz=midi/jazz \\
          --genre classical=midi/classical --genre pop=midi/pop --genre folk=midi/folk --out runs/jc
    \b
    Example (a jazz↔classical CycleGAN on the CPU):
      genre midi prepare ../shared/data/midi/jazz -g jazz -o jazz.h5 --meter lenient
      genre midi prepare ../shared/data/midi/classical -g classical -o classical.h5 --meter lenient
      genre midi train --a jazz.h5 --b classical.h5 --preset small --epochs 30 --out runs/jc

    \b
    Example (one model for every pair of four genres, StarGAN-style; with --genre the defaults
    are the recipe of the shipped four-genres-melody model):
      genre midi train --genre jazz=jazz.h5 --genre classical=classical.h5 --genre pop=pop.h5 \\
                       --genre folk=folk.h5 --out runs/four
    \b
    Example (the same from four folders of MIDI files, prepared on the way):
      genre midi train --genre jazz=midi/jazz --genre classical=midi/classical --genre pop=midi/pop \\
                       --genre folk=midi/folk --meter lenient --meter pop=assume-4/4 --out runs/four

    With --genre, an epoch is K × (the smallest genre's training phrases) / batch size steps;
    every batch holds the genres evenly and larger genres show new phrases each epoch (nothing
    is thrown away). Two --genre options train the multi-genre model on two genres; --a/--b
    train the CycleGAN. The caches may differ in their meter rule only (pop with assume-4/4).

    Writes config.json (its "kind" says which model), split.json, log.csv,
    samples/epoch_NNN.png, the model (model.safetensors + model.json, for `genre midi transfer`)
    and checkpoint.pt after every epoch. Ctrl-C saves the state; --resume continues it.
    """
    from shared.runtime import set_threads

    if recipe_name:
        from cli.recipe import train_recipe

        other = [k for k, v in {**given, "--meter": meter_specs, "--a": a_spec, "--b": b_spec, "--mixed": mixed_spec,
                                "--config": config_file, "--resume": resume, "--choose": choose, "--nproc": nproc,
                                **multi_given}.items()
                 if v not in (None, False, (), [])]
        if other:
            name = other[0] if other[0].startswith("--") else "--" + other[0].replace("_", "-")
            raise GenreError(f"{name}: the recipe sets how the model is trained; change it in a copy of the recipe "
                             "file (--recipe FILE.toml)")
        return train_recipe(recipe_name, genre_specs, split_file, out, device,
                            None if precision == "auto" else precision, threads)
    if genre_specs and (a_spec or b_spec):
        raise GenreError("give either --genre (a multi-genre model) or --a and --b (a CycleGAN), not both")
    if meter_specs and not genre_specs:
        raise GenreError("--meter belongs to --genre NAME=FOLDER; prepare the CycleGAN's caches with `genre midi prepare`")
    pair_has = {"critic": "its genre critic is always its own network", "conditioning": "its generators take no genre",
                "keep_source_into": "it has --keep-source"}
    for name, value in multi_given.items():
        if value is not None and not genre_specs:
            raise GenreError(f"--{name.replace('_', '-')} belongs to the multi-genre model (--genre); the CycleGAN: "
                             f"{pair_has[name]}")
    if choose and not genre_specs:
        raise GenreError("--choose belongs to the multi-genre model (--genre)")
    given = {**given, **multi_given}
    if genre_specs and nproc and nproc > 1:
        raise GenreError("--nproc trains the CycleGAN only for now; train the multi-genre model in one process")
    if nproc and nproc > 1 and not genre_specs:  # settings errors once, here, before any process starts
        from midigenre.train import run_settings

        cfg, _ = run_settings(Path(out), resume=resume, config_file=config_file, given=given)
        if cfg.batch_size < nproc:
            raise GenreError(f"--batch-size {cfg.batch_size} is the global batch: it cannot feed {nproc} processes; "
                             f"use at least {nproc}")
    if relaunch(nproc):
        return
    if genre_specs:
        if mixed_spec:
            raise GenreError("--mixed belongs to the CycleGAN's full variant (--a, --b); the multi-genre model has none")
        if len(genre_specs) < 2:
            raise GenreError(f"one genre only ({genre_specs[0]}): give --genre NAME=FILE.h5 for two or more genres")
        return _train_multi(genre_specs, meter_specs, out, config_file, given, split_file, device, precision, threads,
                            resume, choose)
    if not (a_spec and b_spec):
        raise GenreError("give --a and --b (a CycleGAN) or two or more --genre NAME=FILE.h5 (a multi-genre model)")
    from midigenre.train import CycleGANTask, GenreSource, run_settings

    set_threads(threads)
    out_path = Path(out)
    cfg, ignored = run_settings(out_path, resume=resume, config_file=config_file, given=given)
    if ignored:
        click.echo(f"note: --resume keeps the run's own settings; ignoring "
                   f"{', '.join('--' + k.replace('_', '-') for k in ignored)}", err=True)
    mixed = GenreSource.parse(mixed_spec) if mixed_spec else None
    split_arg = split_file or ((out_path / "split.json") if resume else None)
    task = CycleGANTask(GenreSource.parse(a_spec), GenreSource.parse(b_spec), out_path, cfg, mixed=mixed,
                        split=split_arg, device=device, precision=precision)
    if resume:
        task.resume()
    _warn(_small_data(task.split, [task.a, task.b]))
    d = task.describe()
    click.echo(f"{d['a']['genre']} ↔ {d['b']['genre']}: {d['train_phrases_per_genre']} training phrases per genre "
               f"(balanced), {task.steps_per_epoch()} steps/epoch, preset {cfg.preset}, variant {cfg.variant}"
               f"{', SN' if cfg.spectral_norm else ''}{', SA' if cfg.self_attention else ''}, device {task.device}"
               + (f", {task.dist.world} processes (global batch {cfg.batch_size})" if task.dist.active else "")
               + (f"; resuming at epoch {task.epoch + 1}, step {task.step_in_epoch}" if resume else ""), err=True)
    mixed_arg = f" --mixed {mixed_spec}" if mixed_spec else ""
    _fit(task, out_path, f"genre midi train --a {a_spec} --b {b_spec}{mixed_arg} --out {out} --resume")


def _small_data(split, sources) -> list[str]:
    from midigenre.dataset import small_data_notes

    return small_data_notes([(s.path, s.genre) for s in sources], split)


def _genre_caches(genre_specs, meter_specs, out: Path) -> list[str]:
    """The --genre specs with each NAME=FOLDER of MIDI files replaced by NAME=OUT/caches/NAME.h5,
    prepared now (all cores; an interrupted preparation continues where it stopped) unless that
    cache is there from an earlier run of the command."""
    import os

    from midigenre.pianoroll import METER_MODES, RollSettings
    from midigenre.prepare import prepared_earlier

    meters, default = {}, "strict"
    for spec in meter_specs:
        name, _, rule = spec.rpartition("=")
        if rule not in METER_MODES:
            raise GenreError(f"--meter {spec}: the rule must be one of {', '.join(METER_MODES)}")
        if name:
            meters[name] = rule
        else:
            default = rule
    folders = {}
    for spec in genre_specs:
        name, eq, path = spec.partition("=")
        if eq and name and path and Path(path).is_dir():
            if not name.replace("-", "").replace("_", "").isalnum():
                raise GenreError(f"--genre {spec}: a genre prepared from a folder needs a plain name (letters, digits, "
                                 f"- and _), it names OUT/caches/NAME.h5")
            folders[name] = Path(path)
    unknown = sorted(set(meters) - set(folders))
    if unknown:
        raise GenreError(f"--meter {unknown[0]}=…: no --genre {unknown[0]}=FOLDER to prepare")
    if meter_specs and not folders:
        raise GenreError("--meter prepares folders of MIDI files; every --genre here is a cache already")
    out_specs = []
    for spec in genre_specs:
        name = spec.partition("=")[0]
        if name not in folders:
            out_specs.append(spec)
            continue
        cache = out / "caches" / f"{name}.h5"
        settings = RollSettings(meter=meters.get(name, default))
        if prepared_earlier(cache, name, settings):
            click.echo(f"{name}: using {cache}, prepared by an earlier run of this command", err=True)
        else:
            cache.parent.mkdir(parents=True, exist_ok=True)
            report = _prepare_with_progress([str(folders[name])], name, cache, settings, workers=os.cpu_count() or 1,
                                            resume=True, again="Run the same command again to continue")
            click.echo(table(report.rows(), title=f"Prepared '{name}' → {cache}"), err=True)
        out_specs.append(f"{name}={cache}")
    return out_specs


def _train_multi(genre_specs, meter_specs, out, config_file, given, split_file, device, precision, threads, resume,
                 choose=False):
    import dataclasses

    from midigenre.config import MultiGenreConfig
    from midigenre.multitrain import MultiGenreTask
    from midigenre.train import GenreSource, run_settings
    from shared.distributed import launched
    from shared.runtime import set_threads

    if launched():
        raise GenreError("the multi-genre model trains in one process for now; run it without torchrun")
    known = {f.name for f in dataclasses.fields(MultiGenreConfig)}
    foreign = [k for k, v in given.items() if v is not None and k not in known]
    if foreign:
        raise GenreError(f"{', '.join('--' + k.replace('_', '-') for k in foreign)}: an option of the CycleGAN (--a, --b), "
                         "not of the multi-genre model")
    set_threads(threads)
    out_path = Path(out)
    cfg, ignored = run_settings(out_path, resume=resume, config_file=config_file, given=given, kind="multi-genre")
    if ignored:
        click.echo(f"note: --resume keeps the run's own settings; ignoring "
                   f"{', '.join('--' + k.replace('_', '-') for k in ignored)}", err=True)
    if choose and not (cfg.keep_epochs and cfg.valid_fraction > 0):
        raise GenreError("--choose chooses among the kept epochs on the validation songs: give --keep-epochs and "
                         "--valid-fraction (e.g. 0.1) too")
    folders = [Path(spec.partition("=")[2]) for spec in genre_specs if Path(spec.partition("=")[2]).is_dir()]
    genre_specs = _genre_caches(genre_specs, meter_specs, out_path)  # after the settings checks: preparing takes long
    sources = [GenreSource.parse_named(spec) for spec in genre_specs]
    split_arg = split_file or ((out_path / "split.json") if resume else None)
    task = MultiGenreTask(sources, out_path, cfg, split=split_arg, device=device, precision=precision)
    if resume:
        task.resume()
    _warn(_small_data(task.split, task.sources))
    d = task.describe()
    click.echo(f"{' / '.join(task.genres)}: training phrases " + ", ".join(f"{g} {n}" for g, n in d["train_phrases"].items())
               + f"; {task.steps_per_epoch()} steps/epoch of {cfg.batch_size} phrases (each genre "
               f"{min(d['phrases_per_epoch'].values())} per epoch), preset {cfg.preset}"
               f"{', SN' if cfg.spectral_norm else ''}{', SA' if cfg.self_attention else ''}, device {task.device}"
               + (f"; resuming at epoch {task.epoch + 1}, step {task.step_in_epoch}" if resume else ""), err=True)
    specs = " ".join(f"--genre {spec}" for spec in genre_specs)
    _fit(task, out_path, f"genre midi train {specs} --out {out} --resume{' --choose' if choose else ''}")
    if choose:
        caches = {s.genre: str(s.path) for s in sources}
        if cfg.melody_lock and len(folders) == len(sources):  # the songs are known: choose by keeping them
            _choose_song([out_path], out_path / "chosen", data=folders, caches=caches, device=str(task.device))
            return
        if cfg.melody_lock:
            click.echo("note: choosing by the phrase pass mark; give every --genre as NAME=FOLDER (or run `genre midi "
                       "choose --keep-the-song --data DIR`) to choose this melody-locked model by keeping the song",
                       err=True)
        _choose([out_path], out_path / "chosen", classifier=None, caches=caches, max_phrases=200,
                device=str(task.device))


def _choose_song(runs, out: Path, **kwargs) -> None:
    from midigenre.choose import choose_song_model

    res = choose_song_model(runs, out, say=lambda line: click.echo(line, err=True), **kwargs)
    for k, r in res["chosen"].items():
        j = next(iter(r["judges"].values()))
        click.echo(f"  {k}: {Path(r['candidate']).name}, threshold {r['threshold']:g}"
                   + (", keeps the source's notes" if r.get("keep_source") else "")
                   + f": share {j['share']:.2f} (random edit {j['random_edit']:.2f}), melody on top "
                   f"{r['melody_top']:.2f}, harmony {r['harmony']:.2f}, onsets ×{r['onsets_ratio']:.2f}")
    click.echo(f"chosen model: {res['model']} (use it with --model {res['model']}; the held-out songs are still "
               "unread: genre midi train --recipe trains, chooses like this and measures on them in one command)")


def _choose(runs, out: Path, **kwargs) -> None:
    from midigenre.choose import choose_model

    choice = choose_model(runs, out, say=lambda line: click.echo(line, err=True), **kwargs)
    click.echo("\n".join(choice.lines()))
    click.echo(f"chosen model: {choice.model} (use it with --model {choice.model}; chosen on the validation songs, "
               "the held-out songs are still unread)")


@midi.command()
@click.argument("runs", nargs=-1, required=True, type=click.Path(file_okay=False))
@click.option("--out", required=True, type=click.Path(file_okay=False), help="Folder for the scores, the judge and "
              "the chosen model (OUT/model).")
@click.option("--classifier", type=click.Path(file_okay=False), help="The judge: a classifier of the runs' genres "
              "trained on their training songs (default: train one into OUT/judge-reference, or reuse it).")
@click.option("--genre", "genre_specs", multiple=True, metavar="NAME=FILE.h5", help="Where a genre's cache is when it "
              "moved since training; repeatable.")
@click.option("--up-to", "up_to_specs", multiple=True, metavar="RUN=N", help="Choose among epochs 1..N of the run "
              "whose folder is named RUN only (e.g. to stay within a training-time budget); repeatable.")
@click.option("--max-phrases", type=click.IntRange(1), default=200, show_default=True,
              help="Validation phrases per genre at most (a seeded choice).")
@click.option("--keep-the-song", is_flag=True, help="Choose by whether transfers keep the song (melody on top, "
              "harmony kept, onsets of the target genre, and the share judged target beyond random note edits) on whole "
              "validation songs, with and without keeping the source's notes: for melody-locked runs. Needs --data.")
@click.option("--data", "data_folders", multiple=True, type=click.Path(file_okay=False),
              help="With --keep-the-song: a folder holding the runs' songs (searched by name and content; repeatable).")
@click.option("--songs", "max_songs", type=click.IntRange(0), default=0, show_default=True,
              help="With --keep-the-song: validation songs per genre at most, the first by name (0: all).")
@click.option("--device", default="cpu", show_default=True, help="cpu, cuda, mps or auto.")
@click.option("--threads", type=click.IntRange(1), help="CPU threads for torch.")
def choose(runs, out, classifier, genre_specs, up_to_specs, max_phrases, keep_the_song, data_folders, max_songs, device,
           threads):
    """Choose a multi-genre model on the validation songs from the epochs RUNS kept.

    RUNS: multi-genre run folders trained with --keep-epochs and --valid-fraction (several:
    trainings of one song split); with --keep-the-song, pair (CycleGAN) runs too. Every kept epoch sends the validation phrases of each genre
    to every other genre, binarised at thresholds 0.20, 0.25, …, 0.90, judged by a classifier
    trained on the training songs. Per target genre, the epoch with the most directions into it
    that meet the target (share judged as the target > 0.5, transposition-invariant content
    change ≤ 1.2) gives the generator; each direction that can meet the target gets the
    threshold with the widest margin, the others their target genre's. Without --classifier
    the judge is trained first (10 epochs, on the training songs). The held-out songs are not
    read. Scores are kept in OUT/scores: run it again after more epochs and only the new ones
    are scored.

    \b
    Example:
      genre midi choose runs/four --out runs/four-chosen
      genre midi transfer song.mid --model runs/four-chosen/model --to folk -o song_folk.mid
      genre midi choose runs/four runs/four-pp --up-to four=6 --up-to four-pp=4 --out runs/c2
    """
    from shared.runtime import set_threads

    set_threads(threads)
    caches, up_to = {}, {}
    for spec in genre_specs:
        name, sep, path = spec.partition("=")
        if not sep or not name or not path:
            raise GenreError(f"--genre {spec}: give NAME=FILE.h5")
        caches[name] = path
    for spec in up_to_specs:
        name, sep, n = spec.partition("=")
        if not sep or not name or not n.isdigit() or int(n) < 1:
            raise GenreError(f"--up-to {spec}: give RUN=N, the run folder's name and an epoch number")
        up_to[name] = int(n)
    if device == "auto":
        from shared.runtime import pick_device

        device = str(pick_device("auto"))
    if keep_the_song:
        if not data_folders:
            raise GenreError("--keep-the-song reads whole validation songs: give the folder that holds them with --data")
        _choose_song([Path(r) for r in runs], Path(out), data=data_folders, classifier=classifier, caches=caches,
                     up_to=up_to, songs=max_songs, device=device)
        return
    if data_folders or max_songs:
        raise GenreError("--data and --songs go with --keep-the-song")
    _choose([Path(r) for r in runs], Path(out), classifier=classifier, caches=caches, up_to=up_to, max_phrases=max_phrases,
            device=device)


def _fit(task, out_path: Path, resume_command: str) -> None:
    """Train with a progress bar and a line per epoch; Ctrl-C or SIGTERM saves and says how to go on."""
    sigterm_as_interrupt()
    with TqdmProgress(unit="step", leave=False) as progress:
        def on_epoch(epoch, row):
            progress.close()
            losses = ", ".join(f"{k} {v:.3f}" for k, v in row.items() if "/" in k)
            click.echo(f"epoch {epoch}: {losses}; {row['seconds']:.0f} s, {row['phrases_per_s']:.1f} phrases/s", err=True)

        try:
            task.fit(progress=progress, on_epoch=on_epoch)
        except KeyboardInterrupt:
            progress.close()
            click.echo(f"Interrupted: the state is saved in {out_path / 'checkpoint.pt'}; continue with "
                       f"{resume_command}", err=True)
            sys.exit(130)
    click.echo(f"done: model in {out_path} (model.safetensors + model.json), log in {out_path / 'log.csv'}, "
               f"pictures in {out_path / 'samples'}")


@midi.command()
@click.argument("source", type=click.Path())
@click.option("--to", "target", required=True, help="Target genre (one of the model's).")
@click.option("--from", "source_genre", help="The songs' genre (default: told from the phrases and reported: by a "
              "multi-genre model itself, by a pair model's judge — its judge/ classifier, or four-genres-melody "
              "for the shipped jazz-classical-melody; a song told to be of the --to genre already, or of neither of a pair's genres, "
              "is refused). Saying it overrides the vote.")
@click.option("-o", "--output", required=True, type=click.Path(),
              help="Output MIDI file, or a folder when SOURCE is a folder.")
@click.option("--model", "model_path", type=click.Path(), help="Run folder, model folder or a shipped model's name.  "
              "[default: the shipped melody-locked jazz↔classical model, jazz-classical-melody]")
@click.option("--cycle", is_flag=True, help="Also write the cycled-back song (…​.cycle.mid).")
@click.option("--png", is_flag=True, help="Also draw source, result (and cycle) as a PNG next to the output.")
@click.option("--meter", type=METERS, help="Meter rule for reading songs (default: the model's data's).")
@click.option("--keep-source/--no-keep-source", default=None,
              help="Keep every note of the source and only add to it (--keep-source), or let the model drop notes "
                   "too (--no-keep-source).  [default: as the model was saved; its model card says which directions keep]")
@click.option("--melody", default="auto", show_default=True, metavar="auto|skyline|track:NAME|none",
              help="The song's melody: a track named as one (MELODY, melody, Lead, Vocal, Soprano, …) or else the "
                   "skyline of the top voice (auto); the skyline always; the track NAME; or none. A melody-locked model "
                   "keeps it note for note and writes nothing above it; every result reports how much of it is kept.")
@click.option("--drums", type=click.Choice(["auto", "keep", "drop"]), default="auto", show_default=True,
              help="Keep or drop the source's drum tracks; auto: as the target genre's instrument table says "
                   "(kept for pop and jazz, dropped for classical and folk).")
@click.option("--instruments", type=click.Path(dir_okay=False), help="A JSON or YAML instrument table "
              "{genre: {chords: PROGRAM, bass: PROGRAM, drums: keep|drop, bass_below: PITCH}} for the notes the "
              "transfer adds (default: midigenre/arrangement.py's INSTRUMENTS).")
@click.option("--roll", is_flag=True, help="Write one piano track on the grid at velocity 100 (the piano roll) "
              "instead of the arrangement.")
@click.option("--device", default="cpu", show_default=True, help="cpu, cuda, mps or auto.")
def transfer(source, target, source_genre, output, model_path, cycle, png, meter, keep_source, melody, drums,
             instruments, roll, device):
    """Turn a whole MIDI song (or a folder of songs) into another genre.

    Works with a pair CycleGAN and with a multi-genre model (any of its genres to any other).

    \b
    Examples:
      genre midi transfer data/examples/jazz_example.mid --from jazz --to classical -o out.mid --png
      genre midi transfer songs/ --model runs/jc --to jazz -o out/
      genre midi transfer song.mid --model runs/four --to folk -o folk.mid [--from pop]
    """
    from midigenre.transfer import transfer_files

    def done(song):
        if song.ok:
            res = song.result
            bars = len(res.source) / res.settings.steps_per_bar
            told = ""
            if res.predicted is not None:
                told = (f" (source genre told by {res.told_by}: {res.predicted[res.source_genre]:.0%} of the phrases; "
                        + ", ".join(f"{g} {v:.0%}" for g, v in res.predicted.items()) + ")")
            elif res.told_by == "assumed":
                told = " (source genre assumed: this model cannot tell a song's genre; say it with --from)"
            if res.n_outside:
                s = res.settings
                told += (f"; {res.n_outside} of its {res.n_notes} notes lie outside MIDI {s.lowest_pitch}.."
                         f"{s.lowest_pitch + s.n_pitches - 1} and are left out")
            m = res.song_measures()
            kept = ("melody: none" if res.melody_found == "none" else
                    f"melody ({res.melody_found}) still sounding {m['melody_sounding']:.0%}, on top {m['melody_top']:.0%}")
            click.echo(f"{song.source.name}: {res.source_genre} → {res.target_genre}{told}, {bars:.0f} bars, content change "
                       f"{res.content_change():.2f}; {kept}; harmony kept {m['harmony']:.2f}; "
                       f"wrote {', '.join(str(p) for p in song.written)}")

    batch = transfer_files(source, output, target, model=model_path, device=device, meter=meter, cycle=cycle, png=png,
                           on_song=done, source_genre=source_genre, keep_source=keep_source, melody=melody,
                           drums=drums, instruments=instruments, roll=roll)
    failed = batch.failed
    if batch.earlier_outputs:
        click.echo(f"note: left out {len(batch.earlier_outputs)} results of an earlier transfer in {output} "
                   f"(e.g. {batch.earlier_outputs[0].name})", err=True)
    if len(batch.songs) == 1 and failed:
        raise GenreError(f"cannot transfer {failed[0].source}: {failed[0].error}")
    for song in failed:
        click.echo(f"skipped {song.source}: {song.error}", err=True)
    if not batch.done:
        raise GenreError(f"no song of {source} could be transferred: all {len(failed)} failed (reasons above)")
    if failed:
        click.echo(f"{len(batch.done)} songs transferred, {len(failed)} skipped", err=True)


@midi.command("train-classifier")
@click.option("--genre", "genre_specs", multiple=True, required=True,
              help="NAME=FILE.h5 (or FILE.h5[:GENRE]); give two or more.")
@click.option("--out", required=True, type=click.Path(file_okay=False), help="Folder for the classifier.")
@config_options(ClassifierConfig, into="settings")
@click.option("--split", "split_file", type=click.Path(dir_okay=False), help="Use this split.json.")
@click.option("--device", default="auto", show_default=True, help=DEVICE_HELP)
@nproc_option
def train_classifier_cmd(genre_specs, out, settings, split_file, device, nproc):
    """Train the genre classifier (binary or multi-class) that measures transfer strength.

    Trains on the training songs of each genre, reports accuracy, per-class precision, recall
    and F1 on the held-out songs, and writes model.safetensors + model.json, report.json and
    confusion.png into --out. With the default seed and test fraction its held-out songs are
    the same as a CycleGAN run's, so S_tot is measured on music neither model saw.

    \b
    Example:
      genre midi train-classifier --genre jazz=jazz.h5 --genre classical=classical.h5 --out clf/
    """
    if relaunch(nproc):
        return
    from midigenre.classifier import train_classifier
    from midigenre.train import GenreSource
    from shared.config import from_dict

    sources = [GenreSource.parse_named(spec) for spec in genre_specs]
    cfg = from_dict(ClassifierConfig, settings, what="classifier settings")
    _warn(_small_data(None, sources))

    with TqdmProgress(unit="step", leave=False) as progress:
        def on_epoch(epoch, row):
            progress.close()
            click.echo(f"epoch {epoch}/{cfg.epochs}: loss {row['loss']:.4f}, train accuracy {row['train_accuracy']:.1%}",
                       err=True)

        rep = train_classifier(sources, out, cfg, split=split_file, device=device, progress=progress, on_epoch=on_epoch)
    rows = [("held-out accuracy", f"{rep['accuracy']:.2%} ({rep['test_phrases']} phrases of "
                                  f"{sum(rep['test_songs'].values())} songs)")]
    for g, m in rep["per_class"].items():
        rows.append((f"  {g}", f"precision {m['precision']:.3f}  recall {m['recall']:.3f}  F1 {m['f1']:.3f}  (n={m['support']})"))
    rows.append(("training time", f"{rep['train_seconds']:.0f} s"))
    click.echo(table(rows, title=f"classifier {' / '.join(s.genre for s in sources)} → {out}"))
    from midigenre.dataset import MIN_PART_PHRASES

    _warn([f"the held-out part of '{g}' is {m['support']} phrases: too few for its scores to mean much"
           for g, m in rep["per_class"].items() if m["support"] < MIN_PART_PHRASES])
    click.echo(f"wrote {Path(out) / 'confusion.png'} and {Path(out) / 'report.json'}")


@midi.command()
@click.option("--model", "model_path", type=click.Path(), help="Run or model folder, or a shipped model's name.  [default: jazz-classical-melody]")
@click.option("--classifier", "clf_path", required=True, type=click.Path(), help="Classifier folder (train-classifier).")
@click.option("--a", "cache_a", type=click.Path(dir_okay=False), help="Cache with the model's genre A (default: its own).")
@click.option("--b", "cache_b", type=click.Path(dir_okay=False), help="Cache with the model's genre B.")
@click.option("--all-phrases", is_flag=True, help="Use every phrase of the caches, not only the held-out songs.")
@click.option("--sigma-c", type=click.FloatRange(min=0), default=0.0, show_default=True, help="σ_C noise on the classifier input.")
@click.option("--fad", "with_fad", is_flag=True, help="Also render phrases with FluidSynth and add FAD (transferred vs "
              "real target genre, and source vs real target genre as the baseline).")
@click.option("--fad-embedding", default="facebook/wav2vec2-base", show_default=True,
              help="Audio embedding for --fad: an audio classifier folder or a wav2vec2 name/folder.")
@click.option("--fad-phrases", type=click.IntRange(2), default=200, show_default=True, help="Phrases per set rendered for --fad.")
@click.option("--soundfont", type=click.Path(), help="Sound font for --fad (default: $GENRE_SOUNDFONT or the system's).")
@click.option("-o", "--output", type=click.Path(dir_okay=False), help="Write the results as JSON.")
def evaluate(model_path, clf_path, cache_a, cache_b, all_phrases, sigma_c, with_fad, fad_embedding, fad_phrases, soundfont, output):
    """Transfer strength (S_tot) and content change of a transfer model on held-out songs.

    \b
    Example:
      genre midi evaluate --classifier clf/ --a jazz.h5 --b classical.h5 -o eval.json
    """
    from midigenre.classifier import Classifier
    from midigenre.evaluate import evaluate_transfer, heldout_phrases
    from midigenre.transfer import DEFAULT_MODEL, TransferModel
    from shared.atomic import refuse_overwriting_input

    path = model_path or DEFAULT_MODEL
    refuse_overwriting_input([cache_a, cache_b, soundfont, *model_files(path), *model_files(clf_path),
                              *(model_files(fad_embedding) if with_fad else [])], output)
    model = TransferModel.load(path, kind="cyclegan")  # a multi-genre model: benchmarks/multi_genre.py
    clf = Classifier.load(clf_path)
    x_a, x_b, what = heldout_phrases(path, model, cache_a, cache_b, all_phrases=all_phrases)
    res = evaluate_transfer(model, clf, x_a, x_b, sigma_c=sigma_c)
    a, b = res["genres"]["a"], res["genres"]["b"]
    click.echo(f"{a} ↔ {b} on {what}: {len(x_a)} {a} and {len(x_b)} {b} phrases; classifier {clf_path}"
               + (f", σ_C = {sigma_c}" if sigma_c else ""))
    head = f"  {'direction':<22}{'n':>6}{'P_src(x)':>10}{'P_src(x̂)':>10}{'P_src(x̃)':>10}{'S':>8}   content change"
    click.echo(head)
    for key in (f"{a}→{b}", f"{b}→{a}"):
        r = res[key]
        click.echo(f"  {key:<22}{r['n']:>6}{r['P_src(x)']:>10.3f}{r['P_src(transferred)']:>10.3f}{r['P_src(cycled)']:>10.3f}"
                   f"{r['S']:>8.3f}   {r['content_change']['mean']:.2f} ± {r['content_change']['std']:.2f}")
    click.echo(f"  S_tot = {res['S_tot']:.1%}; content change {res['content_change']['mean']:.2f} ± "
               f"{res['content_change']['std']:.2f} (both directions)")
    click.echo("  Does it keep the song? (melody: each phrase's top voice; judged target by the classifier, beside "
               "random edits at the transfer's own removed/added rates and the melody over a random real "
               "accompaniment of the target genre)")
    click.echo(f"  {'direction':<22}{'melody sounding/top':>21}{'harmony (random acc.)':>23}{'onsets ×':>10}"
               f"   judged target: transfer / random edit / random acc.")
    for key in (f"{a}→{b}", f"{b}→{a}"):
        g = res[key]["song"]
        j = g["judges"]["classifier"]
        click.echo(f"  {key:<22}{g['melody_sounding']:>13.2f} / {g['melody_top']:.2f}{g['harmony']:>15.2f} "
                   f"({g['harmony_accompaniment']:.2f}){g['onsets_ratio']:>10.2f}   "
                   f"{j['share']:.2f} / {j['random_edit']:.2f} / {j['random_accompaniment']:.2f}")
    if with_fad:
        from audiogenre.phrase_fad import transfer_fad
        from audiogenre.fad_embed import embedding_backend

        backend = embedding_backend(fad_embedding)
        segment = backend.segment_seconds or 1.0
        with TqdmProgress(unit="set") as progress:
            res["fad"] = transfer_fad(model, x_a, x_b, backend, max_phrases=fad_phrases, soundfont=soundfont,
                                      segment=segment, progress=progress)
        click.echo(f"  FAD ({fad_embedding}, 1 embedding per {segment:g} s, rendered with FluidSynth; lower = closer to the target):")
        for key in (f"{a}→{b}", f"{b}→{a}"):
            f = res["fad"][key]
            click.echo(f"  {key:<22}transferred vs real target {f['fad_transferred_vs_target']:10.3f}   "
                       f"source vs real target {f['fad_source_vs_target']:10.3f}   (n = {f['n_transferred']} each vs "
                       f"{f['n_target']} target embeddings)")
    if output:
        from shared.atomic import write_json

        write_json(output, {"model": str(path), "classifier": str(clf_path), "data": what, **res})
        click.echo(f"wrote {output}")


@midi.command()
@click.argument("source", type=click.Path(dir_okay=False))
@click.option("--classifier", "clf_path", required=True, type=click.Path(), help="Classifier folder.")
@click.option("-g", "--genre", "target", required=True, help="Explain the score of this genre.")
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False), help="PNG to write.")
@click.option("-i", "--index", multiple=True, help="Phrases: rows of a cache, or phrase numbers of a MIDI file (0:4). "
              "Default: the whole MIDI file, or the first row of a cache.")
@click.option("--song", help="A whole cached song (number or name).")
@click.option("--cache-genre", help="Genre group in the cache when it holds several.")
@click.option("--method", type=ATTRIBUTION_METHODS, default="saliency", show_default=True)
@click.option("--meter", type=METERS, default="assume-4/4", show_default=True,
              help="Meter rule when SOURCE is a MIDI file.")
def explain(source, clf_path, target, output, index, song, cache_genre, method, meter):
    """Draw which notes drive the classifier's score for a genre (saliency over the piano roll).

    Positive gradients × input, normalised per phrase, cells under ¼ of the maximum removed
    (Brunner et al. 2019). Notes in grey, attribution in yellow → red; pitch names and bar lines.

    \b
    Examples:
      genre midi explain song.mid --classifier clf/ --genre jazz -o saliency.png
      genre midi explain jazz.h5 --song 3 --classifier clf/ --genre jazz -o song3.png
    """
    from midigenre.classifier import Classifier
    from midigenre.plots import plot_attribution
    from midigenre.phrases import select_phrases
    from shared.atomic import refuse_overwriting_input

    refuse_overwriting_input([source, *model_files(clf_path)], output)
    clf = Classifier.load(clf_path)
    clf.index(target)
    sel = select_phrases(source, genre=cache_genre, index=index, song=song, meter=meter, whole_midi=True)
    ex = plot_attribution(sel, clf, target, output, method=method)
    if ex.total > len(ex.panels):
        click.echo(f"note: drawing the first {len(ex.panels)} of {ex.total} lines", err=True)
    click.echo(f"wrote {ex.path}: {method} for '{target}' on {len(sel.items)} phrases "
               f"(mean P({target}) = {ex.probabilities.mean():.2f})")
