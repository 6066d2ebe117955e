"""Gradient-guided transformation of a whole song toward a target genre (Armeniakos & Bistas, Algorithm 1).

For each window x (16 kHz mono, ``window`` seconds, neighbours overlapping by ``overlap``)
gradient steps on x̂ minimise

    L(x̂) = −log p_target(x̂) + λ‖x̂ − x‖²₂       (a real sum of squares over the samples)

and after every step x̂ is clipped *in place* to [-1, 1]. A window stops when its target
probability reaches ``target_prob``, when L < ε, or after ``steps`` steps. The seed's code got
three of these wrong (λ was 1e-9 × a mean, so zero in effect; the clamp was not in place, so
it never clipped; the encoder ran in train mode).

Windows are optimised one after another on one 16 kHz copy x̂ of the whole song: each
starts from x̂ as its neighbours left it and is written back whole, so it is scored on what
the song will contain; windows that a neighbour pushed back below ``target_prob`` are
revisited (``passes``). The song itself is never resampled for the output: the perturbation
δ = x̂ − x is upsampled (band-limited) to the song's own rate and added to every channel of
the original. The output keeps the song's rate, channels and full bandwidth; only the part
the classifier hears (below ``max_hz``, 7 kHz by default) changes. The report's "after"
numbers are measured again on the written file, not on the optimiser's copy.

Three guards keep the song from being damaged:

* **Keep the best.** Each window keeps the step with the highest p(target) it reached, not
  the last one; after each pass the whole song's mean p(target) is measured and the best
  pass is kept. A result that the classifier scores below the input is never returned:
  the song is then left unchanged (and :func:`transform_file` writes nothing).
* **An SNR floor** (``min_snr``, 25 dB by default): after every step the change in a window
  is scaled back onto the floor if it grew past it (a projection, so the optimiser keeps
  working inside the budget), and the whole song's change is scaled back if the overlaps
  added up past it. The report says when the floor held the change back.
* **No silent clipping.** A float file that peaks above full scale is heard by the
  classifier normalised, and the output is not clipped: it is written as float (WAV) or,
  in a format that cannot hold it, scaled down as a whole; the report says which.
"""

from __future__ import annotations

import dataclasses
import math
import os
from pathlib import Path

import numpy as np

from audiogenre.audio import SAMPLE_RATE, MIN_SECONDS, Audio, energy, load_audio, snr_db, to_mono, write_audio
from shared.errors import GenreError

OPTIMIZERS = ("adam", "sgd")

#: Window settings of ``genre audio transform`` when the classifier does not say: windows of
#: the classifier's clip length (DEFAULT_WINDOW seconds if unknown), neighbours sharing
#: DEFAULT_OVERLAP seconds but at most MAX_OVERLAP_FRACTION of a window. See default_windows().
DEFAULT_WINDOW = 10.0
DEFAULT_OVERLAP = 1.0
MAX_OVERLAP_FRACTION = 0.25
#: The least signal-to-noise ratio (dB) of the change that a transformation may cost a song.
DEFAULT_MIN_SNR = 25.0
#: Below this p(target) a genre is out of reach: a window that starts and stays under it is said
#: at once, and a song that does is not written (white noise → pop goes from 4e-6 to 2e-5).
OUT_OF_REACH = 0.01


def default_windows(clip_seconds: float | None = None, window: float | None = None,
                    overlap: float | None = None) -> tuple[float, float]:
    """``(window, overlap)`` in seconds: the given values, else the defaults for a classifier
    whose clip length is ``clip_seconds`` (None: unknown)."""
    window = float(window or clip_seconds or DEFAULT_WINDOW)
    overlap = min(DEFAULT_OVERLAP, window * MAX_OVERLAP_FRACTION) if overlap is None else float(overlap)
    return window, overlap


@dataclasses.dataclass
class TransformConfig:
    """Settings of the transformation; every one is a CLI option."""

    lam: float = 1.0           # λ: weight of ‖x̂ − x‖²₂ (sum over the window's samples)
    lr: float = 2e-4           # step size (Adam: per-sample change per step)
    steps: int = 60            # step budget per window and pass
    target_prob: float = 0.9   # stop a window once p_target reaches this
    epsilon: float = 0.0       # stop a window once the loss is below ε (0: off)
    optimizer: str = "adam"
    window: float = DEFAULT_WINDOW    # seconds per window (the classifier's clip length)
    overlap: float = DEFAULT_OVERLAP  # seconds shared by neighbouring windows
    passes: int = 3            # rounds over the windows that are not yet at target_prob in the whole signal
    max_hz: float = 7000.0     # the change is kept below this (Hz): it must survive resampling to the song's rate
                               # and back, whose filters roll off toward 8 kHz (0: no limit)
    bf16: bool = False         # bfloat16 autocast for the classifier (CPU: ~2x faster steps, slightly noisier gradients)
    min_snr: float | None = DEFAULT_MIN_SNR  # dB: the change never costs the song more (None: no floor)

    def check(self) -> None:
        if self.optimizer not in OPTIMIZERS:
            raise GenreError(f"unknown optimizer {self.optimizer!r}: use {' or '.join(OPTIMIZERS)}")
        if self.lam < 0 or self.lr <= 0 or self.steps < 0:
            raise GenreError("--lambda must be ≥ 0, --lr > 0 and --steps ≥ 0")
        if not 0 < self.target_prob <= 1:
            raise GenreError("--target-prob must be in (0, 1]")
        if self.window < MIN_SECONDS or not 0 <= self.overlap < self.window / 2:
            raise GenreError(f"--window must be ≥ {MIN_SECONDS} s and --overlap between 0 and half the window")
        if self.min_snr is not None and not (math.isfinite(self.min_snr) and self.min_snr >= 0):
            raise GenreError(f"--min-snr must be a number of dB ≥ 0, not {self.min_snr}")

    def energy_ratio(self) -> float | None:
        """Largest allowed Σδ² / Σx² (None: no floor)."""
        return None if self.min_snr is None else 10.0 ** (-self.min_snr / 10.0)


def windows(n: int, rate: int, window: float, overlap: float) -> list[tuple[int, int]]:
    """``(start, end)`` sample ranges of ``window`` seconds covering ``n`` samples, spread evenly
    so that neighbours overlap by at least ``overlap`` seconds; the first starts at 0, the last
    ends at ``n``. A song shorter than one window is one window (zero-padded to the
    classifier's clip length when it is scored, as in training).
    """
    w = int(round(window * rate))
    if n <= w:
        return [(0, n)]
    hop = w - int(round(overlap * rate))
    k = int(np.ceil((n - w) / hop)) + 1
    starts = np.round(np.linspace(0, n - w, k)).astype(int)
    return [(int(s), int(s) + w) for s in starts]


@dataclasses.dataclass
class WindowReport:
    start: float
    end: float
    steps: int
    p_before: float
    p_after: float
    genre_before: str
    genre_after: str
    snr_db: float
    passes: list[int] = dataclasses.field(default_factory=list)  # the steps of each pass that worked on it


@dataclasses.dataclass
class TransformReport:
    target: str
    windows: list[WindowReport]
    p_before: float            # mean target probability over windows, original song
    p_after: float             # same, measured on the written output
    genre_before: str          # genre with the highest mean probability
    genre_after: str
    snr_db: float              # whole output vs original, all channels, song rate
    success: float             # fraction of windows whose top genre is the target after
    rate: int
    channels: int
    seconds: float
    min_snr_db: float | None = None  # the SNR floor the change was held to
    notes: list[str] = dataclasses.field(default_factory=list)  # what the guards did, in words
    output_scale: float = 1.0  # the written file is scale × original + change (< 1 where it was scaled to fit)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def _probabilities(model, waves: list[np.ndarray], device: str, length: int = 0) -> np.ndarray:
    """Genre probabilities of each wave, zero-padded to ``length`` samples when shorter."""
    import torch

    out = []
    with torch.no_grad():
        for w in waves:
            w = np.pad(w, (0, max(0, length - len(w)))).astype(np.float32)
            out.append(torch.softmax(model(torch.from_numpy(w)[None].to(device)).float(), dim=-1)[0].cpu().numpy())
    return np.stack(out)


def optimise_window(model, x: np.ndarray, target: int, config: TransformConfig, *, device: str = "cpu",
                    on_step=None, start: np.ndarray | None = None) -> tuple[np.ndarray, int]:
    """Algorithm 1 on one 16 kHz mono window x; returns the best x̂ it reached and the number of
    steps taken.

    x̂ starts at ``start`` (default x: the window as it is now in the song, with what earlier
    windows changed) and the proximity term is always to the original x. "Best" is the highest
    p(target) among the states it scored, every one of them within the SNR floor.
    """
    import torch

    x0 = torch.from_numpy(np.ascontiguousarray(x, np.float32)).to(device)
    init = x0 if start is None else torch.from_numpy(np.ascontiguousarray(start, np.float32)).to(device)
    xh = init.clone().requires_grad_(True)
    opt = (torch.optim.Adam([xh], lr=config.lr) if config.optimizer == "adam"
           else torch.optim.SGD([xh], lr=config.lr, momentum=0.9))
    # only the waveform needs gradients: none are computed for any model parameter
    needs = [p for p in model.parameters() if p.requires_grad]
    for p in needs:
        p.requires_grad_(False)
    try:
        return _steps(model, x0, xh, opt, target, config, device, on_step)
    finally:
        for p in needs:
            p.requires_grad_(True)


def _steps(model, x0, xh, opt, target, config, device, on_step):
    import contextlib

    import torch
    from torch.nn import functional as F

    length = int(round(config.window * SAMPLE_RATE))  # short songs: scored zero-padded, as in training
    dev = torch.device(device).type
    mask = None
    if config.max_hz and config.max_hz < SAMPLE_RATE / 2:
        f = torch.fft.rfftfreq(len(x0), 1.0 / SAMPLE_RATE).to(x0.device)
        edge = 500.0  # raised-cosine roll-off over the last 500 Hz below max_hz
        mask = torch.clamp((config.max_hz - f) / edge, 0.0, 1.0)
        mask = 0.5 - 0.5 * torch.cos(torch.pi * mask)
    ratio = config.energy_ratio()
    budget = None if ratio is None else float(torch.sum(x0.double() ** 2)) * ratio

    def hold_floor() -> None:  # scale the change back onto the SNR floor (a projection)
        if budget is None:
            return
        d = xh - x0
        e = float(torch.sum(d.double() ** 2))
        if e > budget:
            xh.copy_(x0 + d * math.sqrt(budget / e))

    with torch.no_grad():
        hold_floor()  # the start (what the neighbours left) may already be past it
    autocast = torch.autocast(dev, dtype=torch.bfloat16) if config.bf16 else contextlib.nullcontext()
    taken = 0
    best_p, best = -1.0, None
    for step in range(config.steps + 1):
        with autocast:
            inp = xh if len(xh) >= length else torch.nn.functional.pad(xh, (0, length - len(xh)))
            logits = model(inp[None])
        logp = F.log_softmax(logits.float(), dim=-1)[0, target]
        p = float(logp.detach().exp())
        if on_step:
            on_step(p)
        if p > best_p:
            best_p, best = p, xh.detach().clone()
        loss = -logp + config.lam * torch.sum((xh - x0) ** 2)
        if step == config.steps or p >= config.target_prob or float(loss.detach()) < config.epsilon:
            break
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        with torch.no_grad():
            if mask is not None:  # keep the change x̂ − x inside the band that survives resampling
                xh.copy_(x0 + torch.fft.irfft(torch.fft.rfft(xh - x0) * mask, n=len(x0)))
            hold_floor()
            xh.clamp_(-1.0, 1.0)  # moves x̂ toward x (x is inside [-1, 1]): the floor still holds
        taken += 1
    return best.cpu().numpy(), taken


def _gain(samples: np.ndarray) -> float:
    """Level at which the classifier hears a song: 1, or 1/peak for a float file above full scale."""
    peak = _peak(samples)
    return 1.0 / peak if peak > 1.0 else 1.0


def _peak(samples: np.ndarray) -> float:
    """Largest |sample| (no copy of the song)."""
    return max(float(samples.max()), -float(samples.min())) if samples.size else 0.0


_BLOCK = 1 << 20  # frames per block when a whole song is walked through (bounded temporaries)


def _hear(samples: np.ndarray, rate: int, gain: float) -> np.ndarray:
    """What the classifier hears: mono, 16 kHz, at ``gain``, inside [-1, 1]. Made a block at a
    time (the same samples as one resampling of the whole mono song)."""
    import soxr

    if rate == SAMPLE_RATE:
        mono = to_mono(samples).copy()
    else:
        stream = soxr.ResampleStream(rate, SAMPLE_RATE, 1, dtype="float32", quality="HQ")
        n = samples.shape[0]
        parts = [stream.resample_chunk(to_mono(samples[i:i + _BLOCK]), last=i + _BLOCK >= n)
                 for i in range(0, max(n, 1), _BLOCK)]
        mono = np.ascontiguousarray(np.concatenate(parts), dtype=np.float32)
    if gain != 1.0:
        mono *= np.float32(gain)
    return np.clip(mono, -1.0, 1.0, out=mono)


def _energy_diff(a: np.ndarray, b: np.ndarray) -> float:
    """Σ(a − b)² in float64, a block at a time."""
    return sum(energy(a[i:i + _BLOCK] - b[i:i + _BLOCK]) for i in range(0, a.shape[0], _BLOCK))


def _snr(signal: np.ndarray, out: np.ndarray) -> float:
    """:func:`snr_db` of the change ``out − signal``, without a copy of the song."""
    s, n = energy(signal), _energy_diff(out, signal)
    return float("inf") if n == 0 else float("-inf") if s == 0 else float(10.0 * np.log10(s / n))


def _apply(audio: Audio, delta16: np.ndarray, gain: float) -> np.ndarray:
    """The song plus the 16 kHz change, upsampled to the song's rate, on every channel, at the
    song's own level. Clipped to [-1, 1] only when the song itself is inside it. Built a block
    at a time: the only song-sized array made is the output."""
    import soxr

    samples, m = audio.samples, audio.samples.shape[0]
    clip = _peak(samples) <= 1.0
    out = np.empty(samples.shape, np.float32)
    stream = None if audio.rate == SAMPLE_RATE else soxr.ResampleStream(SAMPLE_RATE, audio.rate, 1, dtype="float32",
                                                                         quality="HQ")
    step = 1 << 18
    pos = 0
    d = np.asarray(delta16, dtype=np.float32)
    for i in range(0, max(len(d), 1), step):
        chunk = d[i:i + step]
        up = chunk if stream is None else stream.resample_chunk(chunk, last=i + step >= len(d))
        up = up[: max(0, m - pos)]
        if gain != 1.0:
            up = up / np.float32(gain)
        block = np.add(samples[pos:pos + len(up)], up[:, None], out=out[pos:pos + len(up)])
        if clip:
            np.clip(block, -1.0, 1.0, out=block)
        pos += len(up)
    out[pos:] = samples[pos:]  # a change shorter than the song (by a resampling sample or two): nothing added there
    return out


def transform_audio(model, audio: Audio, target: str, config: TransformConfig = TransformConfig(), *,
                    device: str = "cpu", progress=None, say=None) -> tuple[np.ndarray, TransformReport, np.ndarray]:
    """Transform ``audio`` toward ``target``; returns (output samples at the song's rate and
    channels, the report with "after" measured on the output, the 16 kHz perturbation).

    The model is moved to ``device`` (see :func:`shared.runtime.pick_device`). If nothing the
    optimiser found scores higher than the input, the output is the input unchanged and the
    report's notes say so. ``progress(stage, done, total, note)`` (:mod:`shared.progress`) is told
    the steps done out of the step budget, and the window being worked on with its p(target).
    ``say(line)`` is told at once when the first window shows the target out of reach (its
    p(target) starts and stays below :data:`OUT_OF_REACH`), so a long song can be stopped early.
    """
    from shared.progress import progress_callback
    from shared.runtime import pick_device

    report_progress = progress_callback(progress)

    config.check()
    t = model.genre_index(target)
    if audio.seconds < MIN_SECONDS:
        raise GenreError(f"the song is too short ({audio.seconds:.2f} s); at least {MIN_SECONDS} s is needed")
    device = pick_device(device)
    model.to(device)
    gain = _gain(audio.samples)
    notes = []
    if gain != 1.0:
        notes.append(f"the input peaks at {1 / gain:.2f} ({20 * math.log10(1 / gain):+.1f} dBFS): the classifier heard "
                     "it normalised, and the output is not clipped")
    mono16 = _hear(audio.samples, audio.rate, gain)
    if float(np.max(np.abs(mono16))) < 1e-4:
        raise GenreError("the song is silent (peak below -80 dBFS): there is nothing to transform")
    n = len(mono16)
    bounds = windows(n, SAMPLE_RATE, config.window, config.overlap)
    model.eval()
    length = int(round(config.window * SAMPLE_RATE))
    before = _probabilities(model, [mono16[s:e] for s, e in bounds], device, length)
    # One signal x̂ for the whole song. Each window is optimised starting from x̂ as it is
    # (with the changes its neighbours made in the overlap) and written back whole, so every
    # window is scored on exactly what the song will contain. Later windows can undo part of an
    # earlier one's work in the overlap: further passes revisit the windows whose p(target) in
    # the whole signal is still below target_prob. The pass with the best mean p(target) is kept.
    xh_full = mono16.astype(np.float32).copy()
    best_full, best_mean, best_pass = xh_full.copy(), float(before[:, t].mean()), 0
    steps_taken = [0] * len(bounds)
    per_pass: list[list[int]] = [[] for _ in bounds]
    now = before[:, t]
    stage = f"→ {target}"
    budget = [len(bounds) * config.steps, 0]  # total steps, steps done (or given up when a window stops early)
    report_progress(stage, 0, budget[0])
    for rnd in range(max(1, config.passes)):
        todo = [k for k in range(len(bounds)) if now[k] < config.target_prob] if rnd else list(range(len(bounds)))
        if rnd and (not todo or config.steps == 0):
            break
        if rnd:
            budget[0] += len(todo) * config.steps
            report_progress(stage, budget[1], budget[0])
        for k in todo:
            s, e = bounds[k]
            where = f"window {k + 1}/{len(bounds)}" + (f" (pass {rnd + 1})" if rnd else "")
            calls, seen = [0], []

            def step(p, calls=calls, where=where, seen=seen):
                if calls[0]:
                    budget[1] += 1
                calls[0] += 1
                seen.append(p)
                report_progress(stage, budget[1], budget[0], f"{where}, p({target})={p:.3f}")

            xh, taken = optimise_window(model, mono16[s:e], t, config, device=device, on_step=step, start=xh_full[s:e])
            if say is not None and not rnd and k == 0 and taken and max(seen) < OUT_OF_REACH:
                rest = f"; the other {len(bounds) - 1} windows follow (Ctrl-C stops)" if len(bounds) > 1 else ""
                say(f"p({target}) in window 1 went from {seen[0]:.2g} to at most {max(seen):.2g} in {taken} steps: "
                    f"{target} looks out of reach for this song (below {OUT_OF_REACH:g}); nothing is written unless "
                    f"the song gets past that{rest}")
            budget[1] += config.steps - taken
            report_progress(stage, budget[1], budget[0], where)
            xh_full[s:e] = xh
            steps_taken[k] += taken
            per_pass[k].append(taken)
        now = _probabilities(model, [xh_full[s:e] for s, e in bounds], device, length)[:, t]
        if float(now.mean()) > best_mean:
            best_full[:], best_mean, best_pass = xh_full, float(now.mean()), rnd + 1
    if best_pass and best_pass < max(1, config.passes) and float(now.mean()) < best_mean:
        notes.append(f"kept pass {best_pass}: later passes lowered the mean p({target})")
    if not best_pass and config.steps and any(steps_taken):
        notes.append(f"no pass raised the mean p({target}): the song is left unchanged")
    delta = np.subtract(best_full, mono16, out=best_full)  # float32, in place: one 16 kHz copy fewer
    del xh_full
    # The floor holds per window; overlapping windows can add up past it over the song: back off.
    ratio = config.energy_ratio()
    out = _apply(audio, delta, gain)
    if ratio is not None:
        e_song, e_change = energy(audio.samples), _energy_diff(out, audio.samples)
        if e_change > e_song * ratio * (1 + 1e-6):
            k = math.sqrt(e_song * ratio / e_change) * (1 - 1e-4)
            delta *= np.float32(k)
            out = _apply(audio, delta, gain)
            notes.append(f"the change was scaled by {20 * math.log10(k):.1f} dB to hold the {config.min_snr:g} dB SNR floor")
    win_snr = [snr_db(mono16[s:e], delta[s:e]) for s, e in bounds]
    if ratio is not None:
        held = sum(1 for v in win_snr if v < config.min_snr + 0.1)
        if held:
            notes.append(f"the {config.min_snr:g} dB SNR floor held the change back in {held} of {len(bounds)} windows")
    report = _report(model, audio, out, bounds, before, steps_taken, win_snr, target, device, length, gain, per_pass)
    again = sum(1 for p in per_pass if len(p) > 1)
    if again:
        why = f"the step budget (--steps {config.steps}) ran out before p({target}) reached {config.target_prob:g}"
        if len(bounds) > 1:
            why += ", or a neighbour's change pushed it back below"
        notes.append(f"{again} of {len(bounds)} windows were worked on again in a later pass ({why}): their steps "
                     f"add up over the passes (shown a+b), at most {config.steps} per pass")
    if report.p_after < report.p_before:
        # the classifier hears the song through the resampling round trip: never return worse than the input
        note = (f"no result raised p({target}) (best {report.p_after:.3f} < {report.p_before:.3f} as written): "
                "the song is left unchanged")
        delta[:] = 0.0
        out = audio.samples.copy()
        report = _report(model, audio, out, bounds, before, [0] * len(bounds), [float("inf")] * len(bounds), target,
                         device, length, gain)
        notes = [n for n in notes if "SNR floor" not in n and "kept pass" not in n] + [note]
    report.min_snr_db, report.notes = config.min_snr, notes
    return out, report, delta


def _remeasured(model, report: TransformReport, config: TransformConfig, device, heard16: np.ndarray,
                snr: float) -> TransformReport:
    bounds = [(int(round(w.start * SAMPLE_RATE)), int(round(w.end * SAMPLE_RATE))) for w in report.windows]
    after = _probabilities(model, [heard16[s:e] for s, e in bounds], device, int(round(config.window * SAMPLE_RATE)))
    t, g = model.genre_index(report.target), model.genres
    wins = [dataclasses.replace(w, p_after=float(a[t]), genre_after=g[int(a.argmax())]) for w, a in zip(report.windows, after)]
    return dataclasses.replace(
        report, windows=wins, p_after=float(after[:, t].mean()), genre_after=g[int(after.mean(0).argmax())],
        snr_db=float(snr), success=float(np.mean([w.genre_after == report.target for w in wins])))


def _measure_file(path, reference: np.ndarray, rate: int, gain: float) -> tuple[np.ndarray, float]:
    """Read a written file a block at a time: what the classifier hears of it, and the SNR of its
    change against ``reference`` (the song at the level it was written at)."""
    import soundfile as sf
    import soxr

    stream = None if rate == SAMPLE_RATE else soxr.ResampleStream(rate, SAMPLE_RATE, 1, dtype="float32", quality="HQ")
    parts, e_noise, pos, m = [], 0.0, 0, reference.shape[0]
    with sf.SoundFile(str(path)) as f:
        while True:
            block = f.read(_BLOCK, dtype="float32", always_2d=True)
            last = len(block) < _BLOCK
            block = block[: max(0, m - pos)]
            e_noise += energy(block - reference[pos:pos + len(block)])
            mono = to_mono(block)
            parts.append(mono if stream is None else stream.resample_chunk(mono, last=last))
            pos += len(block)
            if last:
                break
    if pos < m:  # a shorter file than the song: the missing part is all change
        e_noise += energy(reference[pos:])
    heard = np.ascontiguousarray(np.concatenate(parts), dtype=np.float32)
    if gain != 1.0:
        heard *= np.float32(gain)
    np.clip(heard, -1.0, 1.0, out=heard)
    e_sig = energy(reference)
    snr = float("inf") if e_noise == 0 else float("-inf") if e_sig == 0 else float(10.0 * np.log10(e_sig / e_noise))
    return heard, snr


def _after(model, rate: int, out: np.ndarray, bounds, device, length: int, gain: float = 1.0) -> np.ndarray:
    """Genre probabilities of each window of ``out`` (at the song's rate), as the classifier hears it."""
    after_mono = _hear(out, rate, gain)
    return _probabilities(model, [after_mono[s:e] for s, e in bounds], device, length)


def _report(model, audio: Audio, out: np.ndarray, bounds, before, steps_taken, win_snr, target, device,
            length: int = 0, gain: float = 1.0, per_pass=None) -> TransformReport:
    after = _after(model, audio.rate, out, bounds, device, length, gain)
    t = model.genre_index(target)
    g = model.genres
    wins = [WindowReport(s / SAMPLE_RATE, e / SAMPLE_RATE, k, float(b[t]), float(a[t]), g[int(b.argmax())], g[int(a.argmax())], float(snr))
            for (s, e), k, b, a, snr in zip(bounds, steps_taken, before, after, win_snr)]
    for w, p in zip(wins, per_pass or []):
        w.passes = list(p)
    return TransformReport(
        target=target, windows=wins,
        p_before=float(before[:, t].mean()), p_after=float(after[:, t].mean()),
        genre_before=g[int(before.mean(0).argmax())], genre_after=g[int(after.mean(0).argmax())],
        snr_db=_snr(audio.samples, out),
        success=float(np.mean([w.genre_after == target for w in wins])),
        rate=audio.rate, channels=audio.channels, seconds=audio.seconds)


FLOAT_SUBTYPES = ("FLOAT", "DOUBLE")


def transform_file(model, path: str | os.PathLike, target: str, out_path: str | os.PathLike,
                   config: TransformConfig = TransformConfig(), *, device: str = "cpu", progress=None,
                   subtype: str | None = None, say=None) -> TransformReport:
    """Read ``path``, transform it and write ``out_path`` at the song's own rate and channels.

    The output is measured again as written (quantised or encoded) before it is kept: if it
    scores p(target) below the input, or it does not raise p(target) at all while the input is
    below ``target_prob``, or leaves it below :data:`OUT_OF_REACH`, nothing is written and
    GenreError says so (``say``: see :func:`transform_audio`). A float input that peaks
    above full scale is written as float WAV (not clipped), or scaled down as a whole where the
    format cannot hold it (the report's notes say which).
    """
    import soundfile as sf

    from shared.atomic import atomic_path
    from shared.runtime import pick_device

    device = pick_device(device)
    out_path = Path(out_path)
    audio = load_audio(path)
    out, report, _ = transform_audio(model, audio, target, config, device=device, progress=progress, say=say)
    if subtype is None:
        try:
            subtype = sf.info(str(path)).subtype if out_path.suffix.lower() == Path(path).suffix.lower() else None
        except RuntimeError:
            subtype = None
    scale = 1.0
    peak = _peak(out)
    if peak > 1.0:
        if out_path.suffix.lower() == ".wav" and subtype not in FLOAT_SUBTYPES:
            subtype = "FLOAT"
            report.notes.append("written as 32-bit float WAV so that nothing above full scale is clipped")
        elif subtype not in FLOAT_SUBTYPES:
            scale = 1.0 / peak
            out *= np.float32(scale)
            report.notes.append(f"scaled by {20 * math.log10(scale):.1f} dB to fit {out_path.suffix} without clipping")
    # "after" is what a listener (or the classifier) gets from the file: measure it before keeping it
    reference = audio.samples if scale == 1.0 else audio.samples * np.float32(scale)
    with atomic_path(out_path, suffix=out_path.suffix) as tmp:
        for attempt in range(3):
            write_audio(tmp, out, audio.rate, subtype=subtype)
            heard, snr = _measure_file(tmp, reference, audio.rate, _gain(reference))
            final = _remeasured(model, report, config, device, heard, snr)
            short = None if config.min_snr is None else config.min_snr - final.snr_db
            if short is None or short <= 0 or math.isinf(final.snr_db):
                break
            # the sample format's own rounding noise took the file below the floor: back off a little more
            k = 10.0 ** (-(short + 0.01 * (attempt + 1)) / 20.0)
            clip = _peak(reference) <= 1.0
            for i in range(0, out.shape[0], _BLOCK):  # out ← reference + k·(out − reference), in place
                block = out[i:i + _BLOCK]
                block -= reference[i:i + _BLOCK]
                block *= np.float32(k)
                block += reference[i:i + _BLOCK]
                if clip:
                    np.clip(block, -1.0, 1.0, out=block)
        else:
            final.notes.append(f"the {subtype or 'default'} sample format's rounding alone costs the song "
                               f"{final.snr_db:.1f} dB SNR, below the {config.min_snr:g} dB floor")
        if config.steps > 0 and max(final.p_before, final.p_after) < OUT_OF_REACH:
            raise GenreError(f"{target} is out of reach for this song: p({target}) is {final.p_before:.2g} in the input "
                             f"and {final.p_after:.2g} in the best result as written, below {OUT_OF_REACH:g}; nothing "
                             f"written (the classifier hears no {target} in it: try another --to, or a song with "
                             f"more music in it)")
        if final.p_after < final.p_before or (final.p_after <= final.p_before and final.p_before < config.target_prob
                                               and config.steps > 0):
            floor = f" within the {config.min_snr:g} dB SNR floor" if config.min_snr is not None else ""
            hint = "more --steps, a larger --lr" + (" or a lower --min-snr" if config.min_snr is not None else "")
            raise GenreError(f"could not raise p({target}){floor}: it is {final.p_before:.3f} in the input and "
                             f"{final.p_after:.3f} in the best result as written; nothing written (try {hint})")
    final.output_scale = scale
    return final


def format_report(r: TransformReport) -> str:
    lines = [f"{'window':>15}  {'steps':>7}  {'p(' + r.target + ') before':>16}  {'after':>6}  {'genre before → after':<24}  {'SNR dB':>6}"]
    for w in r.windows:
        steps = "+".join(map(str, w.passes)) if len(w.passes) > 1 else str(w.steps)  # per pass when revisited
        lines.append(f"{w.start:6.1f}–{w.end:6.1f} s  {steps:>7}  {w.p_before:16.3f}  {w.p_after:6.3f}  "
                     f"{(w.genre_before + ' → ' + w.genre_after):<24}  {w.snr_db:6.1f}")
    snr = "inf" if math.isinf(r.snr_db) else f"{r.snr_db:.1f}"
    lines.append(f"song: p({r.target}) {r.p_before:.3f} → {r.p_after:.3f}; genre {r.genre_before} → {r.genre_after}; "
                 f"{r.success:.0%} of {len(r.windows)} windows now {r.target}; SNR {snr} dB; "
                 f"{r.seconds:.1f} s at {r.rate} Hz, {r.channels} channel{'s' if r.channels != 1 else ''}")
    lines += [f"note: {n}" for n in r.notes]
    return "\n".join(lines)
