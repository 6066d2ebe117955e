"""Fuzz campaign: bad inputs through every command that reads them.

Builds the inputs in a temporary folder (MIDI bytes written by hand, damaged phrase caches,
broken audio), runs the ``genre`` commands on them and prints one row per run:

    case -> command -> exit code -> first line of output -> verdict

Verdicts: ``ok`` (what was expected: a one-line error and a non-zero exit, or a sensible
result), ``traceback``, ``hang`` (ran past the time limit), ``memory`` (killed or MemoryError
under the memory limit), ``wrong exit`` (exit 0 where an error was due, or the reverse),
``multi-line`` (an error of more than one line), ``bad result`` (exit 0 but a check of the
output failed: counts that do not add up, a damaged cache, litter left behind, wrong audio).

    python -m tests.fuzz_inputs                # everything (about 10 min on 2 cores)
    python -m tests.fuzz_inputs --quick        # without the slow cases (100k notes, 20 min audio, 500 files, kill -9)
    python -m tests.fuzz_inputs --only cache   # one group: midi, cache, audio, scenario
    python -m tests.fuzz_inputs --markdown     # the table as Markdown

from the repository's root (the campaign is test scaffolding, not part of the installed package).

Every command runs in its own process with a time limit and an address-space limit, so a
hang or a memory blow-up is reported instead of taking the machine down. tests/test_fuzz.py
runs the fast cases in-process (click's CliRunner) with the same builders and verdicts.
"""

from __future__ import annotations

import argparse
import dataclasses
import io
import json
import os
import resource
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable

import numpy as np

REPO = Path(__file__).resolve().parents[1]

# ----------------------------------------------------------------------------- MIDI bytes


def vlq(n: int) -> bytes:
    """MIDI variable-length quantity."""
    out = [n & 0x7F]
    n >>= 7
    while n:
        out.append(0x80 | (n & 0x7F))
        n >>= 7
    return bytes(reversed(out))


def track(events: list[tuple[int, bytes]], end: bool = True) -> bytes:
    """An MTrk chunk from (absolute tick, raw event bytes); note-offs sort before note-ons at one tick."""
    events = sorted(events, key=lambda e: (e[0], 0 if e[1][:1] and (e[1][0] & 0xF0) == 0x80 else 1))
    body, now = b"", 0
    for t, data in events:
        body += vlq(t - now) + data
        now = t
    if end:
        body += vlq(0) + b"\xff\x2f\x00"
    return b"MTrk" + struct.pack(">I", len(body)) + body


def smf(tracks: list[bytes], fmt: int = 1, tpq: int = 480, n_tracks: int | None = None) -> bytes:
    head = struct.pack(">IHHH", 6, fmt, len(tracks) if n_tracks is None else n_tracks, tpq & 0xFFFF)
    return b"MThd" + head + b"".join(tracks)


def notes(ns, channel: int = 0) -> list[tuple[int, bytes]]:
    ev = []
    for s, e, p in ns:
        ev += [(s, bytes([0x90 | channel, p, 90])), (e, bytes([0x80 | channel, p, 0]))]
    return ev


def time_sig(tick=0, num=4, den_pow=2) -> tuple[int, bytes]:
    return (tick, b"\xff\x58\x04" + bytes([num, den_pow, 24, 8]))


def tempo(mspq: int, tick: int = 0) -> tuple[int, bytes]:
    return (tick, b"\xff\x51\x03" + int(mspq).to_bytes(3, "big"))


def grid_notes(bars: int, seed: int = 0, tpq: int = 480, n: int | None = None, lo: int = 40, hi: int = 90):
    rng = np.random.default_rng(seed)
    step, total = tpq // 4, bars * 16
    n = n or bars * 8
    out = []
    for _ in range(n):
        s = int(rng.integers(0, total - 1))
        out.append((s * step, int(min(total, s + rng.integers(1, 8))) * step, int(rng.integers(lo, hi))))
    out.append(((total - 1) * step, total * step, lo))  # the song fills its last bar
    return out


def song(bars: int = 16, seed: int = 0, tpq: int = 480, mspq: int | None = 500_000, meta=(), fmt: int = 1,
         ns=None, channel: int = 0) -> bytes:
    """A type-1 file: a conductor track (4/4 at 0, a tempo) and one piano track."""
    conductor = [time_sig()] + ([tempo(mspq)] if mspq is not None else []) + list(meta)
    ns = grid_notes(bars, seed, tpq) if ns is None else ns
    return smf([track(conductor), track(notes(ns, channel))], fmt=fmt, tpq=tpq)


def midi_inputs(slow: bool = False) -> dict[str, bytes]:
    """name -> file bytes, the bad and the good."""
    good = song(16, seed=1)
    rng = np.random.default_rng(0)
    d: dict[str, bytes] = {
        "good": good,
        "zero-byte": b"",
        "random-bytes": rng.integers(0, 256, 2048, dtype=np.uint8).tobytes(),
        "random-after-header": good[:22] + rng.integers(0, 256, 2048, dtype=np.uint8).tobytes(),
        "text": b"this is not a MIDI file\n" * 20,
        "tpq-0": song(16, seed=1, tpq=0),
        "smpte-division": smf([track([time_sig(), tempo(500_000)]), track(notes(grid_notes(16, 1)))], tpq=0xE728),
        "tempo-0": song(16, seed=1, mspq=0),
        "tempo-0-later": song(16, seed=1, meta=[tempo(0, tick=480 * 16)]),
        "tempo-huge": song(8, seed=1, mspq=0xFFFFFF),
        "tempo-tiny": song(16, seed=1, mspq=1),
        "type-0": smf([track([time_sig(), tempo(500_000)] + notes(grid_notes(16, 1)))], fmt=0),
        "type-2": smf([track([time_sig(), tempo(500_000)] + notes(grid_notes(8, 1))),
                       track([time_sig(), tempo(400_000)] + notes(grid_notes(8, 2)))], fmt=2),
        "drum-only": song(16, seed=1, channel=9),
        "pitches-out-of-range": song(16, ns=[(i * 240, i * 240 + 200, (i * 7) % 24) for i in range(128)]
                                     + [(i * 240, i * 240 + 200, 108 + (i * 5) % 20) for i in range(128)]),
        "pitch-byte-over-127": smf([track([time_sig(), tempo(500_000)]),
                                    track([(0, b"\x90\xc8\x5a"), (480, b"\x80\xc8\x00")] + notes(grid_notes(16, 1)))]),
        "note-at-tick-2^27": song(ns=grid_notes(32, 1) + [(2**27, 2**27 + 480, 60)]),
        "no-notes": smf([track([time_sig(), tempo(500_000)]), track([])]),
        "no-time-signature": smf([track([tempo(500_000)]), track(notes(grid_notes(16, 1)))]),
        "3/4": smf([track([time_sig(num=3), tempo(500_000)]), track(notes(grid_notes(16, 1)))]),
        "65535-tracks-declared": smf([track([time_sig(), tempo(500_000)]), track(notes(grid_notes(16, 1)))], n_tracks=65535),
        "zero-length-notes": song(ns=[(i * 480, i * 480, 60 + i % 12) for i in range(64)] + [(64 * 480, 65 * 480, 60)]),
        "hanging-notes": smf([track([time_sig(), tempo(500_000)]),
                              track([(i * 480, bytes([0x90, 60 + i % 12, 90])) for i in range(64)])]),
        "huge-delta-end": smf([track([time_sig(), tempo(500_000)]),
                               track(notes(grid_notes(16, 1)) + [(0x0FFFFFFF, b"\xb0\x7b\x00")])]),
        "empty-track-chunk": smf([track([time_sig(), tempo(500_000)]), b"MTrk\x00\x00\x00\x00"]),
        "tpq-32767": song(16, seed=1, tpq=32767),
    }
    n = len(good)
    for off in (1, 4, 13, 14, 22, 30, n // 4, n // 2, 3 * n // 4, n - 3, n - 1):
        d[f"truncated@{off}"] = good[:off]
    if slow:
        # 100k notes: 100 voices × 1000 beats, all inside the pitch window
        ns = [(b * 480, b * 480 + 400, 30 + (v * 13 + b) % 70) for b in range(1000) for v in range(100)]
        d["100k-notes"] = song(ns=ns)
    return d


# ----------------------------------------------------------------------------- caches


def make_good_cache(folder: Path, out: Path, genres=("jazz", "classical"), songs_per_genre: int = 10,
                    meter: str = "lenient") -> Path:
    """A two-genre cache of random songs (prepared in this process, no CLI)."""
    from midigenre.pianoroll import RollSettings
    from midigenre.prepare import prepare

    for k, g in enumerate(genres):
        d = folder / f"src-{g}"
        d.mkdir(parents=True, exist_ok=True)
        for i in range(songs_per_genre):
            lo, hi = (30, 65) if k == 0 else (55, 95)
            (d / f"{g}{i:02d}.mid").write_bytes(song(8, seed=100 * k + i, ns=grid_notes(8, 100 * k + i, lo=lo, hi=hi)))
        prepare([d], g, out, RollSettings(meter=meter))
    return out


def _flip_bit(path: Path, offset: int, bit: int = 3) -> None:
    with open(path, "r+b") as f:
        f.seek(offset)
        b = f.read(1)
        f.seek(offset)
        f.write(bytes([b[0] ^ (1 << bit)]))


def _chunk_offset(path: Path, genre: str = "jazz") -> tuple[int, int]:
    import h5py

    with h5py.File(path, "r") as h5:
        info = h5[f"genres/{genre}/phrases"].id.get_chunk_info(0)
        return int(info.byte_offset), int(info.size)


def cache_inputs(good: Path, folder: Path) -> dict[str, Path]:
    """name -> a damaged copy of the good cache (the good one included)."""
    import h5py

    folder.mkdir(parents=True, exist_ok=True)
    data = good.read_bytes()
    out: dict[str, Path] = {}

    def copy(name: str) -> Path:
        p = folder / f"{name.replace('/', '_')}.h5"
        shutil.copyfile(good, p)
        out[name] = p
        return p

    def write(name: str, blob: bytes) -> Path:
        p = folder / f"{name.replace('/', '_')}.h5"
        p.write_bytes(blob)
        out[name] = p
        return p

    copy("good")
    write("zero-byte", b"")
    write("random-bytes", np.random.default_rng(1).integers(0, 256, 4096, dtype=np.uint8).tobytes())
    for frac in (0.1, 0.5, 0.9):
        write(f"truncated@{int(frac * 100)}%", data[: int(len(data) * frac)])
    off, size = _chunk_offset(good)
    p = copy("bit-flip-in-chunk")
    _flip_bit(p, off + size // 2)
    p = copy("corrupted-chunk")
    with open(p, "r+b") as f:
        f.seek(off + 8)
        f.write(b"\x00" * min(64, size - 8))
    for k, pos in enumerate((200, len(data) // 3, 2 * len(data) // 3, len(data) - 100)):
        _flip_bit(copy(f"bit-flip@{pos}"), pos)
    with h5py.File(copy("settings-not-json"), "r+") as h5:
        h5.attrs["settings"] = "{this is: not json"
    with h5py.File(copy("settings-wrong-types"), "r+") as h5:
        h5.attrs["settings"] = json.dumps({"steps_per_beat": "four", "n_pitches": [84]})
    with h5py.File(copy("settings-a-list"), "r+") as h5:
        h5.attrs["settings"] = "[1, 2, 3]"
    with h5py.File(copy("schema-version-text"), "r+") as h5:
        h5.attrs["schema_version"] = "one"
    with h5py.File(copy("schema-version-99"), "r+") as h5:
        h5.attrs["schema_version"] = 99
    with h5py.File(copy("kind-other"), "r+") as h5:
        h5.attrs["kind"] = "audio-embeddings"
    with h5py.File(copy("missing-phrases"), "r+") as h5:
        del h5["genres/jazz/phrases"]
    with h5py.File(copy("missing-files-group"), "r+") as h5:
        del h5["genres/jazz/files"]
    with h5py.File(copy("genre-is-a-dataset"), "r+") as h5:
        del h5["genres/jazz"]
        h5["genres/jazz"] = np.zeros(3)
    with h5py.File(copy("phrase-file-out-of-range"), "r+") as h5:
        pf = h5["genres/jazz/phrase_file"]
        pf[...] = pf[...] + 1000
    with h5py.File(copy("phrase-index-negative"), "r+") as h5:
        pi = h5["genres/jazz/phrase_index"]
        pi[...] = -1 - pi[...]
    with h5py.File(copy("phrase-index-huge"), "r+") as h5:
        pi = h5["genres/jazz/phrase_index"]
        pi[...] = pi[...] + 10**9  # export --song would lay out 10^9 phrases
    with h5py.File(copy("phrase-index-all-zeros"), "r+") as h5:
        pi = h5["genres/jazz/phrase_index"]
        pi[...] = 0  # every phrase of a song in one place: export --song would stack them
    with h5py.File(copy("tempo-0"), "r+") as h5:
        h5["genres/jazz/files/tempo"][...] = 0.0
    with h5py.File(copy("first-phrase-out-of-range"), "r+") as h5:
        fp = h5["genres/jazz/files/first_phrase"]
        fp[...] = fp[...] + 10_000
    with h5py.File(copy("counts-disagree"), "r+") as h5:
        g = h5["genres/jazz"]
        g["phrase_file"].resize((len(g["phrase_file"]) - 3,))
    with h5py.File(copy("phrases-(N,32,84)"), "r+") as h5:
        g = h5["genres/jazz"]
        x = g["phrases"][:]
        del g["phrases"]
        g.create_dataset("phrases", data=x[:, :32], chunks=(min(16, len(x)), 32, 84), compression="gzip")
    with h5py.File(copy("phrases-float"), "r+") as h5:
        g = h5["genres/jazz"]
        x = g["phrases"][:]
        del g["phrases"]
        g.create_dataset("phrases", data=x.astype(np.float32) * 7.5, chunks=(min(16, len(x)), 64, 84))
    with h5py.File(copy("empty-genres"), "r+") as h5:
        del h5["genres"]
    with h5py.File(folder / "plain-hdf5.h5", "w") as h5:
        h5["x"] = np.arange(3)
    out["plain-hdf5"] = folder / "plain-hdf5.h5"
    return out


# ----------------------------------------------------------------------------- audio


def write_wav(path: Path, samples: np.ndarray, rate: int, subtype: str = "PCM_16") -> Path:
    import soundfile as sf

    sf.write(str(path), samples, rate, subtype=subtype, format="WAV")
    return path


def tone_mix(seconds: float, rate: int, channels: int = 1, seed: int = 0, level: float = 0.3) -> np.ndarray:
    """A few decaying tones and a little noise: something a genre classifier can hear."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * rate)) / rate
    x = np.zeros_like(t)
    for k in range(8):
        f = 110.0 * 2 ** (rng.integers(0, 36) / 12)
        onset = rng.uniform(0, max(seconds - 0.5, 0.01))
        env = np.where(t >= onset, np.exp(-(t - onset) * 3.0), 0.0)
        x += np.sin(2 * np.pi * f * t) * env
    x += 0.01 * rng.standard_normal(len(t))
    x = level * x / max(np.max(np.abs(x)), 1e-9)
    return np.repeat(x[:, None], channels, axis=1).astype(np.float32)


def audio_inputs(folder: Path, slow: bool = False) -> dict[str, Path]:
    folder.mkdir(parents=True, exist_ok=True)
    out: dict[str, Path] = {}
    out["good"] = write_wav(folder / "good.wav", tone_mix(6.0, 22050, 2), 22050)
    (folder / "zero-byte.wav").write_bytes(b"")
    out["zero-byte"] = folder / "zero-byte.wav"
    (folder / "text.wav").write_text("RIFF? no, just text\n" * 50)
    out["text"] = folder / "text.wav"
    header = io.BytesIO()
    import soundfile as sf

    with sf.SoundFile(header, "w", 22050, 1, "PCM_16", format="WAV") as f:
        pass
    (folder / "header-only.wav").write_bytes(header.getvalue())
    out["header-only"] = folder / "header-only.wav"
    good = (folder / "good.wav").read_bytes()
    (folder / "truncated.wav").write_bytes(good[: len(good) // 3])
    out["truncated"] = folder / "truncated.wav"
    x = tone_mix(4.0, 22050, 1)
    x[1000:1010] = np.nan
    out["nan"] = write_wav(folder / "nan.wav", x, 22050, "FLOAT")
    x = tone_mix(4.0, 22050, 1)
    x[5000] = np.inf
    out["inf"] = write_wav(folder / "inf.wav", x, 22050, "FLOAT")
    out["one-sample"] = write_wav(folder / "one-sample.wav", np.array([[0.5]], np.float32), 22050)
    out["8kHz-mono"] = write_wav(folder / "8k-mono.wav", tone_mix(7.0, 8000, 1, seed=2), 8000)
    out["192kHz-6ch"] = write_wav(folder / "192k-6ch.wav", tone_mix(7.0, 192000, 6, seed=3), 192000)
    out["float-peak-7.6"] = write_wav(folder / "peak76.wav", tone_mix(6.0, 22050, 2, seed=4, level=7.6), 22050, "FLOAT")
    out["silent"] = write_wav(folder / "silent.wav", np.zeros((22050 * 3, 2), np.float32), 22050)
    # headers that claim 1 Hz and 3 Hz: resampled to 16 kHz they would be 16000× longer (tens of GB)
    x = tone_mix(10.0, 48000, 1, seed=5)
    out["rate-1Hz"] = write_wav(folder / "rate-1Hz.wav", x, 1)
    out["rate-3Hz"] = write_wav(folder / "rate-3Hz.wav", x, 3)
    (folder / "not-audio.mp3").write_bytes(b"ID3" + bytes(200))
    out["fake-mp3"] = folder / "not-audio.mp3"
    if slow:
        path = folder / "20-minutes.wav"
        rate, block = 44100, 44100 * 60
        with sf.SoundFile(str(path), "w", rate, 2, "PCM_16", format="WAV") as f:
            for m in range(20):
                f.write(tone_mix(60.0, rate, 2, seed=m))
        out["20-minutes"] = path
    return out


# ----------------------------------------------------------------------------- running


@dataclasses.dataclass
class Outcome:
    rc: int | None
    out: str
    err: str
    seconds: float
    timed_out: bool = False
    max_rss_mb: float = 0.0
    exception: BaseException | None = None  # in-process runs: what escaped


@dataclasses.dataclass
class Case:
    group: str
    name: str
    argv: list[str]
    expect: str  # "error", "ok" or "either"
    check: Callable[[Outcome], str | None] | None = None  # returns a problem or None
    timeout: float = 120.0
    setup: Callable[[], None] | None = None


def run_subprocess(argv: list[str], timeout: float, mem_gb: float = 6.0, env=None) -> Outcome:
    """``genre ARGV`` in a fresh process, limited in time and address space."""
    code = ("import atexit, resource, sys; sys.argv[0] = 'genre'; atexit.register(lambda: sys.stderr.write("
            "f'\\n@@maxrss {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}\\n')); from cli.main import main; main()")
    limit = int(mem_gb * (1 << 30))

    def pre():
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
        os.setsid()

    e = dict(os.environ, PYTHONPATH=str(REPO), OMP_NUM_THREADS="1", **(env or {}))
    t0 = time.perf_counter()
    p = subprocess.Popen([sys.executable, "-c", code, *argv], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         preexec_fn=pre, env=e, cwd=str(REPO))
    timed_out = False
    try:
        out, err = p.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        timed_out = True
        os.killpg(p.pid, signal.SIGKILL)
        out, err = p.communicate()
    err_text, rss = err.decode(errors="replace"), 0.0
    lines = err_text.splitlines()
    for line in lines:
        if line.startswith("@@maxrss "):
            rss = int(line.split()[1]) / 1024
    err_text = "\n".join(x for x in lines if not x.startswith("@@maxrss "))
    return Outcome(p.returncode, out.decode(errors="replace"), err_text, time.perf_counter() - t0, timed_out, rss)


def run_inprocess(argv: list[str]) -> Outcome:
    """``genre ARGV`` through click's CliRunner (fast; no time or memory limit)."""
    from click.testing import CliRunner

    from cli.main import main

    t0 = time.perf_counter()
    res = CliRunner().invoke(main, argv, catch_exceptions=True)
    exc = res.exception if res.exception is not None and not isinstance(res.exception, SystemExit) else None
    out = res.stdout
    err = res.stderr if hasattr(res, "stderr") else ""
    return Outcome(res.exit_code, out, err, time.perf_counter() - t0, exception=exc)


LOG_PREFIXES = ("WARNING ", "INFO ", "DEBUG ", "note:", "warning:", "fluidsynth: warning")


def message_lines(o: Outcome) -> list[str]:
    """Lines of output that are not log lines or progress bars."""
    lines = []
    for line in (o.err + "\n" + o.out).split("\n"):  # not splitlines(): it would cut a bar's "\r" updates apart
        s = line.strip()
        if not s or s.startswith(LOG_PREFIXES) or "\r" in line or "it/s]" in line or "file/s]" in line or "window/s]" in line:
            continue
        lines.append(s)
    return lines


def first_line(o: Outcome) -> str:
    if o.exception is not None:
        return f"{type(o.exception).__name__}: {str(o.exception).splitlines()[0] if str(o.exception) else ''}"
    if "Traceback (most recent call last)" in o.err:  # the exception's own line
        return [x for x in o.err.splitlines() if x.strip()][-1].strip()
    err = [x for x in o.err.splitlines() if x.strip().startswith("Error")]
    if err:
        return err[0].strip()
    lines = [x for x in (o.out + "\n" + o.err).splitlines() if x.strip()]
    return lines[0].strip() if lines else ""


def verdict(case: Case, o: Outcome) -> str:
    text = o.out + o.err
    if o.timed_out:
        return "hang"
    if o.exception is not None or "Traceback (most recent call last)" in text:
        name = type(o.exception).__name__ if o.exception is not None else ""
        if "MemoryError" in text or name == "MemoryError":
            return "memory"
        return "traceback"
    if o.rc is not None and o.rc < 0 or o.rc == 137:
        return "memory" if o.rc in (-9, 137) else f"killed ({o.rc})"
    if o.rc == 0:
        if case.expect == "error":
            return "wrong exit (0)"
        if case.check:
            problem = case.check(o)
            if problem:
                return f"bad result: {problem}"
        return "ok"
    if case.expect == "ok":
        return f"wrong exit ({o.rc})"
    # exactly one "Error: …" line on stderr and nothing else there (log lines aside); what a
    # command printed on stdout before it met the problem (inspect's first genres) may stay
    err_lines = message_lines(Outcome(o.rc, "", o.err, o.seconds))
    errors = [x for x in err_lines if x.startswith("Error")]
    if len(errors) != 1:
        return "multi-line" if errors else "no message"
    if len(err_lines) > 1 and o.rc != 130:
        return "multi-line"
    return "ok"


# ----------------------------------------------------------------------------- checks


def check_prepare_counts(cache: Path, genre: str) -> Callable[[Outcome], str | None]:
    """The summary's counts add up (found = kept + dropped) and the cache says the same."""

    def check(o: Outcome) -> str | None:
        rows = {}
        for line in o.out.splitlines():
            parts = line.strip().rsplit("  ", 1)
            if len(parts) == 2:
                rows[parts[0].strip()] = parts[1].strip()
        try:
            found = int(rows["files found"])
            kept = int(rows["files kept"])
            dropped = sum(int(v) for k, v in rows.items() if k.startswith("dropped:"))
            done = int(rows.get("already in the cache", 0)) + int(rows.get("done by the interrupted run", 0))
        except (KeyError, ValueError):
            return "no summary"
        if found != kept + dropped + done:
            return f"found {found} != kept {kept} + dropped {dropped} + done {done}"
        from midigenre.dataset import PhraseCache

        with PhraseCache(cache) as c:
            n_kept, n_dropped = len(c.files(genre)["name"]), len(c.dropped(genre)["name"])
        if n_kept + n_dropped != found:
            return f"cache holds {n_kept} kept + {n_dropped} dropped, the summary found {found}"
        return None

    return check


def check_render(path: Path, seconds: float | None = None, freq: float | None = None, rate: int | None = None):
    def check(o: Outcome) -> str | None:
        import soundfile as sf

        if not path.exists():
            return "no output"
        x, r = sf.read(str(path), always_2d=True)
        if rate and r != rate:
            return f"rate {r}, not {rate}"
        if seconds is not None and not (seconds - 0.1 <= len(x) / r <= seconds + 2.5):
            return f"{len(x) / r:.1f} s of audio, expected about {seconds:.1f} s (+ release)"
        if freq is not None:
            mono = x.mean(1)[: int(r * 0.9)]
            spec = np.abs(np.fft.rfft(mono * np.hanning(len(mono))))
            peak = np.fft.rfftfreq(len(mono), 1 / r)[int(np.argmax(spec))]
            if abs(peak - freq) > freq * 0.03:
                return f"strongest frequency {peak:.0f} Hz, the note is {freq:.0f} Hz"
        return None

    return check


def check_file(path: Path) -> Callable[[Outcome], str | None]:
    return lambda o: None if path.exists() and path.stat().st_size > 0 else "no output written"


# ----------------------------------------------------------------------------- cases


def midi_cases(tmp: Path, slow: bool, classifier: Path | None) -> list[Case]:
    d = tmp / "midi"
    d.mkdir(parents=True, exist_ok=True)
    cases = []
    expect = {  # prepare (one file), plot, transfer, render; "" = "either"
        "good": ("ok", "ok", "ok", "ok"),
        "tempo-0": ("ok", "ok", "ok", "ok"),
        "tempo-0-later": ("ok", "ok", "ok", "ok"),
        "tempo-huge": ("ok", "ok", "ok", "ok"),
        "tempo-tiny": ("ok", "ok", "ok", "ok"),
        "type-0": ("ok", "ok", "ok", "ok"),
        "drum-only": ("either", "error", "error", "ok"),
        "pitches-out-of-range": ("either", "error", "error", "ok"),
        "note-at-tick-2^27": ("either", "error", "error", "error"),
        "100k-notes": ("ok", "ok", "ok", "ok"),
        "zero-length-notes": ("either", "either", "either", "either"),
        "hanging-notes": ("either", "either", "either", "either"),
        "huge-delta-end": ("either", "either", "either", "either"),
        "tpq-32767": ("either", "either", "either", "either"),
        "type-2": ("either", "either", "either", "either"),
        "pitch-byte-over-127": ("either", "either", "either", "either"),
        "65535-tracks-declared": ("either", "either", "either", "either"),
        "no-time-signature": ("either", "either", "either", "either"),
        "3/4": ("either", "either", "either", "either"),
    }
    for name, data in midi_inputs(slow).items():
        safe = name.replace("/", "_").replace("^", "")
        src = d / f"{safe}.mid"
        src.write_bytes(data)
        e = expect.get(name)
        if e is None:  # damaged or unreadable: every command refuses, prepare reports the drop
            e = ("either", "error", "error", "error") if not name.startswith("truncated@") else ("either",) * 4
        out = tmp / "out" / safe
        out.mkdir(parents=True, exist_ok=True)
        cache = out / "c.h5"
        cases += [
            Case("midi", name, ["midi", "prepare", str(src), "-g", "g", "-o", str(cache)], e[0],
                 check=check_prepare_counts(cache, "g")),
            Case("midi", name, ["midi", "plot", str(src), "-o", str(out / "p.png")], e[1], check=check_file(out / "p.png")),
            # --from: these cases are about reading files; the pair's judge would refuse random notes as not jazz
            Case("midi", name, ["midi", "transfer", str(src), "--from", "jazz", "--to", "classical", "-o",
                                str(out / "t.mid")], e[2], check=_transfer_check(out / "t.mid")),
        ]
        rcheck = check_file(out / "r.wav")
        if name in ("good", "tempo-0", "tempo-0-later"):  # the toolkit's rule: tempo 0 is 120 bpm
            rcheck = check_render(out / "r.wav", seconds=16 * 2.0)
        cases.append(Case("midi", name, ["render", str(src), "-o", str(out / "r.wav"), "--rate", "22050"], e[3],
                          check=rcheck, timeout=300))
        if classifier is not None:
            cases.append(Case("midi", name, ["midi", "explain", str(src), "--classifier", str(classifier), "--genre", "jazz",
                                             "-o", str(out / "e.png")], e[1], check=check_file(out / "e.png")))
    return cases


def _transfer_check(path: Path):
    def check(o: Outcome) -> str | None:
        if not path.exists():
            return "no output"
        if "nan" in o.out.lower():
            return "content change nan"
        return None

    return check


def cache_cases(tmp: Path, good: Path, classifier: Path | None, train: bool = True) -> list[Case]:
    caches = cache_inputs(good, tmp / "caches")
    cases = []
    for name, path in caches.items():
        out = tmp / "cache-out" / path.stem
        out.mkdir(parents=True, exist_ok=True)
        e = "ok" if name == "good" else "error"
        e_inspect = "either" if name.startswith(("bit-flip", "corrupted-chunk")) else e
        if name == "empty-genres":  # a valid cache without genres: inspect and prepare work, readers refuse
            e_inspect = "ok"
        e_read = "either" if name.startswith("bit-flip@") else e
        runs = [
            (["midi", "inspect", str(path), "--files", "--dropped"], e_inspect, None),
            (["midi", "plot", str(path), "-g", "jazz", "--index", "0:4", "-o", str(out / "p.png")], e_read, None),
            (["midi", "plot", str(path), "-g", "jazz", "--song", "0", "-o", str(out / "s.png")], e_read, None),
            (["midi", "export", str(path), "-g", "jazz", "--index", "0:3", "-o", str(out / "x.mid")], e_read, None),
            (["midi", "export", str(path), "-g", "jazz", "--song", "0", "-o", str(out / "y.mid")], e_read, None),
            (["midi", "split", str(path), "-o", str(out / "split.json")], e if name == "empty-genres" else e_inspect, None),
            (["midi", "prepare", str(tmp / "midi" / "good.mid"), "-g", "pop", "-o", str(path), "--meter", "lenient"], e_inspect,
             _cache_intact(path) if name != "empty-genres" else None),
        ]
        if train:
            runs.append((["midi", "train", "--a", f"{path}:jazz", "--b", f"{path}:classical", "--out", str(out / "run"),
                          "--epochs", "1", "--batch-size", "4", "--threads", "1", "--device", "cpu"], e_read, None))
            runs.append((["midi", "train-classifier", "--genre", f"jazz={path}", "--genre", f"classical={path}",
                          "--out", str(out / "clf"), "--epochs", "1", "--device", "cpu"], e_read, None))
        if classifier is not None:
            runs.append((["midi", "explain", str(path), "--cache-genre", "jazz", "--classifier", str(classifier), "--genre",
                          "jazz", "-o", str(out / "e.png")], e_read, None))
            runs.append((["midi", "evaluate", "--classifier", str(classifier), "--a", str(path), "--b", str(path),
                          "--all-phrases"], e_read, None))
        for argv, expect, check in runs:
            cases.append(Case("cache", name, argv, expect, check=check, timeout=300))
    return cases


def _cache_intact(path: Path):
    def check(o: Outcome) -> str | None:
        from midigenre.dataset import PhraseCache

        with PhraseCache(path) as c:
            if not {"jazz", "classical", "pop"} <= set(c.genres):
                return f"genres now {c.genres}"
        return None

    return check


def audio_cases(tmp: Path, slow: bool) -> list[Case]:
    files = audio_inputs(tmp / "audio", slow)
    ref = tmp / "audio-ref"
    ref.mkdir(exist_ok=True)
    for k in range(3):
        write_wav(ref / f"r{k}.wav", tone_mix(4.0, 22050, 1, seed=10 + k), 22050)
    cases = []
    expect = {"good": "ok", "8kHz-mono": "ok", "192kHz-6ch": "ok", "float-peak-7.6": "ok", "20-minutes": "ok",
              "truncated": "either"}  # libsndfile reads what a truncated WAV still holds
    for name, path in files.items():
        e = expect.get(name, "error")
        out = tmp / "audio-out" / name
        out.mkdir(parents=True, exist_ok=True)
        steps = "0" if name == "20-minutes" else "3"
        cases.append(Case("audio", name, ["audio", "transform", str(path), "--to", "jazz", "--steps", steps, "-o",
                                          str(out / "t.wav")], e, check=_transform_check(path, out / "t.wav"),
                          timeout=900 if name == "20-minutes" else 180))
        test_dir = out / "fadtest"
        test_dir.mkdir(exist_ok=True)
        shutil.copyfile(path, test_dir / path.name)
        fe = "ok" if expect.get(name) == "ok" else "either" if name in expect else "error"
        cases.append(Case("audio", name, ["audio", "fad", "--reference", str(ref), "--test", str(test_dir),
                                          "--embedding", str(REPO / "data" / "models" / "audio-rendered")],
                          fe if name != "20-minutes" else "either", timeout=900 if name == "20-minutes" else 180))
    return cases


def _transform_check(src: Path, dst: Path):
    def check(o: Outcome) -> str | None:
        import soundfile as sf

        if not dst.exists():
            return "no output"
        a, ra = sf.read(str(src), always_2d=True)
        b, rb = sf.read(str(dst), always_2d=True)
        if ra != rb or a.shape != b.shape:
            return f"shape/rate changed: {a.shape}@{ra} -> {b.shape}@{rb}"
        peak = float(np.max(np.abs(a)))
        if peak > 1.0 and "peaks at" not in o.out + o.err:
            return f"the input peaks at {peak:.1f} and the report does not say so"
        level = min(1.0, 1.0 / float(np.max(np.abs(b)))) if peak > 1.0 and np.max(np.abs(b)) <= 1.0 else 1.0
        change = b - a * level  # a file scaled down to fit its format is compared at its own level
        snr = 10 * np.log10(np.sum((a * level) ** 2) / max(np.sum(change ** 2), 1e-30))
        if snr < 20.0:
            return f"the song was damaged: SNR {snr:.1f} dB"
        return None

    return check


# ----------------------------------------------------------------------------- scenarios


def scenario_cases(tmp: Path, slow: bool) -> list[Case]:
    """Folders of many files, kill -9 + --resume, two prepare runs at once."""
    cases = []
    n_good, n_bad = (350, 150) if slow else (20, 12)
    mix = tmp / "mixed"
    mix.mkdir(parents=True, exist_ok=True)
    bad = [v for k, v in midi_inputs(False).items() if k not in ("good",)]
    for i in range(n_good):
        (mix / f"good{i:04d}.mid").write_bytes(song(8, seed=1000 + i))
    for i in range(n_bad):
        (mix / f"bad{i:04d}.mid").write_bytes(bad[i % len(bad)] + (bytes([i % 7]) if i >= len(bad) else b""))
    c = tmp / "mixed.h5"
    cases.append(Case("scenario", f"folder of {n_good} good + {n_bad} bad files", ["midi", "prepare", str(mix), "-g", "g",
                                                                                 "-o", str(c), "-j", "2"],
                      "ok", check=check_prepare_counts(c, "g"), timeout=600))
    return cases


def kill_resume_trials(tmp: Path, trials: int = 10, n_files: int = 3000) -> list[tuple[str, str, str]]:
    """kill -9 a prepare at different moments, then --resume: the cache must be the uninterrupted one, no litter."""
    src = tmp / "killsrc"
    src.mkdir(parents=True, exist_ok=True)
    for i in range(n_files):
        (src / f"s{i:05d}.mid").write_bytes(song(64, seed=5000 + i))
    ref = tmp / "kill-ref.h5"
    r = run_subprocess(["midi", "prepare", str(src), "-g", "g", "-o", str(ref)], 900)
    ref_phrases = _phrase_digest(ref)
    whole = r.seconds  # kills spread over the whole run, the final rewrite (temporary .tmp.h5 files) included
    rows = []
    code = "import sys; sys.argv[0] = 'genre'; from cli.main import main; main()"
    for k in range(trials):
        out = tmp / f"kill{k}" / "c.h5"
        out.parent.mkdir(parents=True, exist_ok=True)
        # a cache with another genre in it first, so that the final rewrite has work to do
        shutil.copyfile(ref, out)
        env = dict(os.environ, PYTHONPATH=str(REPO), OMP_NUM_THREADS="1")
        p = subprocess.Popen([sys.executable, "-c", code, "midi", "prepare", str(src), "-g", "h", "-o", str(out)],
                             env=env, cwd=str(REPO), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        at = whole * (0.25 + 0.8 * k / max(1, trials - 1))
        time.sleep(at)
        p.send_signal(signal.SIGKILL)
        p.wait()
        litter_before = sorted(x.name for x in out.parent.iterdir() if x.name.endswith(".tmp.h5"))
        r = run_subprocess(["midi", "prepare", str(src), "-g", "h", "-o", str(out), "--resume"], 900)
        litter = sorted(x.name for x in out.parent.iterdir() if x.name.startswith("."))
        problem = []
        if r.rc != 0:
            problem.append(f"resume exit {r.rc}: {first_line(r)}")
        else:
            if _phrase_digest(out, "h") != ref_phrases:
                problem.append("phrases differ from an uninterrupted run")
            if _phrase_digest(out, "g") != ref_phrases:
                problem.append("the other genre changed")
        if litter:
            problem.append(f"litter: {litter}")
        rows.append((f"kill -9 after {at:.1f} s of {whole:.1f} (litter then: {len(litter_before)})",
                     "midi prepare --resume", "; ".join(problem) or "ok"))
    return rows


def _phrase_digest(path: Path, genre: str = "g") -> str:
    import hashlib

    import h5py

    with h5py.File(path, "r") as h5:
        g = h5[f"genres/{genre}"]
        h = hashlib.sha1(g["phrases"][:].tobytes())
        h.update(g["phrase_index"][:].tobytes())
        h.update("\n".join(sorted(g["files/name"].asstr()[:])).encode())
    return h.hexdigest()


def bitflip_sweep(tmp: Path, good: Path, step: int = 1499) -> list[tuple[str, str, str]]:
    """Flip one bit every ``step`` bytes of a good cache (one copy per position) and give each copy
    to prepare (another genre), export and inspect, in this process: every run must end in a
    sensible result or a one-line error. One row per command with the count."""
    data = good.read_bytes()
    song_file = tmp / "sweep.mid"
    song_file.write_bytes(song(16, seed=1))
    counts: dict[str, list] = {}
    for pos in range(0, len(data), step):
        p = tmp / f"sweep{pos}.h5"
        shutil.copyfile(good, p)
        _flip_bit(p, pos)
        for argv in (["midi", "prepare", str(song_file), "-g", "pop", "-o", str(p), "--meter", "lenient"],
                     ["midi", "export", str(p), "-g", "jazz", "--song", "1", "-o", str(tmp / "sweep.mid.out.mid")],
                     ["midi", "inspect", str(p), "--files", "--dropped"]):
            o = run_inprocess(argv)
            v = verdict(Case("scenario", "sweep", argv, "either"), o)
            counts.setdefault(argv[1], []).append(v if v != "ok" else None)
        p.unlink()
    rows = []
    for cmd, vs in counts.items():
        bad = [v for v in vs if v]
        rows.append((f"bit flip every {step} bytes ({len(vs)} copies)", f"midi {cmd}",
                     "ok" if not bad else f"{len(bad)} of {len(vs)} not ok: {sorted(set(bad))}"))
    return rows


def concurrent_prepare_trials(tmp: Path, trials: int = 5) -> list[tuple[str, str, str]]:
    """Two prepare runs writing different genres into one cache at once: both genres must survive."""
    rows = []
    code = "import sys; sys.argv[0] = 'genre'; from cli.main import main; main()"
    env = dict(os.environ, PYTHONPATH=str(REPO), OMP_NUM_THREADS="1")
    srcs = []
    for g in ("a", "b"):
        d = tmp / f"conc-{g}"
        d.mkdir(parents=True, exist_ok=True)
        for i in range(60):
            (d / f"{g}{i:03d}.mid").write_bytes(song(8, seed=hash(g) % 1000 + i))
        srcs.append(d)
    for k in range(trials):
        out = tmp / f"conc{k}" / "c.h5"
        out.parent.mkdir(parents=True, exist_ok=True)
        ps = [subprocess.Popen([sys.executable, "-c", code, "midi", "prepare", str(s), "-g", g, "-o", str(out)],
                               env=env, cwd=str(REPO), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
              for s, g in zip(srcs, ("a", "b"))]
        res = [(p.wait(timeout=600), p.stderr.read().decode(errors="replace")) for p in ps]
        from midigenre.dataset import PhraseCache

        try:
            with PhraseCache(out) as c:
                genres = c.genres
        except Exception as err:  # noqa: BLE001
            genres = [f"unreadable: {err}"]
        ok_runs = [rc == 0 for rc, _ in res]
        lost = [g for g, ok in zip(("a", "b"), ok_runs) if ok and g not in genres]
        refused = [g for g, (rc, err) in zip(("a", "b"), res) if rc != 0]
        bad_refusal = [err for rc, err in res if rc != 0 and len([x for x in err.splitlines() if x.startswith("Error")]) != 1]
        if lost:
            v = f"lost genre {lost} (both runs exit 0)"
        elif bad_refusal:
            v = "refusal without a one-line error"
        else:
            v = "ok" + (f" (refused: {refused})" if refused else "")
        rows.append((f"two prepares at once, trial {k + 1}", "midi prepare ×2", v))
    return rows


# ----------------------------------------------------------------------------- main


def build_classifier(tmp: Path, cache: Path) -> Path | None:
    out = tmp / "clf"
    r = run_subprocess(["midi", "train-classifier", "--genre", f"jazz={cache}", "--genre", f"classical={cache}",
                        "--out", str(out), "--epochs", "1", "--device", "cpu"], 300)
    if r.rc != 0:
        print(f"(no classifier for explain/evaluate: {first_line(r)})", file=sys.stderr)
        return None
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="Leave out the slow cases.")
    ap.add_argument("--only", choices=["midi", "cache", "audio", "scenario"], action="append")
    ap.add_argument("--markdown", action="store_true")
    ap.add_argument("--keep", action="store_true", help="Keep the temporary folder.")
    ap.add_argument("--json", help="Write the rows as JSON here.")
    args = ap.parse_args(argv)
    slow = not args.quick
    groups = set(args.only or ["midi", "cache", "audio", "scenario"])
    sys.path.insert(0, str(REPO))
    tmp = Path(tempfile.mkdtemp(prefix="genre-fuzz-"))
    rows = []

    def emit(group, case, cmd, rc, line, v):
        rows.append({"group": group, "case": case, "command": cmd, "exit": rc, "first_line": line, "verdict": v})
        print(f"{group:<8} {case:<28} {cmd:<22} {str(rc):>4}  {line[:90]:<90}  {v}", flush=True)

    try:
        good_cache = make_good_cache(tmp / "goodsrc", tmp / "good.h5")
        classifier = build_classifier(tmp, good_cache) if groups & {"midi", "cache"} else None
        cases: list[Case] = []
        if "midi" in groups or "cache" in groups:
            cases += midi_cases(tmp, slow, classifier) if "midi" in groups else []
            if "cache" in groups:
                (tmp / "midi").mkdir(exist_ok=True)
                (tmp / "midi" / "good.mid").write_bytes(song(16, seed=1))
                cases += cache_cases(tmp, good_cache, classifier)
        if "audio" in groups:
            cases += audio_cases(tmp, slow)
        if "scenario" in groups:
            cases += scenario_cases(tmp, slow)
        for case in cases:
            o = run_subprocess(case.argv, case.timeout)
            cmd = " ".join(a for a in case.argv[:2] if not a.startswith("/"))
            v = verdict(case, o)
            if o.max_rss_mb > 1500 or "20-min" in case.name:
                v += f" (peak RSS {o.max_rss_mb:.0f} MB)"
            emit(case.group, case.name, cmd, o.rc if not o.timed_out else "-", first_line(o), v)
        if "scenario" in groups:
            for case_name, cmd, v in bitflip_sweep(tmp, good_cache, 1499 if slow else 9973):
                emit("scenario", case_name, cmd, "", "", v)
            for case_name, cmd, v in concurrent_prepare_trials(tmp, 5 if slow else 2):
                emit("scenario", case_name, cmd, "", "", v)
            if slow:
                for case_name, cmd, v in kill_resume_trials(tmp):
                    emit("scenario", case_name, cmd, "", "", v)
    finally:
        if args.keep:
            print(f"inputs and outputs kept in {tmp}", file=sys.stderr)
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    bad = [r for r in rows if not r["verdict"].startswith("ok")]
    print(f"\n{len(rows)} runs, {len(rows) - len(bad)} ok, {len(bad)} not ok")
    if args.markdown:
        print("\n| case | command | exit | first line | verdict |\n|---|---|---|---|---|")
        for r in rows:
            print(f"| {r['group']}: {r['case']} | {r['command']} | {r['exit']} | {r['first_line'][:80].replace('|', '/')} | {r['verdict']} |")
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1))
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
