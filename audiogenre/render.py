"""Render MIDI to audio with FluidSynth (pyfluidsynth): how the symbolic path's results are
heard (listening reports, ``genre render``, audio transfer) and scored as audio (:mod:`audiogenre.phrase_fad`).

One synthesiser per process and sound font is kept and reset between renders (loading a
General MIDI sound font takes longer than rendering a 10 s clip). Notes are sent in time
order on their own MIDI channel per (program, drum) pair, so every General MIDI instrument
sounds as written; drums go to channel 10.

The sound font is, in order: the ``soundfont`` argument, ``$GENRE_SOUNDFONT``,
``$SOUNDFONT``, then the usual places of Debian/Ubuntu/Fedora/Arch/Homebrew packages
(``fluid-soundfont-gm``, ``timgm6mb-soundfont``, ``musescore-general-soundfont``, …).
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Sequence

import numpy as np

from midigenre.prepare import MIDI_SUFFIXES
from shared.errors import GenreError

RENDER_RATE = 22_050

SOUNDFONT_PLACES = (
    "/usr/share/sounds/sf2/FluidR3_GM.sf2",
    "/usr/share/sounds/sf2/default-GM.sf2",
    "/usr/share/sounds/sf2/TimGM6mb.sf2",
    "/usr/share/soundfonts/default.sf2",
    "/usr/share/soundfonts/FluidR3_GM.sf2",
    "/usr/share/soundfonts/FluidR3_GM2-2.sf2",
    "/usr/share/sounds/sf3/default-GM.sf3",
    "/usr/share/sounds/sf3/MuseScore_General.sf3",
    "/usr/share/soundfonts/FluidR3_GM.sf3",
    "/opt/homebrew/share/soundfonts/default.sf2",
    "/usr/local/share/soundfonts/default.sf2",
    "/usr/local/share/fluidsynth/default.sf2",
)

INSTALL_HINT = ("install FluidSynth and a General MIDI sound font, e.g. `apt-get install fluidsynth "
                "timgm6mb-soundfont` (Debian/Ubuntu) or `brew install fluid-synth` (macOS)")


def find_soundfont(soundfont: str | os.PathLike | None = None) -> Path:
    """The sound font to use (see the module docstring for the search order)."""
    if soundfont:
        p = Path(soundfont).expanduser()
        if not p.is_file():
            raise GenreError(f"no such sound font: {p}")
        return p
    for var in ("GENRE_SOUNDFONT", "SOUNDFONT"):
        value = os.environ.get(var)
        if value:
            p = Path(value).expanduser()
            if not p.is_file():
                raise GenreError(f"${var} points to {p}, which does not exist")
            return p
    for place in SOUNDFONT_PLACES:
        if Path(place).is_file():
            return Path(place).resolve()
    raise GenreError(f"no General MIDI sound font found: pass --soundfont FILE.sf2 or set $GENRE_SOUNDFONT, or {INSTALL_HINT}")


def _fluidsynth():
    try:
        import fluidsynth  # pyfluidsynth; loads libfluidsynth with ctypes
    except ImportError as err:
        if "fluidsynth" in str(err).lower() and "library" in str(err).lower():
            raise GenreError(f"the FluidSynth library is missing: {INSTALL_HINT}") from None
        raise GenreError(f"pyfluidsynth is not installed (pip install pyfluidsynth) or broken: {err}") from None
    except OSError as err:
        raise GenreError(f"the FluidSynth library cannot be loaded ({err}): {INSTALL_HINT}") from None
    return fluidsynth


@dataclasses.dataclass
class Track:
    """Notes of one instrument: ``notes`` is float64 ``(n, 4)``: start s, end s, pitch, velocity."""

    program: int
    is_drum: bool
    notes: np.ndarray


#: Longest song rendered, in 4/4 bars: the same guard against absurd note times as
#: ``genre midi prepare --max-bars`` (RollSettings.max_bars), checked before any sample is made.
MAX_BARS = 4096


def tracks_of_file(path: str | os.PathLike, *, max_bars: int = MAX_BARS) -> list[Track]:
    """Tracks of a MIDI file in seconds (symusic: tempo map applied), read by the toolkit's rules.

    As everywhere in the toolkit: ticks per quarter note must be positive; a tempo event of
    0 µs per quarter note is ignored (the tempo before it goes on; 120 bpm before any tempo);
    files whose notes reach beyond ``max_bars`` bars of 4/4 are refused as too long.
    """
    import symusic

    try:
        data = Path(path).read_bytes()
    except OSError as err:
        raise GenreError(f"cannot read {path}: {err.strerror or err}") from None
    if not data:
        raise GenreError(f"{path} is empty (0 bytes)")
    try:
        score = symusic.Score.from_midi(data)
    except Exception as err:  # symusic raises plain RuntimeError/ValueError on bad files
        raise GenreError(f"cannot read {path} as MIDI ({str(err).splitlines()[0] if str(err) else type(err).__name__})") from None
    if score.tpq <= 0:
        raise GenreError(f"cannot read {path} as MIDI (invalid ticks per quarter note {score.tpq})")
    last = 0
    for t in score.tracks:
        if len(t.notes):
            arr = t.notes.numpy()
            last = max(last, int((arr["time"].astype(np.int64) + np.maximum(arr["duration"], 0)).max()))
    ticks_per_bar = 4 * int(score.tpq)
    if last > max_bars * ticks_per_bar:
        raise GenreError(f"{path} is too long: notes reach bar {last // ticks_per_bar + 1}, the limit is {max_bars} bars")
    if len(score.tempos) and (score.tempos.numpy()["mspq"] <= 0).any():
        score.tempos.filter(lambda t: t.mspq > 0, inplace=True)
    try:
        score = score.to("second")
    except Exception as err:
        raise GenreError(f"cannot read {path} as MIDI ({str(err).splitlines()[0] if str(err) else type(err).__name__})") from None
    out = []
    for t in score.tracks:
        if len(t.notes) == 0:
            continue
        arr = t.notes.numpy()
        notes = np.stack([arr["time"], arr["time"] + arr["duration"], arr["pitch"], arr["velocity"]], axis=1).astype(np.float64)
        out.append(Track(int(t.program), bool(t.is_drum), notes))
    return out


def tracks_of_pretty_midi(pm) -> list[Track]:
    """Tracks of a ``pretty_midi.PrettyMIDI`` (e.g. a piano roll turned back into MIDI)."""
    out = []
    for inst in pm.instruments:
        if not inst.notes:
            continue
        notes = np.array([[n.start, n.end, n.pitch, n.velocity] for n in inst.notes], dtype=np.float64)
        out.append(Track(int(inst.program), bool(inst.is_drum), notes))
    return out


def song_seconds(tracks: Sequence[Track]) -> float:
    return max((float(t.notes[:, 1].max()) for t in tracks if len(t.notes)), default=0.0)


#: FluidSynth's sample-rate range; higher output rates are rendered at the top of it and resampled.
SYNTH_RATES = (8000, 96000)


def check_render_rate(rate: int, what: str = "") -> None:
    """GenreError (one line) for an output rate FluidSynth cannot render at (below 8 kHz)."""
    if int(rate) < SYNTH_RATES[0]:
        raise GenreError(f"cannot render at {int(rate)} Hz{what}: the lowest rate is {SYNTH_RATES[0]} Hz")


class Renderer:
    """A FluidSynth synthesiser with a General MIDI sound font loaded once.

    ``rate`` is the output rate. FluidSynth itself runs at 8–96 kHz (asked for more, it would
    silently stay at 44.1 kHz and every note would come out at the wrong pitch); above 96 kHz
    it renders at 96 kHz and the output is resampled (band-limited, soxr) to ``rate``.
    """

    def __init__(self, soundfont: str | os.PathLike | None = None, rate: int = RENDER_RATE, gain: float = 0.5):
        self.soundfont = find_soundfont(soundfont)
        self.rate = int(rate)
        check_render_rate(self.rate)
        self.synth_rate = min(self.rate, SYNTH_RATES[1])
        fluidsynth = _fluidsynth()
        self._synth = fluidsynth.Synth(gain=gain, samplerate=float(self.synth_rate))
        got = self._synth.get_setting("synth.sample-rate") if hasattr(self._synth, "get_setting") else None
        if got is not None and int(round(got)) != self.synth_rate:
            self._synth.delete()
            self._synth = None
            raise GenreError(f"FluidSynth refused the sample rate {self.synth_rate} Hz (it runs at {got:g} Hz)")
        self._sfid = self._synth.sfload(str(self.soundfont))
        if self._sfid == -1:
            self._synth.delete()
            self._synth = None
            raise GenreError(f"FluidSynth cannot load the sound font {self.soundfont}")

    def _silence(self) -> None:
        """Make the next render independent of the last one: reset, cut every sounding voice
        (CC 120 all sound off, CC 121 reset controllers) and run the effects (reverb, chorus)
        until their tails have died away."""
        synth = self._synth
        synth.system_reset()
        for chan in range(16):
            synth.cc(chan, 120, 0)
            synth.cc(chan, 121, 0)
        synth.get_samples(self.synth_rate * 2)  # 2 s: longer than the reverb's decay; the samples are dropped

    def close(self) -> None:
        if self._synth is not None:
            self._synth.delete()
            self._synth = None

    def __enter__(self) -> Renderer:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def render(self, tracks: Sequence[Track], *, start: float = 0.0, seconds: float | None = None,
               tail: float = 1.0) -> np.ndarray:
        """Float32 stereo ``(frames, 2)`` of the notes sounding in ``[start, start + seconds)``.

        Notes already sounding at ``start`` are struck at 0; with ``seconds`` None the whole
        song is rendered plus ``tail`` seconds of release. For long songs see :meth:`blocks`.
        """
        return np.concatenate(list(self.blocks(tracks, start=start, seconds=seconds, tail=tail)))

    def blocks(self, tracks: Sequence[Track], *, start: float = 0.0, seconds: float | None = None,
               tail: float = 1.0, block_seconds: float = 10.0):
        """:meth:`render` in pieces of about ``block_seconds``: float32 stereo arrays that join
        into exactly the same samples, so memory stays bounded however long the song is."""
        self._silence()
        end = (song_seconds(tracks) + tail) if seconds is None else start + seconds
        if end <= start:
            raise GenreError(f"nothing to render: the song ends at {song_seconds(tracks):.1f} s, before {start:g} s")
        sr = self.synth_rate
        total = max(1, int(round((end - start) * sr)))
        block = max(1, int(block_seconds * sr))
        events = self._events(tracks, start, end, total)
        resampler = None
        want = total
        if sr != self.rate:
            import soxr

            resampler = soxr.ResampleStream(sr, self.rate, 2, dtype="float32", quality="HQ")
            want = max(1, int(round((end - start) * self.rate)))
        synth = self._synth
        pending: list[np.ndarray] = []
        n_pending = 0
        made = 0

        def emit(last: bool) -> np.ndarray:
            nonlocal made
            x = np.concatenate(pending).reshape(-1, 2).astype(np.float32) / 32768.0 if pending else np.zeros((0, 2), np.float32)
            pending.clear()
            if resampler is not None:
                x = resampler.resample_chunk(x, last=last)
                if last:  # the resampler's length is the rate ratio's, to a sample or two
                    x = x[: max(0, want - made)]
                    if made + len(x) < want:
                        x = np.concatenate([x, np.zeros((want - made - len(x), 2), np.float32)])
                x = np.ascontiguousarray(x, dtype=np.float32)
            made += len(x)
            return x

        def pull(n: int):
            nonlocal n_pending
            while n > 0:
                k = min(n, block)
                pending.append(synth.get_samples(k))
                n_pending += k
                n -= k
                if n_pending >= block:
                    n_pending = 0
                    yield emit(False)

        pos = 0
        for frame, kind, chan, pitch, vel in events:
            if frame > pos:
                yield from pull(frame - pos)
                pos = frame
            if kind:
                synth.noteon(chan, pitch, max(1, min(127, vel)))
            else:
                synth.noteoff(chan, pitch)
        if total > pos:
            yield from pull(total - pos)
        if pending or resampler is not None:
            last = emit(True)
            if len(last):
                yield last

    def _events(self, tracks: Sequence[Track], start: float, end: float, total: int) -> list[tuple]:
        """Note events ``(frame, kind, channel, pitch, velocity)`` in time order, channels set up;
        at one frame note-offs (kind 0) come before note-ons (kind 1)."""
        synth, rate = self._synth, self.synth_rate
        channels: dict[tuple[int, bool], int] = {}
        events = []
        melodic = [c for c in range(16) if c != 9]
        for t in tracks:
            key = (t.program if not t.is_drum else 0, t.is_drum)
            if key not in channels:
                if t.is_drum:
                    channels[key] = 9
                else:
                    used = {c for (_, d), c in channels.items() if not d}
                    free = [c for c in melodic if c not in used]
                    channels[key] = free[0] if free else melodic[len(channels) % len(melodic)]
                chan = channels[key]
                synth.program_select(chan, self._sfid, 128 if t.is_drum else 0, key[0])
            chan = channels[key]
            n = t.notes
            keep = (n[:, 1] > start) & (n[:, 0] < end)
            for s, e, p, v in n[keep]:
                on = max(0, int(round((s - start) * rate)))
                off = min(total, int(round((e - start) * rate)))
                events.append((on, 1, chan, int(p), int(v)))
                if off < total:
                    events.append((max(off, on + 1), 0, chan, int(p), 0))
        events.sort(key=lambda ev: (ev[0], ev[1]))
        return events


_RENDERERS: dict[tuple[str, int], Renderer] = {}


def renderer(soundfont: str | os.PathLike | None = None, rate: int = RENDER_RATE) -> Renderer:
    """A process-wide :class:`Renderer` per (sound font, rate)."""
    sf = str(find_soundfont(soundfont))
    key = (sf, int(rate))
    if key not in _RENDERERS:
        _RENDERERS[key] = Renderer(sf, rate)
    return _RENDERERS[key]


def midi_renderer(soundfont: str | os.PathLike | None = None, rate: int = RENDER_RATE, *, mono: bool = True):
    """``render(pretty_midi, seconds) -> (samples, rate)`` for :func:`midigenre.report.build_midi_report`:
    the first ``seconds`` of a ``pretty_midi.PrettyMIDI`` (silence where it has no notes),
    float32 ``(frames,)`` (mono: the channels averaged) or ``(frames, 2)``."""
    rend = renderer(soundfont, rate)

    def render(pm, seconds: float) -> tuple[np.ndarray, int]:
        x = rend.render(tracks_of_pretty_midi(pm), seconds=seconds)
        return (x.mean(axis=1) if mono else x), rend.rate

    return render


def render_file(path: str | os.PathLike, *, soundfont=None, rate: int = RENDER_RATE, start: float = 0.0,
                seconds: float | None = None, max_bars: int = MAX_BARS) -> np.ndarray:
    """Render a MIDI file (or ``seconds`` of it from ``start``) to float32 stereo in memory.

    A whole long song takes 8 bytes per frame: :func:`render_to_file` streams instead.
    """
    tracks = tracks_of_file(path, max_bars=max_bars)
    if not tracks:
        raise GenreError(f"{path} has no notes to render")
    return renderer(soundfont, rate).render(tracks, start=start, seconds=seconds)


#: Bytes per stereo frame of uncompressed audio, per subtype (FLAC: about 0.6 of it for music).
_BYTES_PER_FRAME = {"PCM_16": 4.0, "PCM_24": 6.0, "PCM_32": 8.0, "FLOAT": 8.0, "DOUBLE": 16.0}


def estimate_bytes(seconds: float, rate: int, fmt: str, subtype: str) -> int:
    """About how many bytes ``seconds`` of stereo audio take as ``fmt``/``subtype``."""
    if fmt == "OGG":
        return int(seconds * 20_000)  # Vorbis at its default quality: about 160 kbit/s
    per = _BYTES_PER_FRAME.get(subtype, 4.0) * (0.6 if fmt == "FLAC" else 1.0)
    return int(seconds * rate * per)


def render_to_file(path: str | os.PathLike, output: str | os.PathLike, *, soundfont=None, rate: int = RENDER_RATE,
                   start: float = 0.0, seconds: float | None = None, max_bars: int = MAX_BARS,
                   subtype: str | None = None, on_start=None) -> float:
    """Render a MIDI file straight into an audio file (.wav/.flac/.ogg), block by block.

    Memory stays at a few seconds of audio whatever the song's length; the file appears
    (atomically) only when it is complete. Returns the seconds written. ``on_start(seconds,
    bytes)``, when given, hears the length to render and the file's estimated size before the
    rendering starts (a command warns of hours of audio there).
    """
    import soundfile as sf

    from audiogenre.audio import check_output_suffix
    from shared.atomic import atomic_path

    output = Path(output)
    check_output_suffix(output)
    tracks = tracks_of_file(path, max_bars=max_bars)
    if not tracks:
        raise GenreError(f"{path} has no notes to render")
    rend = renderer(soundfont, rate)
    fmt = {".wav": "WAV", ".flac": "FLAC", ".ogg": "OGG"}[output.suffix.lower()]
    subtype = subtype or {"WAV": "PCM_16", "FLAC": "PCM_16", "OGG": "VORBIS"}[fmt]
    song_end = song_seconds(tracks)
    if start > 0 and start >= song_end:  # past the last note: only silence, with --seconds or without
        raise GenreError(f"nothing to render: the song ends at {song_end:.1f} s, before {start:g} s")
    if on_start is not None:
        length = (song_end + 1.0 - start) if seconds is None else seconds  # 1.0: the tail of Renderer.blocks
        on_start(length, estimate_bytes(length, rate, fmt, subtype))
    frames = 0
    with atomic_path(output, suffix=output.suffix) as tmp:
        try:
            with sf.SoundFile(str(tmp), "w", samplerate=int(rate), channels=2, subtype=subtype, format=fmt) as f:
                for block in rend.blocks(tracks, start=start, seconds=seconds):
                    f.write(np.clip(block, -1.0, 1.0))
                    frames += len(block)
        except (sf.LibsndfileError, RuntimeError, ValueError) as err:
            raise GenreError(f"cannot write {output} ({fmt} {subtype} at {rate} Hz): {str(err).splitlines()[0]}") from None
    return frames / float(rate)


def midi_files_by_genre(midi_root: str | os.PathLike, *, genres: Sequence[str] | None = None,
                        genre_map: dict[str, str] | None = None) -> dict[str, list[Path]]:
    """``{genre: [MIDI files]}`` of a folder of genre folders: each visible subfolder of ``midi_root``
    is a genre (renamed by ``genre_map``; only ``genres`` when given), holding, at any depth, files
    with a MIDI suffix (``midigenre.prepare.MIDI_SUFFIXES``, the list ``genre midi prepare`` reads)."""
    root = Path(midi_root)
    if not root.is_dir():
        raise GenreError(f"no such folder: {root}")
    genre_map = dict(genre_map or {})
    folders = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    by_genre: dict[str, list[Path]] = {}
    for folder in folders:
        g = genre_map.get(folder.name, folder.name)
        if genres and g not in genres:
            continue
        files = sorted(p for p in folder.rglob("*") if p.suffix.lower() in MIDI_SUFFIXES and p.is_file())
        by_genre.setdefault(g, []).extend(files)
    if genres:
        missing = [g for g in genres if g not in by_genre]
        if missing:
            raise GenreError(f"no folder for genre(s) {', '.join(missing)} in {root} (folders: {', '.join(p.name for p in folders)})")
    return by_genre


def render_dataset(midi_root: str | os.PathLike, out: str | os.PathLike, *, clips_per_genre: int = 100,
                   seconds: float = 10.0, seed: int = 24, genres: Sequence[str] | None = None,
                   genre_map: dict[str, str] | None = None, soundfont=None, rate: int = RENDER_RATE,
                   max_clips_per_song: int = 4, fractions: tuple[float, float, float] = (0.8, 0.1, 0.1),
                   progress=None) -> dict:
    """Build a genre-labelled audio set from a folder of genre folders of MIDI files.

    Each clip is a random ``seconds``-long crop (seeded) of one song, rendered with FluidSynth
    to ``OUT/<genre>/<song>__<start>s.wav``. Songs are visited in a seeded order, one crop per
    song first, so a genre's clips come from as many songs as it has; the train/valid/test
    split is decided per *song* (a hash of the seed and the song's path, the one
    :func:`audiogenre.datasets.unit_hash` gives a folder's groups), so no song is on two sides.
    ``OUT/manifest.json`` (format in :mod:`audiogenre.datasets.folder`) lists every clip with its
    genre, song, start and split. Clips already on disk are kept (a stopped run continues where it was).
    ``progress(stage, done, total)`` (:mod:`shared.progress`) counts the clips made.
    """
    from audiogenre.audio import write_audio
    from audiogenre.datasets import manifest_clip, side_of, unit_hash, write_manifest
    from shared.progress import progress_callback

    report_progress = progress_callback(progress)

    root = Path(midi_root)
    by_genre = midi_files_by_genre(root, genres=genres, genre_map=genre_map)
    if len(by_genre) < 2:
        raise GenreError(f"{root} needs at least two genre folders of MIDI files, found {len(by_genre)}")
    out = Path(out)
    rend = renderer(soundfont, rate)
    clips, skipped = [], {}
    total, n_made = clips_per_genre * len(by_genre), 0
    report_progress("rendering", 0, total)
    for g, files in sorted(by_genre.items()):
        rng = np.random.default_rng([seed, *g.encode()])
        order = [files[i] for i in rng.permutation(len(files))]
        made = 0
        usable: list[tuple[Path, list[Track], float]] = []
        for rnd in range(max_clips_per_song):
            source = order if rnd == 0 else [u[0] for u in usable]
            for path in source:
                if made >= clips_per_genre:
                    break
                if rnd == 0:
                    try:
                        tracks = tracks_of_file(path)
                    except GenreError:
                        skipped["unreadable"] = skipped.get("unreadable", 0) + 1
                        continue
                    length = song_seconds(tracks)
                    if length < seconds:
                        skipped["shorter than a clip"] = skipped.get("shorter than a clip", 0) + 1
                        continue
                    usable.append((path, tracks, length))
                else:
                    _, tracks, length = next(u for u in usable if u[0] == path)
                song = path.relative_to(root).as_posix()
                for _try in range(3):
                    start = round(float(rng.uniform(0, length - seconds)), 2)
                    dest = out / g / f"{path.stem}__{start:.2f}s.wav"
                    if dest.exists():
                        break
                    wave = rend.render(tracks, start=start, seconds=seconds)
                    if float(np.sqrt(np.mean(wave.astype(np.float64) ** 2))) > 1e-3:
                        write_audio(dest, wave, rate)
                        break
                else:
                    skipped["silent crop"] = skipped.get("silent crop", 0) + 1
                    continue
                clips.append(manifest_clip(dest.relative_to(out).as_posix(), g, song, start,
                                           side_of(unit_hash(seed, song), fractions)))
                made += 1
                n_made += 1
                report_progress("rendering", n_made, total)
            if made >= clips_per_genre or not usable:
                break
        if made < clips_per_genre:
            skipped[f"{g}: too few songs for {clips_per_genre} clips"] = clips_per_genre - made
    return write_manifest(out, clips, source=str(root.resolve()), seconds=seconds, seed=seed, rate=rate,
                          soundfont=str(rend.soundfont), genres=sorted(by_genre), fractions=list(fractions),
                          skipped=skipped)
