"""Audio input/output and the preprocessing of Armeniakos & Bistas, without torchaudio.

Reading uses soundfile (libsndfile: WAV, FLAC, OGG/Vorbis, MP3 and more); resampling uses
soxr, a band-limited (windowed-sinc class) resampler in C: see ``benchmarks/resample_speed.py``
for its speed and alias rejection against julius and scipy. torchaudio is not used: its
registry wheels are CUDA builds that do not import on CPU-only torch (docs/dependencies.md).

The model input is made by :func:`preprocess`, the five stages of the paper:

1. mono by averaging the channels,
2. band-limited sinc resampling to 16 kHz,
3. a fixed interval (``offset`` seconds on), zero-padded or truncated to ``seconds``,
4. optional additive Gaussian noise at ``noise`` × the clip's RMS,
5. clamp to [-1, 1].

The zero-mean/unit-variance normalisation that wav2vec2 expects is *not* done here: it is
the first layer of the classifier (:class:`audiogenre.models.Normalize`), so gradients of the
genre probability flow back to the raw waveform through it.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from pathlib import Path

import numpy as np

from shared.atomic import atomic_path
from shared.errors import GenreError

SAMPLE_RATE = 16_000
MIN_SECONDS = 0.5  # below this a clip holds too few wav2vec2 frames (20 ms each) to classify
#: Sample rates a recording can plausibly have (Hz): a header outside them is damaged or forged, and
#: resampling from it would make absurd lengths (1 Hz → 16 kHz multiplies the samples by 16000).
FILE_RATES = (4000, 768_000)
#: The most samples :func:`resample` makes (1 GiB of float32, 4.6 hours at 16 kHz): more than any song.
MAX_RESAMPLED = 1 << 28


@dataclasses.dataclass(frozen=True)
class Audio:
    """Samples as float32 ``(frames, channels)`` in [-1, 1] (for integer files) and the rate."""

    samples: np.ndarray
    rate: int

    @property
    def seconds(self) -> float:
        return self.samples.shape[0] / self.rate

    @property
    def channels(self) -> int:
        return self.samples.shape[1]


def load_audio(path: str | os.PathLike, *, start: float = 0.0, duration: float | None = None) -> Audio:
    """Read ``path`` (any format libsndfile reads) as float32 ``(frames, channels)``.

    Only ``[start, start + duration)`` seconds are decoded when given. Raises GenreError
    with one line for missing, empty, corrupt or unsupported files.
    """
    import soundfile as sf

    path = Path(path)
    if not path.exists():
        raise GenreError(f"no such audio file: {path}")
    if path.is_dir():
        raise GenreError(f"{path} is a folder, not an audio file")
    if path.stat().st_size == 0:
        raise GenreError(f"{path} is empty (0 bytes)")
    try:
        with _quiet_decoder():
            with sf.SoundFile(str(path)) as f:
                rate = f.samplerate
                check_file_rate(rate, path)
                first = int(round(start * rate))
                if first:
                    if f.seekable():
                        f.seek(min(first, f.frames))
                    else:  # some MP3 streams: read and drop
                        f.read(first, dtype="float32", always_2d=True)
                frames = -1 if duration is None else int(round(duration * rate))
                data = f.read(frames, dtype="float32", always_2d=True)
    except GenreError:
        raise
    except (sf.LibsndfileError, RuntimeError, ValueError) as err:
        msg = str(err).split("\n")[0]
        if msg.startswith("Error opening") and path.is_file():  # libsndfile's words fit a missing file, not this
            msg = "not a format it can decode, or damaged"
        raise GenreError(f"cannot read {path} as audio ({msg}); formats: WAV, FLAC, OGG, MP3, AIFF") from None
    if data.shape[0] == 0:
        raise GenreError(f"{path} has no audio samples" + (f" after {start:g} s" if start else ""))
    if not all(np.isfinite(data[i:i + (1 << 20)]).all() for i in range(0, data.shape[0], 1 << 20)):
        raise GenreError(f"{path} holds NaN or infinite samples")
    return Audio(np.ascontiguousarray(data), int(rate))


def check_file_rate(rate: int, path: str | os.PathLike = "the audio") -> None:
    """GenreError for a sample rate no recording has (a damaged or forged header)."""
    lo, hi = FILE_RATES
    if not lo <= int(rate) <= hi:
        raise GenreError(f"{path} claims a sample rate of {int(rate)} Hz, outside the {lo}..{hi} Hz of real "
                         "recordings: its header is damaged; convert it to a usual rate (e.g. 44100 Hz)")


class _quiet_decoder:
    """Hold back what the C decoders (libmpg123 inside libsndfile) print straight to the
    process's stderr about a damaged file while it is read: the reader's own one-line error
    says what matters. Only where file descriptor 2 can be redirected (a normal process)."""

    def __enter__(self):
        self._saved = None
        try:
            import sys

            sys.stderr.flush()
            self._saved = os.dup(2)
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, 2)
            os.close(devnull)
        except (OSError, ValueError, AttributeError):
            if self._saved is not None:
                os.close(self._saved)
            self._saved = None
        return self

    def __exit__(self, *exc):
        if self._saved is not None:
            os.dup2(self._saved, 2)
            os.close(self._saved)
        return False


def write_audio(path: str | os.PathLike, samples: np.ndarray, rate: int, subtype: str | None = None) -> Path:
    """Write ``samples`` (frames[, channels]) atomically; the format follows the suffix (WAV default).

    Integer and compressed formats hold [-1, 1]: samples beyond it are clipped, so callers with
    louder signals scale them first (:func:`audiogenre.transform.transform_file` does, and says
    so). Float subtypes (FLOAT, DOUBLE) are written as they are.
    """
    import soundfile as sf

    path = Path(path)
    fmt = {".wav": "WAV", ".flac": "FLAC", ".ogg": "OGG"}.get(path.suffix.lower())
    if fmt is None:
        raise GenreError(f"cannot write {path.suffix or 'files without a suffix'}: use .wav, .flac or .ogg")
    data = np.asarray(samples, dtype=np.float32)
    if subtype is None:
        subtype = {"WAV": "PCM_16", "FLAC": "PCM_16", "OGG": "VORBIS"}[fmt]
    with atomic_path(path, suffix=path.suffix) as tmp:
        try:
            clip = subtype.upper() not in ("FLOAT", "DOUBLE")
            channels = 1 if data.ndim == 1 else data.shape[1]
            with sf.SoundFile(str(tmp), "w", int(rate), channels, subtype=subtype, format=fmt) as f:
                for i in range(0, data.shape[0], 1 << 20):  # a block at a time: no copy of a long song
                    block = data[i:i + (1 << 20)]
                    f.write(np.clip(block, -1.0, 1.0) if clip else block)
        except (sf.LibsndfileError, RuntimeError, ValueError) as err:
            raise GenreError(f"cannot write {path} ({fmt} {subtype} at {rate} Hz): {str(err).splitlines()[0]}") from None
    return path


def check_output_suffix(path: str | os.PathLike) -> None:
    """Fail early (before long work) on an output name :func:`write_audio` cannot write."""
    if Path(path).suffix.lower() not in (".wav", ".flac", ".ogg"):
        raise GenreError(f"cannot write {Path(path).suffix or 'files without a suffix'}: use .wav, .flac or .ogg")


def to_mono(samples: np.ndarray) -> np.ndarray:
    """Average the channels: ``(frames, channels)`` or ``(frames,)`` → ``(frames,)``."""
    samples = np.asarray(samples, dtype=np.float32)
    return samples if samples.ndim == 1 else samples.mean(axis=1, dtype=np.float32)


def resample(samples: np.ndarray, rate_in: int, rate_out: int, quality: str = "HQ") -> np.ndarray:
    """Band-limited resampling (soxr) of ``(frames,)`` or ``(frames, channels)`` float32 audio."""
    import soxr

    samples = np.asarray(samples, dtype=np.float32)
    if rate_in == rate_out:
        return samples.copy()
    if rate_in <= 0 or rate_out <= 0:
        raise GenreError(f"bad sample rate {rate_in} → {rate_out}")
    made = -(-samples.shape[0] * int(rate_out) // int(rate_in)) * (samples.shape[1] if samples.ndim > 1 else 1)
    if made > MAX_RESAMPLED:
        raise GenreError(f"resampling {samples.shape[0]} samples from {rate_in} Hz to {rate_out} Hz would make {made} "
                         f"samples ({made * 4 / (1 << 30):.1f} GiB), more than the {MAX_RESAMPLED} allowed: "
                         "is the sample rate in the file's header right?")
    out = soxr.resample(samples, rate_in, rate_out, quality=quality)
    return np.ascontiguousarray(out, dtype=np.float32)


def fix_length(samples: np.ndarray, length: int) -> np.ndarray:
    """Zero-pad or truncate the first axis to ``length``."""
    n = samples.shape[0]
    if n >= length:
        return samples[:length]
    pad = [(0, length - n)] + [(0, 0)] * (samples.ndim - 1)
    return np.pad(samples, pad)


def add_noise(samples: np.ndarray, ratio: float, rng: np.random.Generator) -> np.ndarray:
    """Add Gaussian noise with standard deviation ``ratio`` × the signal's RMS (ratio 0: unchanged)."""
    if ratio <= 0:
        return samples
    rms = float(np.sqrt(np.mean(np.square(samples, dtype=np.float64))))
    return (samples + rng.standard_normal(samples.shape).astype(np.float32) * (ratio * rms)).astype(np.float32)


@dataclasses.dataclass(frozen=True)
class Preprocess:
    """The model-input settings (Armeniakos & Bistas §3.1). ``offset`` picks the fixed interval."""

    sample_rate: int = SAMPLE_RATE
    seconds: float = 10.0
    offset: float = 0.0
    noise: float = 0.0

    @property
    def length(self) -> int:
        return int(round(self.seconds * self.sample_rate))

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> Preprocess:
        fields = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in fields})

    def key(self) -> str:
        """Hash of the settings that change a clip's samples (embeddings are only cached with
        noise 0: noisy clips differ on every read)."""
        import soundfile
        import soxr

        # the decoder and the resampler change samples too: a new version means new embeddings
        d = {"sample_rate": self.sample_rate, "seconds": self.seconds, "offset": self.offset, "noise": self.noise,
             "soxr": soxr.__version__, "libsndfile": soundfile.__libsndfile_version__}
        return hashlib.sha1(json.dumps(d, sort_keys=True).encode()).hexdigest()[:16]


def preprocess(audio: Audio, settings: Preprocess = Preprocess(), rng: np.random.Generator | None = None,
               *, offset: float | None = None) -> np.ndarray:
    """The paper's five stages → float32 ``(settings.length,)`` at ``settings.sample_rate``."""
    mono = to_mono(audio.samples)
    start = settings.offset if offset is None else offset
    first = int(round(start * audio.rate))
    # cut before resampling (cheaper), keeping ~50 ms either side for the filter to settle; the
    # lead-in is a whole number of `step` input samples, which map to a whole number of output
    # samples, so the clip starts exactly at `offset` (no sub-sample shift)
    import math

    g = math.gcd(audio.rate, settings.sample_rate)
    step = audio.rate // g
    k = min(-(-int(0.05 * audio.rate) // step), first // step)
    lo = first - k * step
    hi = first + int(round(settings.seconds * audio.rate)) + int(0.05 * audio.rate)
    piece = resample(mono[lo:hi], audio.rate, settings.sample_rate)
    skip = k * (settings.sample_rate // g)
    clip = fix_length(piece[skip:], settings.length)
    if settings.noise > 0:
        clip = add_noise(clip, settings.noise, rng if rng is not None else np.random.default_rng())
    return np.clip(clip, -1.0, 1.0).astype(np.float32)


def load_clip(path: str | os.PathLike, settings: Preprocess = Preprocess(), *, start: float = 0.0,
              duration: float | None = None, rng: np.random.Generator | None = None) -> np.ndarray:
    """Read a file (or its ``[start, start+duration)`` part) and :func:`preprocess` it."""
    seconds = settings.offset + settings.seconds + 0.1
    if duration is not None:
        seconds = min(seconds, duration)
    audio = load_audio(path, start=start, duration=seconds)
    if audio.seconds - settings.offset < MIN_SECONDS:
        have = max(0.0, audio.seconds - settings.offset)
        raise GenreError(f"{path} is too short ({have:.2f} s after the offset {settings.offset:g} s); at least {MIN_SECONDS} s is needed")
    return preprocess(audio, settings, rng)


def file_sha1(path: str | os.PathLike) -> str:
    """Content hash of a file (the embedding cache key: renaming a file keeps its embedding)."""
    h = hashlib.sha1()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def energy(x: np.ndarray) -> float:
    """Σx² in float64, a block at a time (no float64 copy of a long song)."""
    flat = np.asarray(x).reshape(-1)
    total = 0.0
    for i in range(0, len(flat), 1 << 20):
        b = flat[i:i + (1 << 20)].astype(np.float64)
        total += float(np.dot(b, b))
    return total


def snr_db(signal: np.ndarray, noise: np.ndarray) -> float:
    """10·log10(Σ signal² / Σ noise²); +inf for a zero perturbation."""
    s = energy(signal)
    n = energy(noise)
    if n == 0:
        return float("inf")
    if s == 0:
        return float("-inf")
    return 10.0 * np.log10(s / n)
