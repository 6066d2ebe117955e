"""``genre audio …`` (and ``genre render``): the audio path.

Rendering MIDI with FluidSynth, audio data sets, the frozen-wav2vec2 genre classifier
(trained from an embedding cache), gradient-guided transformation of whole songs, and FAD.
Each command parses its options, calls the library (:mod:`audiogenre`) and prints.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from audiogenre.config import BackendTrainConfig
from cli.common import BACKENDS, DATASET_KINDS, LibraryChoice, TqdmProgress, model_files, nproc_option, relaunch
from cli.options import config_options
from shared.errors import GenreError
from shared.runtime import DEVICE_HELP


@click.group()
def audio() -> None:
    """Audio genre classification, gradient-guided transformation, transcription and FAD.

    \b
    With the shipped model (knows FluidSynth-rendered classical, folk, jazz, pop):
      genre render data/examples/jazz_example.mid -o jazz.wav
      genre audio transform jazz.wav --to classical -o jazz_classical.wav
    \b
    Re-arranged in another genre (transcription → symbolic CycleGAN → FluidSynth):
      genre audio arrange jazz.wav --to classical -o jazz_classical.wav
      genre audio transcribe jazz.wav -o jazz.mid
    \b
    Training your own, no downloads needed:
      genre audio render-dataset ../shared/data/midi -o audio/ --clips-per-genre 100
      genre audio train audio/ --backend cnn -o cnn/          # or resnet18, fusion, autoencoder, mlp
      genre audio make-encoder enc/ --size small             # wav2vec2 with random weights, or use
      genre audio train audio/ --encoder enc/ -o w2v/        #   --encoder facebook/wav2vec2-base
      genre audio embed cnn/ audio/ -o cnn.npz                # embeddings + PCA plot
      genre audio fad --reference audio/jazz --test audio/pop --embedding cnn/
    """


def _dataset_options(f):
    options = [
        click.option("--kind", type=DATASET_KINDS, default="auto", show_default=True,
                     help="folder: DATASET/<genre>/*.wav (or a render-dataset folder); fma: FMA (tracks.csv + MP3 tree, "
                          "official split); gtzan: GTZAN genre folders (jazz.00054 skipped)."),
        click.option("--gtzan-split", type=LibraryChoice("audiogenre.datasets", "GTZAN_SPLITS"), default="random", show_default=True,
                     help="GTZAN: a seeded random split, or the fault-filtered split (Kereliuk et al. 2015)."),
        click.option("--fma-subset", type=LibraryChoice("audiogenre.datasets", "FMA_SUBSETS"), default="small", show_default=True),
        click.option("--genres", help="Comma-separated genres to use (default: all)."),
    ]
    for opt in reversed(options):
        f = opt(f)
    return f


def _open(dataset, kind, gtzan_split, fma_subset, genres):
    from audiogenre.datasets import open_dataset

    g = [x.strip() for x in genres.split(",") if x.strip()] if genres else None
    return open_dataset(dataset, kind, gtzan_split=gtzan_split, fma_subset=fma_subset, genres=g)


def _refuse_over_audio_in(folders, output, what: str) -> None:
    """GenreError when ``output`` is an audio file already under one of the input ``folders``
    (a recording the command reads would be written over; a new file there is fine)."""
    from audiogenre.datasets.items import AUDIO_EXTENSIONS

    if output is None or not Path(output).is_file() or Path(output).suffix.lower() not in AUDIO_EXTENSIONS:
        return
    out = Path(output).resolve()
    for folder in folders:
        if folder is not None and Path(folder).is_dir() and Path(folder).resolve() in out.parents:
            raise GenreError(f"{what} {output} would overwrite an audio file of the input folder {folder}; "
                             f"choose another {what}")


#: Seconds of audio from which `genre render` warns before it starts (an hour).
LONG_RENDER = 3600.0


@click.command()
@click.argument("song", type=click.Path())
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False), help="WAV (or .flac/.ogg) to write.")
@click.option("--soundfont", type=click.Path(), help="General MIDI .sf2/.sf3 (default: $GENRE_SOUNDFONT or the system's).")
@click.option("--rate", type=click.IntRange(8000, 192000), default=44100, show_default=True, help="Sample rate.")
@click.option("--start", type=click.FloatRange(min=0), default=0.0, show_default=True, help="Seconds into the song.")
@click.option("--seconds", type=click.FloatRange(min=0.1), help="Render only this many seconds (default: whole song).")
@click.option("--max-bars", type=click.IntRange(1), default=4096, show_default=True,
              help="Refuse files whose notes reach beyond this bar (as `genre midi prepare`: corrupt note times).")
def render(song, output, soundfont, rate, start, seconds, max_bars):
    """Render a MIDI file to audio with FluidSynth.

    \b
    Example:
      genre render data/examples/jazz_example.mid -o jazz.wav
    """
    from audiogenre.render import render_to_file, renderer
    from shared.atomic import refuse_overwriting_input

    from shared.runtime import signals_as_interrupt

    refuse_overwriting_input([song, soundfont], output)
    if not Path(song).exists():
        raise GenreError(f"no such MIDI file: {song}")

    def warn_if_long(length: float, size: int) -> None:
        if length >= LONG_RENDER:
            click.echo(f"Warning: {song} is {length / 3600:.1f} hours long: rendering it makes about {size / 1e9:.1f} GB "
                       f"in {output} (Ctrl-C stops it and leaves nothing; --seconds renders a part)", err=True)

    try:
        with signals_as_interrupt():  # kill, a closed terminal, timeout: the temporary file goes as on Ctrl-C
            secs = render_to_file(song, output, soundfont=soundfont, rate=rate, start=start, seconds=seconds,
                                  max_bars=max_bars, on_start=warn_if_long)
    except KeyboardInterrupt as err:
        name = getattr(err, "name", "Ctrl-C")
        click.echo(f"Interrupted ({name}): nothing written to {output}", err=True)
        sys.exit(128 + getattr(err, "signum", 2))
    click.echo(f"{output}: {secs:.1f} s, {rate} Hz, stereo (sound font {renderer(soundfont, rate).soundfont.name})")


@audio.command("render-dataset")
@click.argument("midi_root", type=click.Path())
@click.option("-o", "--output", required=True, type=click.Path(file_okay=False), help="Folder for OUT/<genre>/*.wav + manifest.json.")
@click.option("--clips-per-genre", type=click.IntRange(1), default=100, show_default=True)
@click.option("--seconds", type=click.FloatRange(min=1), default=10.0, show_default=True, help="Length of each clip.")
@click.option("--genres", help="Comma-separated genres (folder names after --map) to render (default: all folders).")
@click.option("--map", "maps", multiple=True, metavar="FOLDER=GENRE",
              help="Put a folder under another genre, e.g. --map classical-music21=classical.")
@click.option("--seed", type=int, default=24, show_default=True)
@click.option("--rate", type=click.IntRange(8000, 96000), default=22050, show_default=True)
@click.option("--soundfont", type=click.Path(), help="General MIDI sound font (default: $GENRE_SOUNDFONT or the system's).")
def render_dataset(midi_root, output, clips_per_genre, seconds, genres, maps, seed, rate, soundfont):
    """Build a genre-labelled audio set from folders of MIDI files (one folder per genre).

    Random crops (seeded), one per song before any song gets a second; the train/valid/test
    split (80/10/10) is by song and written to OUT/manifest.json. Clips already rendered are
    kept, so a stopped run continues.

    \b
    Example:
      genre audio render-dataset ../shared/data/midi -o audio/ --clips-per-genre 100 \\
          --map classical-music21=classical
    """
    from audiogenre.render import render_dataset as run

    gmap = {}
    for m in maps:
        if "=" not in m:
            raise GenreError(f"--map wants FOLDER=GENRE, not {m!r}")
        a, b = m.split("=", 1)
        gmap[a.strip()] = b.strip()
    gl = [g.strip() for g in genres.split(",")] if genres else None
    with TqdmProgress(unit="clip") as progress:
        man = run(midi_root, output, clips_per_genre=clips_per_genre, seconds=seconds, seed=seed, genres=gl, genre_map=gmap,
                  soundfont=soundfont, rate=rate, progress=progress)
    counts = {}
    for c in man["clips"]:
        counts.setdefault(c["genre"], {}).setdefault(c["split"], 0)
        counts[c["genre"]][c["split"]] += 1
    for g, d in sorted(counts.items()):
        songs = len({c["song"] for c in man["clips"] if c["genre"] == g})
        click.echo(f"  {g:<12} {sum(d.values()):5d} clips from {songs:4d} songs  (" +
                   ", ".join(f"{k} {d.get(k, 0)}" for k in ("train", "valid", "test")) + ")")
    for reason, n in man["skipped"].items():
        click.echo(f"  skipped: {reason}: {n}")
    click.echo(f"{output}/manifest.json: {len(man['clips'])} clips of {man['seconds']:g} s at {man['rate']} Hz")


@audio.command("make-encoder")
@click.argument("folder", type=click.Path(file_okay=False))
@click.option("--size", type=LibraryChoice("audiogenre.models", "ENCODER_SIZES"), default="small", show_default=True,
              help="tiny: 2 layers × 32 (tests); small: 4 layers × 256; base: the wav2vec2-base shape (12 × 768).")
@click.option("--seed", type=int, default=0, show_default=True)
def make_encoder(folder, size, seed):
    """Write a wav2vec2 encoder with RANDOM weights (for offline trials and benchmarks).

    Its embeddings are random projections of the audio, not learned speech features: use
    facebook/wav2vec2-base (or a local copy) for real results.
    """
    from audiogenre.models import make_random_wav2vec2

    make_random_wav2vec2(folder, size=size, seed=seed)
    click.echo(f"{folder}: random-weight wav2vec2 ({size}); pass it as --encoder {folder}")


def _training_default(name: str) -> str:
    """The default of a training setting per job, read from HeadConfig and BackendTrainConfig."""
    from audiogenre.config import PAPER_SETTINGS, HeadConfig

    def show(v):
        return "none" if v is None else f"{v:g}" if isinstance(v, (int, float)) else str(v)

    others = {b: show(getattr(BackendTrainConfig(backend=b), name)) for b in PAPER_SETTINGS}
    if set(others.values()) == {"none"}:
        return ""  # the backend's own choice, said in the help
    head = show(getattr(HeadConfig(), name)) if name in HeadConfig.__dataclass_fields__ else None
    if len(set(others.values())) == 1:
        other = next(iter(others.values()))
        return other if head in (None, other) else f"{head} for wav2vec2, {other} for the others"
    listed = ", ".join(f"{b} {v}" for b, v in others.items())
    return listed if head is None else f"{head} for wav2vec2; {listed}"


@audio.command()
@click.argument("dataset", type=click.Path())
@click.option("--backend", type=BACKENDS, default="wav2vec2", show_default=True,
              help="wav2vec2: frozen encoder + head (Armeniakos & Bistas). cnn / resnet18 / fusion: spectrogram models of Mongelli et al.. "
                   "autoencoder / mlp: deep softmax autoencoder and its two-layer baseline (the style-encodings paper). The last five "
                   "train from scratch, end to end.")
@config_options(BackendTrainConfig, into="trainable", only=("segment", "imagenet", "image_size"), given_only=True,
                default_text=_training_default)
@click.option("--encoder", default="facebook/wav2vec2-base", show_default=True,
              help="Hugging Face name or local folder of a wav2vec2 model (weights are not downloaded where there is no network).")
@click.option("--layers", type=click.IntRange(1), default=7, show_default=True, help="Keep the first K transformer layers.")
@click.option("--pooling", type=click.Choice(["mean+max", "mean", "max"]), default="mean+max", show_default=True)
@click.option("-o", "--output", required=True, type=click.Path(file_okay=False), help="Folder for the classifier.")
@_dataset_options
@click.option("--seconds", type=click.FloatRange(min=0.5), default=10.0, show_default=True, help="Clip length (zero-padded/truncated).")
@click.option("--offset", type=click.FloatRange(min=0), default=0.0, show_default=True, help="Start of the clip in each file.")
@config_options(BackendTrainConfig, into="common", only=("epochs", "batch_size", "lr", "weight_decay", "patience", "seed"),
                given_only=True, default_text=_training_default)
@click.option("--cache-dir", type=click.Path(file_okay=False), help="Embedding cache folder (default: DATASET/.genre-cache).")
@click.option("--device", default="auto", show_default=True, help=DEVICE_HELP)
@click.option("--threads", type=click.IntRange(1), help="CPU threads for torch.")
@nproc_option
def train(dataset, backend, trainable, encoder, layers, pooling, output, kind, gtzan_split, fma_subset, genres,
          seconds, offset, common, cache_dir, device, threads, nproc):
    """Train a genre classifier on an audio data set; report on its test split.

    wav2vec2 (default): the frozen encoder's embeddings are computed once into a cache and
    the head trains from it (settings: HeadConfig). The other backends train end to end on
    segments held in memory (settings: BackendTrainConfig, the paper's per backend). Writes the
    model, config.json, log.csv, history.png, report.json and confusion.png.
    """
    if relaunch(nproc):
        return
    from audiogenre.audio import Preprocess
    from audiogenre.classify import format_report, train_audio_classifier, train_backend_classifier
    from audiogenre.config import HeadConfig
    from shared.config import from_dict
    from shared.distributed import env_rank

    _threads(threads)
    ds = _open(dataset, kind, gtzan_split, fma_subset, genres)
    given = {k: v for k, v in common.items() if v is not None}
    trainable = {k: v for k, v in trainable.items() if v is not None}
    if backend == "wav2vec2" and trainable:
        raise GenreError(f"--{next(iter(trainable)).replace('_', '-')} is for the trainable backends; wav2vec2 clips are "
                         "set with --seconds/--offset")
    if backend == "wav2vec2":
        cfg = from_dict(HeadConfig, given, what="training settings")
    else:
        cfg = from_dict(BackendTrainConfig, {"backend": backend, **trainable, **given}, what="training settings")

    with TqdmProgress(unit="it", leave=False) as progress:
        def echo(line):
            progress.close()
            click.echo(line, err=True)

        def on_epoch(row):
            v = f"  valid loss {row['valid_loss']:.3f} acc {row['valid_acc']:.1%}" if "valid_loss" in row else ""
            echo(f"epoch {row['epoch']:3d}  train loss {row['train_loss']:.3f} acc {row['train_acc']:.1%}{v}"
                 f"  ({row['seconds']:.0f} s)")

        if backend != "wav2vec2":
            report = train_backend_classifier(ds, output, cfg, device=device, progress=progress, echo=echo,
                                              on_epoch=on_epoch)
        else:
            try:
                report = train_audio_classifier(ds, output, encoder=encoder, layers=layers, pooling=pooling,
                                                preprocess=Preprocess(seconds=seconds, offset=offset), config=cfg,
                                                cache_folder=cache_dir, device=device, progress=progress, echo=echo,
                                                on_epoch=on_epoch)
            except KeyboardInterrupt:
                echo("Interrupted: the embeddings encoded so far are kept in the cache; run the same command again.")
                sys.exit(130)
    if env_rank() > 0:  # one of several processes: rank 0 reports
        return
    if report["epochs_run"] < cfg.epochs:
        click.echo(f"early stop: no better validation loss for {cfg.patience} epochs (best epoch {report['best_epoch']})",
                   err=True)
    click.echo(format_report(report))
    if backend != "wav2vec2":
        click.echo(f"per clip (segments averaged): accuracy {report['clip_accuracy']:.1%} on {report['n_clips']} clips")
    click.echo(f"{output}: model, config.json, report.json, confusion.png, history.png, log.csv")


@audio.command()
@click.argument("classifier", type=click.Path())
@click.argument("dataset", type=click.Path())
@_dataset_options
@click.option("--split", type=LibraryChoice("audiogenre.datasets", "SPLITS"), default="test", show_default=True)
@click.option("--noise", type=click.FloatRange(min=0), default=0.0, show_default=True,
              help="Gaussian noise at this ratio of each clip's RMS (robustness check; bypasses the cache).")
@click.option("--encoder", help="Where the classifier's wav2vec2 weights are (if not where they were).")
@click.option("--png", type=click.Path(dir_okay=False), help="Confusion matrix PNG (default: CLASSIFIER/confusion-SPLIT.png).")
@click.option("--json", "json_out", type=click.Path(dir_okay=False), help="Write the report as JSON.")
@click.option("--cache-dir", type=click.Path(file_okay=False))
@click.option("--threads", type=click.IntRange(1))
def evaluate(classifier, dataset, kind, gtzan_split, fma_subset, genres, split, noise, encoder, png, json_out, cache_dir, threads):
    """Accuracy, per-class precision/recall/F1 and confusion matrix on a split (test by default)."""
    from audiogenre.classify import evaluate_audio_classifier, format_report
    from shared.atomic import refuse_overwriting_input, refuse_same_outputs, write_json

    png = png or str(Path(classifier) / f"confusion-{split}.png")
    inputs = [dataset, Path(dataset) / "manifest.json", *model_files(classifier)]
    refuse_overwriting_input(inputs, png, "--png")
    refuse_overwriting_input(inputs, json_out, "--json")
    refuse_same_outputs([("--png", png), ("--json", json_out)], "choose another --png or --json")
    _refuse_over_audio_in([dataset], png, "--png")
    _refuse_over_audio_in([dataset], json_out, "--json")
    _threads(threads)
    ds = _open(dataset, kind, gtzan_split, fma_subset, genres)
    with TqdmProgress(unit="clip") as progress:
        report = evaluate_audio_classifier(classifier, ds, split=split, encoder=encoder, noise=noise, cache_folder=cache_dir,
                                           png=png, progress=progress)
    click.echo(format_report(report))
    click.echo(f"confusion matrix: {png}")
    if json_out:
        write_json(json_out, report)


@audio.command()
@click.argument("classifier", type=click.Path())
@click.argument("dataset", type=click.Path())
@_dataset_options
@click.option("--split", type=LibraryChoice("audiogenre.datasets", "SPLITS", after=("all",)), default="test", show_default=True)
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False), help="Embeddings, logits and labels (.npz).")
@click.option("--png", type=click.Path(dir_okay=False), help="PCA plot (default: OUTPUT with .png).")
@click.option("--encoder", help="Where the classifier's wav2vec2 weights are (if not where they were).")
@click.option("--threads", type=click.IntRange(1))
def embed(classifier, dataset, kind, gtzan_split, fma_subset, genres, split, output, png, encoder, threads):
    """Write a classifier's embeddings and logits for a data set, and PCA plots coloured by genre.

    For the deep softmax autoencoder the embedding is its 64-d bottleneck (the style-encodings paper, Fig. 5);
    for the others their penultimate layer. One point per segment the model was trained on.

    \b
    Example:
      genre audio embed ae/ audio/ -o ae_test.npz          # + ae_test.png
    """
    import numpy as np

    from audiogenre.classify import embed_dataset, plot_embeddings
    from shared.atomic import atomic_path, refuse_overwriting_input, refuse_same_outputs

    png_given = png is not None
    png = png or str(Path(output).with_suffix(".png"))
    inputs = [dataset, Path(dataset) / "manifest.json", *model_files(classifier)]
    refuse_overwriting_input(inputs, output)
    refuse_overwriting_input(inputs, png, "--png")
    _refuse_over_audio_in([dataset], output, "-o")
    _refuse_over_audio_in([dataset], png, "--png")
    refuse_same_outputs([("-o", output), ("--png" if png_given else "--png (by default -o with .png)", png)],
                        "choose another --png" if png_given else "name -o FILE.npz or choose a --png")
    _threads(threads)
    ds = _open(dataset, kind, gtzan_split, fma_subset, genres)
    with TqdmProgress(unit="clip") as progress:
        res = embed_dataset(classifier, ds, split=None if split == "all" else split, encoder=encoder, progress=progress)
    with atomic_path(output, suffix=".npz") as tmp:
        with open(tmp, "wb") as f:
            np.savez_compressed(f, embeddings=res["embeddings"], logits=res["logits"], labels=res["labels"],
                                genres=np.array(res["genres"]), paths=np.array(res["paths"]), starts=np.array(res["starts"]))
    plot_embeddings(res, png, title=f"{Path(classifier).name}: {len(res['labels'])} {split} segments of {Path(dataset).name}")
    click.echo(f"{output}: {res['embeddings'].shape[0]} × {res['embeddings'].shape[1]} embeddings + logits; PCA plot {png}")


@audio.command()
@click.argument("song", type=click.Path())
@click.option("--classifier", "clf", type=click.Path(), help="Classifier folder (genre audio train) or a shipped model's name.  [default: "
              "the shipped audio-rendered, which knows FluidSynth-rendered classical, folk, jazz and pop]")
@click.option("--to", "target", required=True, help="Target genre (one the classifier knows).")
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False), help="Output audio (.wav/.flac/.ogg).")
@click.option("--lambda", "lam", type=click.FloatRange(min=0), default=1.0, show_default=True,
              help="Weight of ‖x̂ − x‖²₂ (sum over each window's samples).")
@click.option("--lr", type=click.FloatRange(min=0, min_open=True), default=2e-4, show_default=True, help="Step size.")
@click.option("--steps", type=click.IntRange(0), default=60, show_default=True,
              help="Step budget per window and pass (a window that a neighbour pushed back is worked on again, up to "
                   "3 passes: the report shows its steps per pass, a+b).")
@click.option("--target-prob", type=click.FloatRange(0, 1, min_open=True), default=0.9, show_default=True,
              help="Stop a window once p(target) reaches this.")
@click.option("--epsilon", type=click.FloatRange(min=0), default=0.0, show_default=True, help="Stop a window once the loss is below ε.")
@click.option("--optimizer", type=LibraryChoice("audiogenre.transform", "OPTIMIZERS"), default="adam", show_default=True)
@click.option("--window", type=click.FloatRange(min=0.5), help="Window seconds.  [default: the classifier's clip length]")
@click.option("--overlap", type=click.FloatRange(min=0), help="Seconds shared by neighbouring windows.  [default: 1 s, at most a quarter window]")
@click.option("--bf16", is_flag=True, help="bfloat16 autocast for the classifier: about 2x faster steps on CPUs with "
              "bf16 support (benchmarks/transform_step_speed.py), slightly noisier gradients.")
@click.option("--min-snr", type=click.FloatRange(min=0), default=25.0, show_default=True,
              help="SNR floor in dB: the change is held at least this far below the music (every step, every window "
                   "and the whole song; the report says where it held the change back). 0: no floor.")
@click.option("--encoder", help="Where the classifier's wav2vec2 weights are (if not where they were).")
@click.option("--device", default="auto", show_default=True, help=DEVICE_HELP)
@click.option("--json", "json_out", type=click.Path(dir_okay=False), help="Write the report as JSON.")
@click.option("--threads", type=click.IntRange(1))
def transform(song, clf, target, output, lam, lr, steps, target_prob, epsilon, optimizer, window, overlap, bf16, min_snr,
              encoder, device, json_out, threads):
    """Steer a song toward a genre by following the classifier's gradients (Armeniakos & Bistas).

    The whole song is processed in overlapping windows; the output has the song's own sample
    rate and channels (the perturbation is upsampled and added to the original). Prints, per
    window and for the song, p(target) and the predicted genre before and after (measured on
    the written file) and the SNR of the change. Beside OUT it writes OUT.json (e.g. out.wav.json):
    the source, classifier, settings and report, which `genre report OUT -o report/` turns into a
    listening page.
    """
    from audiogenre.audio import Preprocess, check_output_suffix
    from audiogenre.models import AudioClassifier
    from audiogenre.transform import TransformConfig, default_windows, format_report, transform_file
    from shared.atomic import refuse_overwriting_input, refuse_same_outputs, write_json

    if clf is None:
        from audiogenre.models import DEFAULT_AUDIO_MODEL

        clf = DEFAULT_AUDIO_MODEL
    from audiogenre.report import transform_record_path, write_transform_record

    inputs = [song, *model_files(clf)]
    refuse_overwriting_input(inputs, output)
    refuse_overwriting_input(inputs, json_out, "--json")
    refuse_overwriting_input(inputs, transform_record_path(output), "its record")
    refuse_same_outputs([("-o", output), ("its record", transform_record_path(output)), ("--json", json_out)],
                        "choose another --json (the record beside -o is written anyway)")
    _threads(threads)
    check_output_suffix(output)
    model, meta = AudioClassifier.load(clf, encoder=encoder)
    window, overlap = default_windows(float(meta["settings"].get("seconds", Preprocess.seconds)), window, overlap)
    if overlap >= window / 2:  # (TransformConfig.check says it too, less precisely)
        raise GenreError(f"--overlap must be less than half the window ({window:g} s)")
    cfg = TransformConfig(lam=lam, lr=lr, steps=steps, target_prob=target_prob, epsilon=epsilon, optimizer=optimizer,
                          window=window, overlap=overlap, bf16=bf16, min_snr=min_snr or None)
    cfg.check()
    model.genre_index(target)
    with TqdmProgress(unit="step") as progress:
        def say(line):
            progress.close()
            click.echo(f"note: {line}", err=True)

        report = transform_file(model, song, target, output, cfg, device=device, progress=progress, say=say)
    click.echo(format_report(report))
    if json_out:
        write_json(json_out, report.to_dict())
    record = write_transform_record(output, source=song, classifier=clf, target=target, config=cfg, report=report)
    click.echo(f"wrote {output} and its record {record} (genre report {output} -o report/ makes a listening page)")


@audio.command()
@click.option("--reference", required=True, type=click.Path(), help="Folder (or file) of real audio of the target genre.")
@click.option("--test", "test", required=True, type=click.Path(), help="Folder (or file) of audio to score.")
@click.option("--embedding", default="facebook/wav2vec2-base", show_default=True,
              help="A classifier folder or a shipped one's name (audio-rendered: its encoder), or a wav2vec2 "
                   "name/folder.")
@click.option("--layers", type=click.IntRange(1), default=7, show_default=True, help="wav2vec2 layers (when --embedding is an encoder).")
@click.option("--segment", type=click.FloatRange(min=0.1), help="Seconds per embedding.  [default: 1, or the segment "
              "length a trainable classifier was trained on]")
@click.option("--infinity", is_flag=True, help="Also FAD∞: FAD extrapolated to infinitely many test embeddings.")
@click.option("--per-song", is_flag=True, help="Also each test file's FAD against the reference set.")
@click.option("--json", "json_out", type=click.Path(dir_okay=False), help="Write the results as JSON.")
@click.option("--threads", type=click.IntRange(1))
def fad(reference, test, embedding, layers, segment, infinity, per_song, json_out, threads):
    """Fréchet Audio Distance between two folders of audio (one embedding per --segment seconds).

    FAD is biased upward at small n: always compare values at the same n, or use --infinity.
    """
    import numpy as np

    from audiogenre.fad import fad as fad_value
    from audiogenre.fad import fad_infinity, per_song_fad
    from audiogenre.fad_embed import embedding_backend, folder_embeddings
    from shared.atomic import refuse_overwriting_input, write_json

    refuse_overwriting_input([reference, test, *model_files(embedding)], json_out, "--json")
    _refuse_over_audio_in([reference, test], json_out, "--json")
    _threads(threads)
    backend = embedding_backend(embedding, layers=layers)
    if segment is None:
        segment = backend.segment_seconds or 1.0
    with TqdmProgress(unit="file") as progress:
        ref = folder_embeddings(backend, reference, segment=segment, progress=progress)
        tst = folder_embeddings(backend, test, segment=segment, progress=progress)
    r, t = np.concatenate(list(ref.values())), np.concatenate(list(tst.values()))
    res = fad_value(r, t)
    out = {"fad": res.value, "n_reference": res.n_reference, "n_test": res.n_test, "dim": res.dim,
           "files_reference": len(ref), "files_test": len(tst), "embedding": embedding, "segment_seconds": segment}
    click.echo(f"FAD {res.value:.4f}  (n = {res.n_reference} reference / {res.n_test} test embeddings of {res.dim} dims "
               f"from {len(ref)} / {len(tst)} files)")
    if infinity:
        inf = fad_infinity(r, t)
        out["fad_infinity"] = {"value": inf.value, "slope": inf.slope, "r2": inf.r2}
        click.echo(f"FAD∞ {inf.value:.4f}  (fit FAD = a + b/n over n = {min(inf.ns)}…{max(inf.ns)}, r² {inf.r2:.3f})")
    if per_song:
        short = sorted(k for k, v in tst.items() if len(v) < 2)
        if short:
            click.echo(f"  (per-song FAD skips {len(short)} file(s) with fewer than 2 embeddings: {', '.join(short[:5])}"
                       + (" …" if len(short) > 5 else "") + ")", err=True)
        ps = per_song_fad(r, {k: v for k, v in tst.items() if len(v) >= 2}) if len(short) < len(tst) else {}
        out["per_song"] = ps
        for name, v in sorted(ps.items(), key=lambda kv: kv[1]):
            click.echo(f"  {v:12.4f}  {name}")
    if json_out:
        write_json(json_out, out)


def _threads(threads: int | None) -> None:
    from shared.runtime import set_threads

    set_threads(threads)
