"""A recording in another genre you can hear: audio → MIDI → symbolic transfer → audio.

:func:`transfer_audio` transcribes the recording onto the 16th-note grid
(:mod:`audiogenre.transcribe`), sends the grid MIDI through a trained CycleGAN exactly as
``genre midi transfer`` does (:func:`midigenre.transfer.transfer_midi`: the model's pitch
window, 4-bar phrases, silent phrases kept silent), puts the transferred steps back on the
recording's tempo map (:func:`audiogenre.transcribe.on_grid`: by default the grid follows the
recording's beats, so the transferred MIDI speeds up and slows down with it) and renders the
result with FluidSynth (:mod:`audiogenre.render`) at the recording's sample rate, placed so that
bar 1 falls where the recording's first downbeat is (the two line up when played side by side,
beat for beat).

Beside ``OUT.wav`` it writes ``OUT.transcribed.mid`` (the transcription on the grid),
``OUT.<target>.mid`` (the transfer) and ``OUT.json``, a sidecar naming all four files with the
tempo, the notes found, the transfer's metrics and the time each stage took. Given a folder
instead, it writes the layout ``genre report`` reads as a transcription bridge (a copy of the
recording as ``original.<ext>``, ``transcription.mid``, ``transferred.mid``, ``transferred.wav``,
``bridge.json``: :func:`output_paths`). Everything is computed first and written last, each
file atomically, so a failure leaves none of them.
"""

from __future__ import annotations

import dataclasses
import io
import os
import time
from pathlib import Path

import numpy as np

from shared.errors import GenreError

SIDECAR_FORMAT = 1


@dataclasses.dataclass
class AudioTransfer:
    """What :func:`transfer_audio` did: the files, the transcription, the transfer and its numbers."""

    source: Path
    output: Path
    transcription_midi: Path
    transferred_midi: Path
    sidecar: Path
    original_copy: Path | None
    transcription: object  # audiogenre.transcribe.Transcription
    song: object  # midigenre.transfer.SongTransfer
    metrics: dict
    seconds: dict  # time per stage

    def report(self) -> dict:
        """The sidecar's content (paths absolute, so a report run from elsewhere finds the files)."""
        return {
            "format": SIDECAR_FORMAT,
            "kind": "audio-transfer",
            "original": str(self.source.resolve()),
            "transcription_midi": str(self.transcription_midi.resolve()),
            "transferred_midi": str(self.transferred_midi.resolve()),
            "audio": str(self.output.resolve()),
            "original_copy": str(self.original_copy.resolve()) if self.original_copy else None,
            "source_genre": self.song.source_genre,
            "target_genre": self.song.target_genre,
            "transcription": self.transcription.summary(),
            "metrics": self.metrics,
            "seconds": self.seconds,
        }


AUDIO_OUT = (".wav", ".flac", ".ogg")
#: Recording suffixes the listening report reads from a bridge folder as they are (others are
#: written there as float WAV).
REPORT_RECORDING = (".wav", ".flac", ".ogg", ".mp3")


@dataclasses.dataclass(frozen=True)
class Outputs:
    """Where :func:`transfer_audio` writes; ``original`` (a copy of the recording) only for a folder."""

    audio: Path
    transcription: Path
    transferred: Path
    sidecar: Path
    original: Path | None = None

    def all(self) -> list[Path]:
        return [p for p in (self.audio, self.transcription, self.transferred, self.sidecar, self.original) if p]


def output_paths(output: str | os.PathLike, target: str, song: str | os.PathLike | None = None) -> Outputs:
    """The files :func:`transfer_audio` writes for ``-o output``.

    An audio file ``OUT.wav`` (.flac, .ogg): ``OUT.transcribed.mid``, ``OUT.<target>.mid`` and
    ``OUT.json`` beside it. Anything else is a folder in the layout ``genre report`` reads as a
    transcription bridge: ``original.<ext>`` (the recording), ``transcription.mid``,
    ``transferred.mid``, ``transferred.wav`` and ``bridge.json``.
    """
    out = Path(output)
    if out.suffix.lower() in AUDIO_OUT:
        return Outputs(out, out.with_name(out.stem + ".transcribed.mid"), out.with_name(f"{out.stem}.{target}.mid"),
                       out.with_suffix(".json"))
    ext = Path(song).suffix.lower() if song is not None else ".wav"
    return Outputs(out / "transferred.wav", out / "transcription.mid", out / "transferred.mid", out / "bridge.json",
                   out / ("original" + (ext if ext in REPORT_RECORDING else ".wav")))


def _runs(roll: np.ndarray) -> int:
    """Notes in a (T, P) bool roll: runs of consecutive on-steps per pitch."""
    r = np.asarray(roll, bool)
    return int((r & ~np.vstack([np.zeros((1, r.shape[1]), bool), r[:-1]])).sum()) if len(r) else 0


def transfer_metrics(song) -> dict:
    """Content change of Brunner et al. on the whole song (raw, added, removed, transposition-
    invariant; NaN written as null), 4-bar phrases, and notes before and after as the model sees
    them (runs in the piano roll: a note repeated without a rest counts once)."""
    from midigenre.metrics import content_added, content_change, content_change_transposed, content_removed

    def num(x):
        x = float(x)
        return None if not np.isfinite(x) else round(x, 4)

    steps = song.settings.phrase_steps
    return {
        "phrases": int(np.ceil(len(song.source) / steps)),
        "notes_source": _runs(song.source),
        "notes_transferred": _runs(song.transferred),
        "content_change": num(content_change(song.source, song.transferred)),
        "added": num(content_added(song.source, song.transferred)),
        "removed": num(content_removed(song.source, song.transferred)),
        "content_change_transposed": num(content_change_transposed(song.source, song.transferred)),
    }


def place(wave: np.ndarray, origin: float, rate: int, length: int | None = None) -> np.ndarray:
    """Shift rendered ``(frames, channels)`` audio so that its time 0 lands at ``origin`` seconds:
    silence before a positive origin, the first ``-origin`` seconds cut for a negative one;
    then cut or padded to ``length`` frames when given."""
    shift = round(origin * rate)
    if shift > 0:
        wave = np.concatenate([np.zeros((shift,) + wave.shape[1:], wave.dtype), wave])
    elif shift < 0:
        wave = wave[-shift:]
    if length is not None:
        wave = wave[:length] if len(wave) >= length else np.concatenate(
            [wave, np.zeros((length - len(wave),) + wave.shape[1:], wave.dtype)])
    return wave


def transfer_audio(song: str | os.PathLike, target: str, output: str | os.PathLike, *, model=None,
                   bpm: float | None = None, downbeat: float | None = None, tracker: str = "onsets",
                   grid: str = "follow", soundfont=None, program: int | None = None, instruments=None,
                   threads: int | None = None, device: str = "cpu", progress=None,
                   source_genre: str | None = None) -> AudioTransfer:
    """Transcribe ``song``, transfer it to ``target`` and render it to ``output`` (.wav/.flac/.ogg).

    Parameters
    ----------
    model : a loaded :class:`midigenre.transfer.TransferModel`, a model folder or a shipped
        model's name (default ``jazz-classical-melody``); ``target`` must be one of its two genres.
    bpm, downbeat : override the estimated tempo and the first downbeat (seconds).
    tracker : how the tempo is estimated (:data:`audiogenre.transcribe.TRACKERS`).
    grid : ``follow`` the recording's beats (default) or one ``constant`` tempo
        (:data:`audiogenre.transcribe.GRIDS`); the transcribed and the transferred MIDI carry
        that tempo map, and the rendering follows it.
    soundfont : the General MIDI sound font of the rendering.
    program : play every part on this General MIDI instrument (None: the arrangement's own: the
        recording's notes on piano, the added ones on the target genre's instruments).
    instruments : the instrument table of the added notes (:func:`midigenre.arrangement.load_instruments`).
    progress : ``progress(stage, done, total)`` (:mod:`shared.progress`).
    source_genre : the recording's genre (``--from``); None: a multi-genre model tells it from the
        transcription (and refuses one it takes for ``target`` already), a pair takes its other genre.

    The rendering keeps the recording's length: it is cut where the recording ends.
    """
    from audiogenre.audio import load_audio, write_audio
    from audiogenre.render import _fluidsynth, check_render_rate, find_soundfont, renderer, tracks_of_pretty_midi
    from audiogenre.transcribe import GRIDS, on_grid, transcribe_audio
    from midigenre.pianoroll import write_midi
    from midigenre.transfer import TransferModel, transfer_midi
    from shared.atomic import atomic_path, check_writable_dir, refuse_overwriting_input, same_file, write_json
    from shared.progress import progress_callback

    report = progress_callback(progress)
    if grid not in GRIDS:
        raise GenreError(f"unknown grid {grid!r}: use one of {', '.join(GRIDS)}")
    paths = output_paths(output, target, song)
    if Path(output).suffix.lower() not in AUDIO_OUT and Path(output).suffix.lower() in (".mp3", ".mid", ".midi", ".json"):
        raise GenreError(f"-o {output}: give an audio file (.wav, .flac, .ogg) or a folder")
    if paths.original is not None and Path(output).exists() and not Path(output).is_dir():
        raise GenreError(f"-o {output} is a file: give an audio file (.wav, .flac, .ogg) or a folder")
    copy_original = paths.original is not None and not same_file(song, paths.original)
    for p in paths.all():
        if p == paths.original and not copy_original:
            continue  # the recording is already the folder's original
        refuse_overwriting_input([song, soundfont], p)
    check_writable_dir(paths.audio)
    if model is None or not isinstance(model, TransferModel):
        model = TransferModel.load(*(() if model is None else (model,)), device=device)
    model.direction(target, source_genre)  # an unknown target or a wrong --from fails before the work
    if isinstance(instruments, (str, os.PathLike)):  # and so does a bad instrument table
        from midigenre.arrangement import load_instruments

        instruments = load_instruments(instruments)
    find_soundfont(soundfont)  # a missing sound font or FluidSynth fails before the work too
    _fluidsynth()

    t0 = time.perf_counter()
    audio = load_audio(song)
    # the result is rendered at the recording's own rate: a rate FluidSynth cannot take fails now,
    # not after the transcription
    check_render_rate(audio.rate, f" (the rate of {song}, which the result is rendered at; resample it to 8 kHz "
                                  "or more first)")
    tr = transcribe_audio(audio.samples, audio.rate, bpm=bpm, downbeat=downbeat, tracker=tracker, grid=grid,
                          name=str(song), threads=threads, progress=progress)
    t1 = time.perf_counter()
    report("transfer", 0, 1)
    source_pm = tr.midi()
    buf = io.BytesIO()
    source_pm.write(buf)
    # without --from a pair's judge is not asked (it reads MIDI phrases, not transcriptions): the
    # pair's other genre, as the output line says; a multi-genre model tells the genre itself
    result = transfer_midi(buf.getvalue(), model, target, instruments=instruments,
                           source_genre=source_genre or model.direction(target)[0])
    pm = result.midi()
    if tr.grid.follows and result.notes is None:  # a grid roll: its steps on the recording's own beats
        pm = on_grid(pm, tr.grid)
    # an arrangement (the default) already carries the transcription's tempo map, so its notes
    # fall on the recording's beats: kept notes where they were, added ones on its 16ths
    if program is not None:
        for inst in pm.instruments:
            inst.program = int(program)
    metrics = transfer_metrics(result)
    report("transfer", 1, 1)
    t2 = time.perf_counter()
    report("rendering", 0, 1)
    rend = renderer(soundfont, audio.rate)
    tracks = tracks_of_pretty_midi(pm)
    if not tracks:
        raise GenreError(f"the transfer of {song} to {target} has no notes to render")
    wave = place(rend.render(tracks), tr.grid.origin, audio.rate, length=audio.samples.shape[0])
    report("rendering", 1, 1)
    t3 = time.perf_counter()

    if copy_original:
        if Path(song).suffix.lower() in REPORT_RECORDING:
            with atomic_path(paths.original, suffix=paths.original.suffix) as tmp:
                tmp.write_bytes(Path(song).read_bytes())
        else:
            write_audio(paths.original, audio.samples, audio.rate, subtype="FLOAT")
    write_midi(source_pm, paths.transcription)
    write_midi(pm, paths.transferred)
    write_audio(paths.audio, wave, audio.rate)
    done = AudioTransfer(source=Path(song), output=paths.audio, transcription_midi=paths.transcription,
                         transferred_midi=paths.transferred, sidecar=paths.sidecar, original_copy=paths.original,
                         transcription=tr, song=result, metrics=metrics,
                         seconds={"transcription": round(t1 - t0, 3), "transfer": round(t2 - t1, 3),
                                  "rendering": round(t3 - t2, 3), "total": round(t3 - t0, 3)})
    meta = done.report()
    meta["model"] = str(model.folder) if model.folder is not None else None
    write_json(paths.sidecar, meta)
    return done
