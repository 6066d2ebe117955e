"""Gradient-guided transformation of a whole song toward a target genre (seed 000, Algorithm 1).

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
the classifier hears (below 8 kHz) changes. The report's "after" numbers are measured again
on the written file, not on the optimiser's copy.
"""

from __future__ import annotations

import dataclasses
import math
import os
from pathlib import Path

import numpy as np

from audiogenre.audio import SAMPLE_RATE, MIN_SECONDS, Audio, load_audio, resample, snr_db, to_mono, write_audio
from shared.errors import GenreError

OPTIMIZERS = ("adam", "sgd")


@dataclasses.dataclass
class TransformConfig:
    """Settings of the transformation; every one is a CLI option."""

    lam: float = 1.0           # λ: weight of ‖x̂ − x‖²₂ (sum over the window's samples)
    lr: float = 2e-4           # step size (Adam: per-sample change per step)
    steps: int = 60            # step budget per window
    target_prob: float = 0.9   # stop a window once p_target reaches this
    epsilon: float = 0.0       # stop a window once the loss is below ε (0: off)
    optimizer: str = "adam"
    window: float = 10.0       # seconds per window (the classifier's clip length)
    overlap: float = 1.0       # seconds shared by neighbouring windows
    passes: int = 3            # rounds over the windows that are not yet at target_prob in the whole signal
    max_hz: float = 7000.0     # the change is kept below this (Hz): it must survive resampling to the song's rate
                               # and back, whose filters roll off toward 8 kHz (0: no limit)
    bf16: bool = False         # bfloat16 autocast for the classifier (CPU: ~2x faster steps, slightly noisier gradients)

    def check(self) -> None:
        if self.optimizer not in OPTIMIZERS:
            raise GenreError(f"unknown optimizer {self.optimizer!r}: use {' or '.join(OPTIMIZERS)}")
        if self.lam < 0 or self.lr <= 0 or self.steps < 0:
            raise GenreError("--lambda must be ≥ 0, --lr > 0 and --steps ≥ 0")
        if not 0 < self.target_prob <= 1:
            raise GenreError("--target-prob must be in (0, 1]")
        if self.window < MIN_SECONDS or not 0 <= self.overlap < self.window / 2:
            raise GenreError(f"--window must be ≥ {MIN_SECONDS} s and --overlap between 0 and half the window")


def window_defaults(clip_seconds: float, window: float | None = None, overlap: float | None = None) -> tuple[float, float]:
    """``(window, overlap)`` in seconds for a classifier of ``clip_seconds`` clips: the window is
    the clip length and the overlap 1 s (at most a quarter window), unless given."""
    window = float(window or clip_seconds)
    overlap = min(TransformConfig.overlap, window / 4) if overlap is None else float(overlap)
    return window, overlap


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
    """Algorithm 1 on one 16 kHz mono window x; returns x̂ and the number of steps taken.

    x̂ starts at ``start`` (default x: the window as it is now in the song, with what earlier
    windows changed) and the proximity term is always to the original x.
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
    autocast = torch.autocast(dev, dtype=torch.bfloat16) if config.bf16 else contextlib.nullcontext()
    taken = 0
    for step in range(config.steps + 1):
        with autocast:
            inp = xh if len(xh) >= length else torch.nn.functional.pad(xh, (0, length - len(xh)))
            logits = model(inp[None])
        logp = F.log_softmax(logits.float(), dim=-1)[0, target]
        p = float(logp.detach().exp())
        if on_step:
            on_step(p)
        loss = -logp + config.lam * torch.sum((xh - x0) ** 2)
        if step == config.steps or p >= config.target_prob or float(loss.detach()) < config.epsilon:
            break
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        with torch.no_grad():
            if mask is not None:  # keep the change x̂ − x inside the band that survives resampling
                xh.copy_(x0 + torch.fft.irfft(torch.fft.rfft(xh - x0) * mask, n=len(x0)))
            xh.clamp_(-1.0, 1.0)
        taken += 1
    return xh.detach().cpu().numpy(), taken


def transform_audio(model, audio: Audio, target: str, config: TransformConfig = TransformConfig(), *,
                    device: str = "cpu", progress=None) -> tuple[np.ndarray, TransformReport, np.ndarray]:
    """Transform ``audio`` toward ``target``; returns (output samples at the song's rate and
    channels, the report with "after" measured on the output, the 16 kHz perturbation).

    ``progress(stage, done, total, note)`` (:mod:`shared.progress`) is told the steps done out of
    the step budget, and the window being worked on with its p(target)."""
    from shared.progress import progress_callback

    report_progress = progress_callback(progress)
    config.check()
    t = model.genre_index(target)
    if audio.seconds < MIN_SECONDS:
        raise GenreError(f"the song is too short ({audio.seconds:.2f} s); at least {MIN_SECONDS} s is needed")
    mono16 = np.clip(resample(to_mono(audio.samples), audio.rate, SAMPLE_RATE), -1, 1)
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
    # the whole signal is still below target_prob.
    xh_full = mono16.astype(np.float32).copy()
    steps_taken = [0] * len(bounds)
    todo = list(range(len(bounds)))
    stage = f"→ {target}"
    budget = [len(bounds) * config.steps, 0]  # total steps, steps done (or given up when a window stops early)
    report_progress(stage, 0, budget[0])
    for rnd in range(max(1, config.passes)):
        if rnd:
            now = _probabilities(model, [xh_full[s:e] for s, e in bounds], device, length)[:, t]
            todo = [k for k in range(len(bounds)) if now[k] < config.target_prob]
            if not todo or config.steps == 0:
                break
            budget[0] += len(todo) * config.steps
            report_progress(stage, budget[1], budget[0])
        for k in todo:
            s, e = bounds[k]
            where = f"window {k + 1}/{len(bounds)}" + (f" (pass {rnd + 1})" if rnd else "")
            calls = [0]

            def step(p, calls=calls, where=where):
                if calls[0]:
                    budget[1] += 1
                calls[0] += 1
                report_progress(stage, budget[1], budget[0], f"{where}, p({target})={p:.3f}")

            xh, taken = optimise_window(model, mono16[s:e], t, config, device=device, on_step=step, start=xh_full[s:e])
            budget[1] += config.steps - taken
            report_progress(stage, budget[1], budget[0], where)
            xh_full[s:e] = xh
            steps_taken[k] += taken
    delta = xh_full.astype(np.float64) - mono16
    win_snr = [snr_db(mono16[s:e], delta[s:e]) for s, e in bounds]
    # back to the song: band-limited upsampling of the perturbation only, added to every channel
    up = resample(delta.astype(np.float32), SAMPLE_RATE, audio.rate)
    m = audio.samples.shape[0]
    up = np.pad(up, (0, max(0, m - len(up))))[:m]
    out = np.clip(audio.samples + up[:, None], -1.0, 1.0).astype(np.float32)
    report = _report(model, audio, out, bounds, before, steps_taken, win_snr, target, device, length)
    return out, report, delta.astype(np.float32)


def remeasure(model, audio: Audio, written: np.ndarray, report: TransformReport, config: TransformConfig,
              device: str = "cpu") -> TransformReport:
    """The report again, with "after" and the SNR measured on ``written`` (the file as saved:
    quantised to its sample format or encoded); "before" and the steps are kept."""
    bounds = [(int(round(w.start * SAMPLE_RATE)), int(round(w.end * SAMPLE_RATE))) for w in report.windows]
    after = _after(model, audio, written, bounds, device, int(round(config.window * SAMPLE_RATE)))
    t, g = model.genre_index(report.target), model.genres
    wins = [dataclasses.replace(w, p_after=float(a[t]), genre_after=g[int(a.argmax())]) for w, a in zip(report.windows, after)]
    return dataclasses.replace(
        report, windows=wins, p_after=float(after[:, t].mean()), genre_after=g[int(after.mean(0).argmax())],
        snr_db=float(snr_db(audio.samples, written - audio.samples)),
        success=float(np.mean([w.genre_after == report.target for w in wins])))


def _after(model, audio: Audio, out: np.ndarray, bounds, device, length: int) -> np.ndarray:
    """Genre probabilities of each window of ``out`` (at the song's rate), as the classifier hears it."""
    after_mono = np.clip(resample(to_mono(out), audio.rate, SAMPLE_RATE), -1, 1)
    return _probabilities(model, [after_mono[s:e] for s, e in bounds], device, length)


def _report(model, audio: Audio, out: np.ndarray, bounds, before, steps_taken, win_snr, target, device,
            length: int = 0) -> TransformReport:
    after = _after(model, audio, out, bounds, device, length)
    t = model.genre_index(target)
    g = model.genres
    wins = [WindowReport(s / SAMPLE_RATE, e / SAMPLE_RATE, k, float(b[t]), float(a[t]), g[int(b.argmax())], g[int(a.argmax())], float(snr))
            for (s, e), k, b, a, snr in zip(bounds, steps_taken, before, after, win_snr)]
    return TransformReport(
        target=target, windows=wins,
        p_before=float(before[:, t].mean()), p_after=float(after[:, t].mean()),
        genre_before=g[int(before.mean(0).argmax())], genre_after=g[int(after.mean(0).argmax())],
        snr_db=float(snr_db(audio.samples, out - audio.samples)),
        success=float(np.mean([w.genre_after == target for w in wins])),
        rate=audio.rate, channels=audio.channels, seconds=audio.seconds)


def transform_file(model, path: str | os.PathLike, target: str, out_path: str | os.PathLike,
                   config: TransformConfig = TransformConfig(), *, device: str = "cpu", progress=None,
                   subtype: str | None = None) -> TransformReport:
    """Read ``path``, transform it and write ``out_path`` at the song's own rate and channels."""
    import soundfile as sf

    audio = load_audio(path)
    out, report, _ = transform_audio(model, audio, target, config, device=device, progress=progress)
    if subtype is None:
        try:
            subtype = sf.info(str(path)).subtype if Path(out_path).suffix.lower() == Path(path).suffix.lower() else None
        except RuntimeError:
            subtype = None
    write_audio(out_path, out, audio.rate, subtype=subtype)
    # "after" is what a listener (or the classifier) gets from the file: re-read and measure it
    written = load_audio(out_path)
    return remeasure(model, audio, written.samples[: len(audio.samples)], report, config, device)


def format_report(r: TransformReport) -> str:
    lines = [f"{'window':>15}  {'steps':>5}  {'p(' + r.target + ') before':>16}  {'after':>6}  {'genre before → after':<24}  {'SNR dB':>6}"]
    for w in r.windows:
        lines.append(f"{w.start:6.1f}–{w.end:6.1f} s  {w.steps:5d}  {w.p_before:16.3f}  {w.p_after:6.3f}  "
                     f"{(w.genre_before + ' → ' + w.genre_after):<24}  {w.snr_db:6.1f}")
    snr = "inf" if math.isinf(r.snr_db) else f"{r.snr_db:.1f}"
    lines.append(f"song: p({r.target}) {r.p_before:.3f} → {r.p_after:.3f}; genre {r.genre_before} → {r.genre_after}; "
                 f"{r.success:.0%} of {len(r.windows)} windows now {r.target}; SNR {snr} dB; "
                 f"{r.seconds:.1f} s at {r.rate} Hz, {r.channels} channel{'s' if r.channels != 1 else ''}")
    return "\n".join(lines)
