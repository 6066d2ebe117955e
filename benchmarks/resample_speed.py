"""Which resampler for 44.1 kHz -> 16 kHz? Speed and quality of soxr, julius, scipy and linear interpolation.

Every clip the classifier sees is resampled to 16 kHz (``audiogenre.audio.resample``), and the
transformation resamples twice more per song, so the resampler is measured first: time on a
long stereo signal, and what it does to tones where the answer is known.

Resamplers (all at 44,100 -> 16,000 Hz, i.e. by 160/441)
    soxr HQ      ``soxr.resample(x, 44100, 16000, quality="HQ")``: what the package uses
    soxr VHQ     the same with ``quality="VHQ"``
    julius       ``julius.resample_frac(torch.from_numpy(x.T), 44100, 16000)`` (windowed sinc in
                 torch, the defaults: 24 zero crossings, roll-off 0.99), numpy <-> torch included
    scipy        ``scipy.signal.resample_poly(x, 160, 441, axis=0)`` (polyphase FIR, Kaiser window)
    linear       ``np.interp`` per channel at the output instants: no anti-alias filter at all,
                 the naive baseline (not band-limited)

Speed: ``--seconds`` (60) of float32 stereo (``--channels``) music-like signal (tones + noise),
best of ``--repeat`` (5) runs, one thread (torch and OpenMP). "vs slowest" is the slowest
*band-limited* resampler's time over this one's.

Quality, each on a 5 s mono tone of amplitude 0.5 at 44.1 kHz, ignoring 0.5 s at both ends
(filter start-up):
    alias 12 kHz / 9 kHz   a tone above the 8 kHz Nyquist frequency of the output cannot exist
                 at 16 kHz; whatever energy is left (it folds down to 4 kHz / 7 kHz) is aliasing.
                 10·log10(output energy / input energy per sample), in dB; lower is better
                 (16-bit audio's quantisation floor is about -98 dB)
    err 1 kHz / 7 kHz      a tone inside the passband must come out as the same tone at the same
                 instants: 20·log10(rms(output - ideal 16 kHz tone) / rms(ideal)), in dB; lower is
                 better (it counts gain, phase/delay and distortion errors together)

PASS when soxr HQ is the fastest of the band-limited resamplers and its 12 kHz alias is below
-98 dB (under the 16-bit floor), which is why the package resamples with soxr HQ.

Run from the repo root:  OMP_NUM_THREADS=1 python benchmarks/resample_speed.py [--seconds 60] [--channels 2]
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np

SR_IN, SR_OUT = 44_100, 16_000
ALIAS_TARGET_DB = -98.0  # 16-bit quantisation floor
EDGE_S = 0.5


def rs_soxr(quality: str):
    import soxr

    return lambda x: soxr.resample(x, SR_IN, SR_OUT, quality=quality)


def rs_julius(x: np.ndarray) -> np.ndarray:
    import julius
    import torch

    t = torch.from_numpy(np.ascontiguousarray(x.T if x.ndim == 2 else x))
    y = julius.resample_frac(t, SR_IN, SR_OUT).numpy()
    return y.T if x.ndim == 2 else y


def rs_scipy(x: np.ndarray) -> np.ndarray:
    from scipy.signal import resample_poly

    return resample_poly(x, 160, 441, axis=0).astype(np.float32)


def rs_linear(x: np.ndarray) -> np.ndarray:
    n_out = int(np.floor(x.shape[0] * SR_OUT / SR_IN))
    pos = np.arange(n_out) * (SR_IN / SR_OUT)
    src = np.arange(x.shape[0])
    if x.ndim == 1:
        return np.interp(pos, src, x).astype(np.float32)
    return np.stack([np.interp(pos, src, x[:, c]) for c in range(x.shape[1])], axis=1).astype(np.float32)


METHODS = [  # name, function, band-limited
    ("soxr HQ", rs_soxr("HQ"), True),
    ("soxr VHQ", rs_soxr("VHQ"), True),
    ("julius", rs_julius, True),
    ("scipy resample_poly", rs_scipy, True),
    ("linear (np.interp)", rs_linear, False),
]


def music_like(seconds: float, channels: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    n = int(round(seconds * SR_IN))
    t = np.arange(n) / SR_IN
    x = np.zeros((n, channels))
    for c in range(channels):
        x[:, c] = 0.05 * rng.standard_normal(n)
        for f in rng.uniform(60, 15_000, 8):
            x[:, c] += 0.08 * np.sin(2 * np.pi * f * t + rng.uniform(0, 2 * np.pi))
    return (0.9 * x / np.max(np.abs(x))).astype(np.float32)


def tone(freq: float, rate: int, seconds: float = 5.0) -> np.ndarray:
    return (0.5 * np.sin(2 * np.pi * freq * np.arange(int(round(seconds * rate))) / rate)).astype(np.float32)


def middle(y: np.ndarray, rate: int) -> np.ndarray:
    e = int(EDGE_S * rate)
    return np.asarray(y, np.float64)[e:len(y) - e]


def alias_db(fn, freq: float) -> float:
    x = tone(freq, SR_IN)
    y = fn(x)
    return 10 * np.log10(max(np.mean(middle(y, SR_OUT) ** 2), 1e-30) / np.mean(middle(x, SR_IN) ** 2))


def passband_err_db(fn, freq: float) -> float:
    y = fn(tone(freq, SR_IN))
    ideal = tone(freq, SR_OUT)
    n = min(len(y), len(ideal))
    err = middle(y[:n], SR_OUT) - middle(ideal[:n], SR_OUT)
    return 20 * np.log10(max(np.sqrt(np.mean(err ** 2)), 1e-30) / np.sqrt(np.mean(middle(ideal[:n], SR_OUT) ** 2)))


def best_of(repeat: int, fn, x):
    times, out = [], None
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn(x)
        times.append(time.perf_counter() - t0)
    return min(times), out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=float, default=60.0, help="length of the timed signal (60)")
    ap.add_argument("--channels", type=int, default=2, help="channels of the timed signal (2)")
    ap.add_argument("--repeat", type=int, default=5, help="runs per resampler; the best is reported (5)")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()

    import scipy
    import soxr
    import torch

    torch.set_num_threads(1)
    x = music_like(args.seconds, args.channels, args.seed)
    print(f"{args.seconds:g} s of float32 audio, {args.channels} channel(s), {SR_IN} -> {SR_OUT} Hz; best of "
          f"{args.repeat}; soxr {soxr.__version__}, scipy {scipy.__version__}, torch {torch.__version__} "
          f"({torch.get_num_threads()} thread), OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset')}\n")

    rows = []
    for name, fn, bl in METHODS:
        fn(x[: SR_IN])  # warm-up (imports, julius kernel build, allocations)
        t, y = best_of(args.repeat, fn, x)
        expect = int(np.floor(x.shape[0] * SR_OUT / SR_IN))
        if abs(y.shape[0] - expect) > 1 or (y.ndim == 2 and y.shape[1] != args.channels):
            raise SystemExit(f"{name}: unexpected output shape {y.shape}")
        rows.append((name, bl, t, alias_db(fn, 12_000), alias_db(fn, 9_000), passband_err_db(fn, 1_000),
                     passband_err_db(fn, 7_000)))

    slowest = max(r[2] for r in rows if r[1])
    print(f"{'resampler':<22}{'seconds':>9}{'vs slowest':>12}{'x realtime':>12}{'alias 12k dB':>14}{'alias 9k dB':>13}"
          f"{'err 1k dB':>11}{'err 7k dB':>11}")
    for name, bl, t, a12, a9, e1, e7 in rows:
        print(f"{name:<22}{t:>9.3f}{slowest / t:>11.1f}x{args.seconds / t:>11.0f}x{a12:>14.1f}{a9:>13.1f}{e1:>11.1f}{e7:>11.1f}")
    print("(vs slowest: time of the slowest band-limited resampler / this one's; alias: energy left of a 12 kHz or 9 kHz "
          "tone, which cannot exist at 16 kHz; err: error against the ideal 1 kHz or 7 kHz tone at 16 kHz; all dB "
          "relative to the tone, lower is better)")

    hq = rows[0]
    others = [r for r in rows[1:] if r[1]]
    fastest = all(hq[2] <= r[2] for r in rows if r[1])
    ok = fastest and hq[3] < ALIAS_TARGET_DB
    for r in others:
        print(f"soxr HQ vs {r[0]}: {r[2] / hq[2]:.1f}x faster, 12 kHz alias {hq[3]:.0f} dB vs {r[3]:.0f} dB")
    print(f"\n{'PASS' if ok else 'FAIL'}: soxr HQ {hq[2]:.3f} s is {'' if fastest else 'not '}the fastest band-limited "
          f"resampler ({slowest / hq[2]:.1f}x the slowest) and leaves {hq[3]:.0f} dB of a 12 kHz tone "
          f"(target < {ALIAS_TARGET_DB:.0f} dB)")


if __name__ == "__main__":
    main()
