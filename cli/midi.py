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


def _load_rolls(source, genre, index, song, meter, whole_midi: bool = False):
    """Rolls to draw or export: list of (title, phrase (64, 84), phrase number), settings, tempo."""
    items, settings, tempo = _select_rolls(source, genre, index, song, meter, whole_midi)
    if not items:
        raise GenreError("no phrases selected (check --index: START:STOP needs START < STOP)")
    return items, settings, tempo


def _select_rolls(source, genre, index, song, meter, whole_midi):
    if song is not None and index:
        raise GenreError("give --index or --song, not both")
    from midigenre.pianoroll import RollSettings, read_song, split_phrases

    if _is_midi_path(source):
        if song is not None:
            raise GenreError("--song picks a song of a cache; for a MIDI file use --index")
        settings = RollSettings(meter=meter)
        s = read_song(source, settings)
        phrases, pos = split_phrases(s.roll, settings, keep_empty=True, pad_tail=True)
        chosen = _parse_indices(index) if index else list(range(len(phrases) if whole_midi else min(4, len(phrases))))
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
    if song is not None or _is_midi_path(source):
        # one panel per 4 consecutive phrases: reads like a score, line by line
        title = items[0][0].rsplit(", phrase", 1)[0]
        phrases = np.stack([ph for _, ph, _ in items])
        pos = np.array([p for _, _, p in items])
        roll = join_phrases(phrases, pos - pos.min())
        per_line = 4 * settings.phrase_steps
        bar0 = int(pos.min()) * settings.bars_per_phrase  # bars before the first drawn phrase
        panels, firsts = [], []
        for start in range(0, len(roll), per_line):
            chunk = roll[start : start + per_line]
            first = bar0 + start // settings.steps_per_bar + 1
            last = first + len(chunk) // settings.steps_per_bar - 1
            panels.append((f"{title}, bars {first}–{last}", chunk))
            firsts.append(first)
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
    from midigenre.dataset import SongSplit

    merged = SongSplit.for_sources([(path, None) for path in caches], test_fraction=test_fraction, seed=seed)
    merged.save(output)
    rows = [(g, f"{len(p['train'])} train songs, {len(p['test'])} test songs") for g, p in merged.genres.items()]
    click.echo(_table(rows, title=f"wrote {output} (seed {seed}, test fraction {test_fraction})"))


@midi.command()
@click.option("--a", "a_spec", required=True, help="Genre A: a cache FILE.h5, or FILE.h5:GENRE when it holds several.")
@click.option("--b", "b_spec", required=True, help="Genre B, likewise.")
@click.option("--mixed", "mixed_spec", help="A third genre (FILE.h5[:GENRE]) for the full variant's mixed discriminators.")
@click.option("--out", required=True, type=click.Path(file_okay=False), help="Run folder (created).")
@click.option("--config", "config_file", type=click.Path(dir_okay=False), help="YAML/JSON file of training settings; "
              "options given on the command line win.")
@click.option("--preset", type=click.Choice(["paper", "small"]), help="Architecture: paper (Brunner et al.) or small (CPU).  [default: small]")
@click.option("--variant", type=click.Choice(["base", "partial", "full"]), help="Extra mixed-data discriminators.  [default: base]")
@click.option("--sn/--no-sn", default=None, help="Spectral normalisation on every G and D convolution.")
@click.option("--sa/--no-sa", default=None, help="Self-attention blocks (SAGAN) in G and D.")
@click.option("--epochs", type=click.IntRange(1), help="Epochs.  [default: 30]")
@click.option("--batch-size", type=click.IntRange(1), help="[default: 16]")
@click.option("--lr", type=click.FloatRange(min=0, min_open=True), help="Adam learning rate.  [default: 2e-4]")
@click.option("--sigma-d", type=click.FloatRange(min=0), help="σ_D of the half-normal noise on D inputs.  [default: 1]")
@click.option("--seed", type=int, help="[default: 0]")
@click.option("--split", "split_file", type=click.Path(dir_okay=False), help="Use this split.json (default: a new song-level split).")
@click.option("--device", default="auto", show_default=True, help="auto (CUDA, MPS, CPU), cpu, cuda or mps.")
@click.option("--precision", type=click.Choice(["auto", "fp32", "bf16"]), default="auto", show_default=True,
              help="auto: bf16 autocast on CUDA, fp32 elsewhere; bf16: autocast on the CPU too (faster on CPUs with "
                   "AVX512-BF16).")
@click.option("--threads", type=click.IntRange(1), help="CPU threads for torch. Use 1 when other jobs share the "
              "machine: waiting OpenMP threads spin and can make 2 threads 10x slower than 1.")
@click.option("--resume", is_flag=True, help="Continue the interrupted run in --out exactly where it stopped.")
def train(a_spec, b_spec, mixed_spec, out, config_file, preset, variant, sn, sa, epochs, batch_size, lr, sigma_d, seed,
          split_file, device, precision, threads, resume):
    """Train a CycleGAN that turns genre A into genre B and back.

    \b
    Example (a jazz↔classical model on the CPU):
      genre midi prepare ../shared/data/midi/jazz -g jazz -o jazz.h5 --meter lenient
      genre midi prepare ../shared/data/midi/classical -g classical -o classical.h5 --meter lenient
      genre midi train --a jazz.h5 --b classical.h5 --preset small --epochs 30 --out runs/jc

    Writes config.json, split.json, log.csv, samples/epoch_NNN.png, the model (model.safetensors
    + model.json, for `genre midi transfer`) and checkpoint.pt after every epoch. Ctrl-C saves
    the state; --resume continues it.
    """
    import torch
    from tqdm import tqdm

    from midigenre.train import GenreSource, Trainer, TrainConfig, load_config_file, run_config

    if threads:
        torch.set_num_threads(threads)

    out_path = Path(out)
    if resume:
        settings = run_config(out_path)["train"]
        ignored = [name for name, v in (("--config", config_file), ("--preset", preset), ("--variant", variant),
                                        ("--sn/--sa", sn if sn is not None else sa), ("--batch-size", batch_size),
                                        ("--lr", lr), ("--sigma-d", sigma_d), ("--seed", seed)) if v is not None]
        if ignored:
            click.echo(f"note: --resume keeps the run's own settings; ignoring {', '.join(ignored)}", err=True)
        if epochs:
            settings["epochs"] = epochs
    else:
        if (out_path / "checkpoint.pt").exists():
            raise GenreError(f"{out} already holds a run; pass --resume to continue it or choose another --out")
        settings = load_config_file(config_file) if config_file else {}
        given = {"preset": preset, "variant": variant, "spectral_norm": sn, "self_attention": sa, "epochs": epochs,
                 "batch_size": batch_size, "lr": lr, "sigma_d": sigma_d, "seed": seed}
        settings.update({k: v for k, v in given.items() if v is not None})
    cfg = TrainConfig.from_dict(settings)
    mixed = GenreSource.parse(mixed_spec) if mixed_spec else None
    split_arg = split_file or ((out_path / "split.json") if resume else None)
    trainer = Trainer(GenreSource.parse(a_spec), GenreSource.parse(b_spec), out_path, cfg, mixed=mixed,
                      split=split_arg, device=device, precision=precision)
    if resume:
        trainer.load_checkpoint()
    d = trainer.describe()
    click.echo(f"{d['a']['genre']} ↔ {d['b']['genre']}: {d['train_phrases_per_genre']} training phrases per genre "
               f"(balanced), {trainer.steps_per_epoch()} steps/epoch, preset {cfg.preset}, variant {cfg.variant}"
               f"{', SN' if cfg.spectral_norm else ''}{', SA' if cfg.self_attention else ''}, device {trainer.device}"
               + (f"; resuming at epoch {trainer.epoch + 1}, step {trainer.step_in_epoch}" if resume else ""), err=True)

    bar = None

    def on_step(epoch, step, n_steps, losses):
        nonlocal bar
        if bar is None:
            bar = tqdm(total=n_steps, initial=step - 1, desc=f"epoch {epoch + 1}/{cfg.epochs}", unit="step",
                       file=sys.stderr, dynamic_ncols=True, disable=None)
        bar.update(1)
        bar.set_postfix({k.replace("/", "_"): f"{v:.3f}" for k, v in losses.items()}, refresh=False)

    def on_epoch(epoch, row):
        nonlocal bar
        if bar is not None:
            bar.close()
            bar = None
        losses = ", ".join(f"{k} {v:.3f}" for k, v in row.items() if "/" in k)
        click.echo(f"epoch {epoch}: {losses}; {row['seconds']:.0f} s, {row['phrases_per_s']:.1f} phrases/s", err=True)

    _sigterm_as_interrupt()
    try:
        trainer.fit(on_step=on_step, on_epoch=on_epoch)
    except KeyboardInterrupt:
        if bar is not None:
            bar.close()
        mixed_arg = f" --mixed {mixed_spec}" if mixed_spec else ""
        click.echo(f"Interrupted: the state is saved in {out_path / 'checkpoint.pt'}; continue with "
                   f"genre midi train --a {a_spec} --b {b_spec}{mixed_arg} --out {out} --resume", err=True)
        sys.exit(130)
    click.echo(f"done: model in {out_path} (model.safetensors + model.json), log in {out_path / 'log.csv'}, "
               f"pictures in {out_path / 'samples'}")


@midi.command()
@click.argument("source", type=click.Path())
@click.option("--to", "target", required=True, help="Target genre (one of the model's two).")
@click.option("-o", "--output", required=True, type=click.Path(),
              help="Output MIDI file, or a folder when SOURCE is a folder.")
@click.option("--model", "model_path", type=click.Path(), help="Run folder, model folder or a shipped model's name.  "
              "[default: the shipped jazz↔classical model, jazz-classical]")
@click.option("--cycle", is_flag=True, help="Also write the cycled-back song (…​.cycle.mid).")
@click.option("--png", is_flag=True, help="Also draw source, result (and cycle) as a PNG next to the output.")
@click.option("--meter", type=click.Choice(METERS), help="Meter rule for reading songs (default: the model's data's).")
@click.option("--device", default="cpu", show_default=True, help="cpu, cuda, mps or auto.")
def transfer(source, target, output, model_path, cycle, png, meter, device):
    """Turn a whole MIDI song (or a folder of songs) into another genre.

    \b
    Examples:
      genre midi transfer data/examples/jazz_example.mid --to classical -o out.mid --png
      genre midi transfer songs/ --model runs/jc --to jazz -o out/
    """
    from midigenre.pianoroll import Unusable, write_midi
    from midigenre.prepare import find_midi_files
    from midigenre.transfer import DEFAULT_MODEL, TransferModel, transfer_midi

    model = TransferModel.load(model_path or DEFAULT_MODEL, device=device)
    model.direction(target)
    src = Path(source)
    if not src.exists():
        raise GenreError(f"no such file or folder: {source}")
    if src.is_dir():
        songs = [(p, Path(name)) for p, name in find_midi_files([src])]
        out_dir = Path(output)
        if out_dir.suffix.lower() in (".mid", ".midi"):
            raise GenreError(f"SOURCE is a folder, so -o must be a folder, not {output}")
        jobs = [(p, out_dir / name.with_name(f"{name.stem}.{target}.mid")) for p, name in songs]
    else:
        if Path(output).is_dir():
            jobs = [(src, Path(output) / f"{src.stem}.{target}.mid")]
        else:
            jobs = [(src, Path(output))]
    ok, failed = 0, []
    for song, out in jobs:
        try:
            res = transfer_midi(song, model, target, meter=meter, cycle=cycle)
        except Unusable as err:
            hint = " (try --meter assume-4/4 if the song is really in 4/4)" if err.reason in (
                "not 4/4", "meter changes", "no time signature", "several time signatures", "first beat not at 0") else ""
            failed.append(f"{song}: {err}{hint}")
            continue
        write_midi(res.midi(), out)
        written = [str(out)]
        if cycle:
            cyc = out.with_name(out.stem + ".cycle.mid")
            write_midi(res.midi("cycled"), cyc)
            written.append(str(cyc))
        if png:
            from shared.plotting import plot_rolls

            panels = [(f"{song.name} ({res.source_genre})", res.source), (f"→ {res.target_genre}", res.transferred)]
            if cycle:
                panels.append((f"→ {res.source_genre} again", res.cycled))
            bars = 16 * res.settings.steps_per_bar
            panels = [(t, r[:bars]) for t, r in panels]  # the first 16 bars: readable at a glance
            pic = plot_rolls(panels, out.with_suffix(".png"), lowest_pitch=res.settings.lowest_pitch,
                             steps_per_bar=res.settings.steps_per_bar, phrase_steps=res.settings.phrase_steps)
            written.append(str(pic))
        ok += 1
        bars = len(res.source) / res.settings.steps_per_bar
        click.echo(f"{song.name}: {res.source_genre} → {res.target_genre}, {bars:.0f} bars, content change "
                   f"{res.content_change():.2f}; wrote {', '.join(written)}")
    if len(jobs) == 1 and failed:
        raise GenreError(f"cannot transfer {failed[0]}")
    for line in failed:
        click.echo(f"skipped {line}", err=True)
    if not ok:
        raise GenreError(f"no song could be transferred: all {len(failed)} failed (reasons above)")
    if failed:
        click.echo(f"{ok} songs transferred, {len(failed)} skipped", err=True)


@midi.command("train-classifier")
@click.option("--genre", "genre_specs", multiple=True, required=True,
              help="NAME=FILE.h5 (or FILE.h5[:GENRE]); give two or more.")
@click.option("--out", required=True, type=click.Path(file_okay=False), help="Folder for the classifier.")
@click.option("--epochs", type=click.IntRange(1), default=20, show_default=True)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--test-fraction", type=click.FloatRange(0, 1, min_open=True, max_open=True), default=0.1, show_default=True)
@click.option("--split", "split_file", type=click.Path(dir_okay=False), help="Use this split.json.")
@click.option("--device", default="auto", show_default=True)
def train_classifier_cmd(genre_specs, out, epochs, seed, test_fraction, split_file, device):
    """Train the genre classifier (binary or multi-class) that measures transfer strength.

    Trains on the training songs of each genre, reports accuracy, per-class precision, recall
    and F1 on the held-out songs, and writes model.safetensors + model.json, report.json and
    confusion.png into --out. With the default seed and test fraction its held-out songs are
    the same as a CycleGAN run's, so S_tot is measured on music neither model saw.

    \b
    Example:
      genre midi train-classifier --genre jazz=jazz.h5 --genre classical=classical.h5 --out clf/
    """
    from midigenre.classifier import ClassifierConfig, train_classifier
    from midigenre.train import GenreSource

    from midigenre.dataset import PhraseCache

    sources = []
    for spec in genre_specs:
        name, _, path = spec.partition("=") if "=" in spec else ("", "", spec)
        if name and ":" not in path and Path(path).exists():
            with PhraseCache(path) as c:
                if name in c.genres:  # NAME picks the genre group of a cache that holds several
                    path = f"{path}:{name}"
        src = GenreSource.parse(path)
        if name and name != src.genre:
            raise GenreError(f"{spec}: the cache's genre is '{src.genre}', not '{name}'")
        sources.append(src)
    cfg = ClassifierConfig(epochs=epochs, seed=seed, test_fraction=test_fraction)

    def on_epoch(epoch, row):
        click.echo(f"epoch {epoch}/{epochs}: loss {row['loss']:.4f}, train accuracy {row['train_accuracy']:.1%}", err=True)

    rep = train_classifier(sources, out, cfg, split=split_file, device=device, on_epoch=on_epoch)
    rows = [("held-out accuracy", f"{rep['accuracy']:.2%} ({rep['test_phrases']} phrases of "
                                  f"{sum(rep['test_songs'].values())} songs)")]
    for g, m in rep["per_class"].items():
        rows.append((f"  {g}", f"precision {m['precision']:.3f}  recall {m['recall']:.3f}  F1 {m['f1']:.3f}  (n={m['support']})"))
    rows.append(("training time", f"{rep['train_seconds']:.0f} s"))
    click.echo(_table(rows, title=f"classifier {' / '.join(s.genre for s in sources)} → {out}"))
    click.echo(f"wrote {Path(out) / 'confusion.png'} and {Path(out) / 'report.json'}")


@midi.command()
@click.option("--model", "model_path", type=click.Path(), help="Run or model folder, or a shipped model's name.  [default: jazz-classical]")
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

    path = model_path or DEFAULT_MODEL
    model = TransferModel.load(path)
    clf = Classifier.load(clf_path)
    x_a, x_b, what = heldout_phrases(path, model, cache_a, cache_b, all_phrases=all_phrases)
    res = evaluate_transfer(model, clf, x_a, x_b, sigma_c=sigma_c)
    a, b = res["genres"]["a"], res["genres"]["b"]
    click.echo(f"{a} ↔ {b} on the {what}: {len(x_a)} {a} and {len(x_b)} {b} phrases; classifier {clf_path}"
               + (f", σ_C = {sigma_c}" if sigma_c else ""))
    head = f"  {'direction':<22}{'n':>6}{'P_src(x)':>10}{'P_src(x̂)':>10}{'P_src(x̃)':>10}{'S':>8}   content change"
    click.echo(head)
    for key in (f"{a}→{b}", f"{b}→{a}"):
        r = res[key]
        click.echo(f"  {key:<22}{r['n']:>6}{r['P_src(x)']:>10.3f}{r['P_src(transferred)']:>10.3f}{r['P_src(cycled)']:>10.3f}"
                   f"{r['S']:>8.3f}   {r['content_change']['mean']:.2f} ± {r['content_change']['std']:.2f}")
    click.echo(f"  S_tot = {res['S_tot']:.1%}; content change {res['content_change']['mean']:.2f} ± "
               f"{res['content_change']['std']:.2f} (both directions)")
    if with_fad:
        from audiogenre.bridge import transfer_fad
        from audiogenre.fad_embed import embedding_backend

        backend = embedding_backend(fad_embedding)
        segment = backend.segment_seconds or 1.0
        res["fad"] = transfer_fad(model, x_a, x_b, backend, max_phrases=fad_phrases, soundfont=soundfont, segment=segment)
        click.echo(f"  FAD ({fad_embedding}, 1 embedding per second, rendered with FluidSynth; lower = closer to the target):")
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
@click.option("--method", type=click.Choice(["saliency", "integrated-gradients"]), default="saliency", show_default=True)
@click.option("--meter", type=click.Choice(METERS), default="assume-4/4", show_default=True,
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
    import numpy as np

    from midigenre.attribution import attribute
    from midigenre.classifier import Classifier
    from shared.plotting import plot_rolls

    clf = Classifier.load(clf_path)
    clf.index(target)
    items, settings, _ = _load_rolls(source, cache_genre, index, song, meter, whole_midi=True)
    phrases = np.stack([ph for _, ph, _ in items]).astype(bool)
    maps = attribute(clf, phrases, target, method=method)
    probs = clf.probabilities(phrases)[:, clf.index(target)]
    pos = np.array([p for _, _, p in items])
    per_line = 4 if (song is not None or _is_midi_path(source)) else 1  # cache rows may come from different songs
    panels, overlays, firsts = [], [], []
    if per_line == 1:
        for k, (title, _, p) in enumerate(items):
            panels.append((f"{title}: P({target}) = {probs[k]:.2f}", phrases[k]))
            overlays.append(maps[k])
            firsts.append(int(p) * settings.bars_per_phrase + 1)
    else:  # a song: lines of 4 phrase places; phrases dropped from the cache (silent) stay gaps
        name = items[0][0].rsplit(", phrase", 1)[0]
        steps = settings.phrase_steps
        song_roll = np.zeros((int(pos.max()) + 1, steps, phrases.shape[-1]), dtype=bool)
        song_map = np.zeros(song_roll.shape, dtype=np.float32)
        song_roll[pos], song_map[pos] = phrases, maps
        prob_at = dict(zip(pos.tolist(), probs.tolist()))
        for start in range(int(pos.min()), int(pos.max()) + 1, per_line):
            places = range(start, min(start + per_line, len(song_roll)))
            shown = ", ".join(f"{prob_at[p]:.2f}" if p in prob_at else "–" for p in places)
            panels.append((f"{name}, phrases {places[0]}–{places[-1]}: P({target}) = {shown}",
                           song_roll[places.start : places.stop].reshape(-1, phrases.shape[-1])))
            overlays.append(song_map[places.start : places.stop].reshape(-1, phrases.shape[-1]))
            firsts.append(start * settings.bars_per_phrase + 1)
    if len(panels) > 12:
        click.echo(f"note: drawing the first 12 of {len(panels)} lines", err=True)
    path = plot_rolls(panels[:12], output, lowest_pitch=settings.lowest_pitch, steps_per_bar=settings.steps_per_bar,
                      phrase_steps=settings.phrase_steps, overlays=overlays[:12], first_bars=firsts[:12])
    click.echo(f"wrote {path}: {method} for '{target}' on {len(items)} phrases (mean P({target}) = {probs.mean():.2f})")
