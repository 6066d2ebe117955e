"""How long does one transformation step take, naive versus the package's path, and what helps?

One *step* of Algorithm 1 (``audiogenre.transform.optimise_window``) is: the classifier's forward
on the 10 s window x̂ (16 kHz, 160,000 samples), the loss −log p_target + λ‖x̂−x‖², its backward
to the waveform, an Adam step on x̂ and the in-place clamp to [-1, 1]. "ours" (and its extras)
is timed by running the *real* ``optimise_window`` (unchanged); the seed's variants by the
same loop without the switch-off of parameter gradients and without the band limit (the seed
had neither). Both call ``on_step`` right after each forward, so the time between two
consecutive callbacks is exactly one step (backward, Adam, clamp, next forward). ``target_prob``
is 1.0 and ε is 0, so no window stops early.

Encoder: ``Wav2Vec2Model(random_wav2vec2_config("base"))`` (the wav2vec2-base shape: 7 x 512
conv feature encoder, 12 transformer layers x 768), random weights, seeded; the *same* weights,
input clip (seeded noise + sines, 10 s) and ``GenreHead(768, 4)`` weights in every variant.

Variants
    naive     the seed's own path (Armeniakos & Bistas): the encoder cut to its first 7 transformer layers as
              the seed did, every parameter ``requires_grad_(True)`` (so the backward also computes
              and accumulates weight gradients nobody uses), eager attention
              (``attn_implementation="eager"``, the only one older transformers had for wav2vec2),
              and the encoder in **train mode**, as the seed left it (random time masking, dropout
              and layer drop on: the work changes a little from step to step, and the gradient is a
              noisy one — see "grad cos"). Its steps run in the seed's loop (below), not in the
              package's ``optimise_window``, which switches parameter gradients off. (In train mode
              transformers' feature encoder marks its output ``requires_grad``, which fails when the
              input already needs a gradient; its ``_requires_grad`` flag is cleared, as
              ``freeze_feature_encoder()`` would, and its weights still get gradients.)
    ours      the package's path: ``Wav2Vec2Backend(enc, layers=7)`` (first 7 layers kept; parameters
              frozen; always eval mode) with SDPA attention, in ``AudioClassifier``.
    ablations naive with one change: ``eval`` (encoder in eval mode only), ``frozen`` (no parameter
              gradients only), ``sdpa`` (SDPA attention only).
    extras    ours plus more (``--extras``, comma-separated, tokens joined with ``+``): ``bf16``
              (``torch.autocast("cpu", torch.bfloat16)`` around the classifier's forward: matmuls,
              convolutions and attention in bf16, norms and the loss in fp32; x̂ and Adam stay fp32),
              ``compile`` (``torch.compile`` of the classifier, default mode; compilation happens in
              the warm-up, printed as "first call"), ``ftz`` (``torch.set_flush_denormal(True)``
              during the steps). channels_last does not apply: the encoder's convolutions are 1-D.

Timing: every variant first runs one warm-up call of ``optimise_window`` (one step; its time is
printed as "first call" and never counted), then ``--rounds`` interleaved rounds of ``--steps``
steps per variant (every round runs each variant in turn, so a drift in the machine's load,
e.g. another job, slows all variants alike). Reported: the median and the best step time over
all timed steps (≥ 5 by default), and the ratio of medians to naive. ``spread`` = slowest step /
fastest step of a variant (a noise indicator).

Checks (untimed), against the fp32 eval-mode reference ("ours"; every variant has 7 layers):
    grad cos   cosine between the variant's gradient of the loss w.r.t. the waveform at x and the
               reference's;
    sign agr   fraction of samples where the two gradients have the same sign (Adam's first steps
               move every sample by about lr x sign(gradient), so this is what the step follows);
    gain       log p_target gained by the x̂ of the variant's last 2-step call, measured by the fp32
               reference, relative to the reference's own gain (1.00 = the same progress).
bf16 or compile must not change where the optimisation goes. A variant whose gradient or x̂ is not
finite is marked BROKEN (its step times are then times of NaN arithmetic and mean nothing).

PASS when naive / ours ≥ 1.5 (ratio of median step times).

Run from the repo root (one thread, as the house benchmarks on this shared 2-core machine):
    OMP_NUM_THREADS=1 python benchmarks/transform_step_speed.py [--steps 2 --rounds 3]
                                                                [--extras bf16,compile,ftz,bf16+compile]
"""

from __future__ import annotations

import argparse
import copy
import os
import statistics
import time
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

TARGET_RATIO = 1.5
GENRES = ("blues", "classical", "jazz", "rock")
RATE = 16_000


class Autocast(nn.Module):
    """Runs ``inner`` under CPU bf16 autocast (matmuls and convolutions in bf16, norms in fp32)."""

    def __init__(self, inner: nn.Module):
        super().__init__()
        self.inner = inner

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        with torch.autocast("cpu", dtype=torch.bfloat16):
            return self.inner(x)


@dataclass
class Variant:
    name: str
    what: str
    model: nn.Module
    depth: int
    ftz: bool = False
    first_call_s: float = 0.0
    seed_loop: bool = False
    steps_s: list = field(default_factory=list)
    p0: float = float("nan")
    cos: float = float("nan")
    sign: float = float("nan")
    x_last: np.ndarray | None = None
    logp_gain: float = float("nan")
    finite: bool = True
    error: str | None = None

    @property
    def median(self) -> float:
        return statistics.median(self.steps_s)

    @property
    def best(self) -> float:
        return min(self.steps_s)


def make_clip(seconds: float, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(int(round(seconds * RATE))) / RATE
    x = 0.05 * rng.standard_normal(len(t))
    for f in rng.uniform(100, 2000, 5):
        x += 0.1 * np.sin(2 * np.pi * f * t + rng.uniform(0, 2 * np.pi))
    return (0.5 * x / np.max(np.abs(x))).astype(np.float32)


def build_variants(size: str, seed: int, extras: list[str]) -> list[Variant]:
    from transformers import Wav2Vec2Model

    from audiogenre.models import AudioClassifier, GenreHead, Wav2Vec2Backend, random_wav2vec2_config

    torch.manual_seed(seed)
    full = Wav2Vec2Model(random_wav2vec2_config(size))
    k = min(7, full.config.num_hidden_layers)  # the seed's depth
    torch.manual_seed(seed + 1)
    head = GenreHead(full.config.hidden_size, len(GENRES))

    class SeedBackend(Wav2Vec2Backend):
        """The seed's encoder: left in train mode (masking, dropout, layer drop), whatever the model's mode."""

        def train(self, mode: bool = True):
            nn.Module.train(self, mode)
            self.encoder.train(True)
            return self

    def classifier(attn: str, param_grad: bool, train_mode: bool) -> AudioClassifier:
        enc = copy.deepcopy(full)
        enc.set_attn_implementation(attn)
        cls = SeedBackend if train_mode else Wav2Vec2Backend
        backend = cls(enc, name=f"random-{size}", layers=k)  # frozen; eval mode unless train_mode
        if param_grad:
            backend.encoder.requires_grad_(True)  # the seed's way: weight gradients computed too
        if train_mode:
            backend.encoder.feature_extractor._requires_grad = False  # see the module docstring
        model = AudioClassifier(backend, copy.deepcopy(head), list(GENRES))
        model.requires_grad_(param_grad)
        model.eval()
        return model

    out = [
        Variant("naive", f"seed: {k} layers, eager, param grads, train mode", classifier("eager", True, True), k, seed_loop=True),
        Variant("eval", f"{k} layers, eager, param grads, eval mode", classifier("eager", True, False), k, seed_loop=True),
        Variant("frozen", f"{k} layers, eager, frozen, train mode", classifier("eager", False, True), k, seed_loop=True),
        Variant("sdpa", f"{k} layers, sdpa, param grads, train mode", classifier("sdpa", True, True), k, seed_loop=True),
        Variant("ours", f"{k} layers, sdpa, frozen, eval (package)", classifier("sdpa", False, False), k),
    ]
    ours = out[-1].model
    words = {"bf16": "CPU bf16 autocast", "compile": "torch.compile", "ftz": "flush denormals"}
    for spec in extras:
        toks = spec.split("+")
        bad = [t for t in toks if t not in words]
        if bad:
            raise SystemExit(f"unknown extra {bad[0]!r} in {spec!r}: use bf16, compile, ftz joined with +")
        model = ours
        if "bf16" in toks:
            model = Autocast(model)
        if "compile" in toks:
            model = torch.compile(copy.deepcopy(model))
        out.append(Variant(f"ours+{spec}", "ours + " + " + ".join(words[t] for t in toks), model, k, ftz="ftz" in toks))
    return out


def seed_window(model: nn.Module, x: np.ndarray, target: int, cfg, on_step) -> tuple[np.ndarray, int]:
    """The seed's step: forward, −log p_target + λ‖x̂ − x‖², backward (parameter gradients
    included when the model asks for them), Adam on x̂, clamp to [-1, 1] in place."""
    from torch.nn import functional as F

    x0 = torch.from_numpy(x)
    xh = x0.clone().requires_grad_(True)
    opt = torch.optim.Adam([xh], lr=cfg.lr)
    for step in range(cfg.steps + 1):
        logp = F.log_softmax(model(xh[None]).float(), dim=-1)[0, target]
        on_step(float(logp.detach().exp()))
        if step == cfg.steps:
            break
        loss = -logp + cfg.lam * torch.sum((xh - x0) ** 2)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        with torch.no_grad():
            xh.clamp_(-1.0, 1.0)
    return xh.detach().numpy(), cfg.steps


def timed_call(v: Variant, x: np.ndarray, steps: int, target: int) -> tuple[list[float], float, float]:
    """``optimise_window`` for ``steps`` steps; returns the step times, the call's time and p at x
    (and keeps the call's x̂ in ``v.x_last``)."""
    from audiogenre.transform import TransformConfig, optimise_window

    cfg = TransformConfig(steps=steps, target_prob=1.0, epsilon=0.0)
    stamps, ps = [], []

    def on_step(p):
        stamps.append(time.perf_counter())
        ps.append(p)

    torch.set_flush_denormal(v.ftz)
    try:
        t0 = time.perf_counter()
        if v.seed_loop:
            v.x_last, _ = seed_window(v.model, x, target, cfg, on_step)
        else:
            v.x_last, _ = optimise_window(v.model, x, target, cfg, on_step=on_step)
        call_s = time.perf_counter() - t0
    finally:
        torch.set_flush_denormal(False)
    return [b - a for a, b in zip(stamps, stamps[1:])], call_s, ps[0]


def wave_grad(model: nn.Module, x: np.ndarray, target: int) -> torch.Tensor:
    """d(−log p_target)/dx at x (the first step's direction; λ‖x̂−x‖² is 0 there)."""
    from torch.nn import functional as F

    xh = torch.from_numpy(x).clone().requires_grad_(True)
    loss = -F.log_softmax(model(xh[None]).float(), dim=-1)[0, target]
    loss.backward()
    for p in model.parameters():
        p.grad = None
    return xh.grad.detach().double()


def by_name(variants: list[Variant], name: str) -> Variant:
    return next(v for v in variants if v.name == name)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size", default="base", help="encoder size: tiny, small, base (base)")
    ap.add_argument("--seconds", type=float, default=10.0, help="window length (10 s, the classifier's clip)")
    ap.add_argument("--steps", type=int, default=2, help="timed steps per variant per round (2)")
    ap.add_argument("--rounds", type=int, default=3, help="interleaved rounds (3): steps x rounds timed steps each")
    ap.add_argument("--extras", default="bf16,compile,ftz,bf16+compile",
                    help="additions to ours to try, tokens bf16, compile, ftz joined with + (bf16,compile,ftz,bf16+compile; "
                         "'' for none)")
    ap.add_argument("--target", type=int, default=2, help="target genre index (2)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=1, help="torch threads (1)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)

    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    extras = [e.strip() for e in args.extras.split(",") if e.strip()]
    t0 = time.perf_counter()
    variants = build_variants(args.size, args.seed, extras)
    x = make_clip(args.seconds, args.seed)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} thread(s), OMP_NUM_THREADS="
          f"{os.environ.get('OMP_NUM_THREADS', 'unset')}, CPU capability {torch.backends.cpu.get_cpu_capability()}; "
          f"encoder {args.size} (random weights), window {args.seconds:g} s = {len(x)} samples; "
          f"{len(variants)} variants built in {time.perf_counter() - t0:.1f} s")
    print(f"one step = forward + backward to the waveform + Adam + clamp, inside audiogenre.transform.optimise_window; "
          f"{args.rounds} interleaved rounds x {args.steps} steps per variant after a 1-step warm-up\n", flush=True)

    for v in variants:
        try:
            _, v.first_call_s, v.p0 = timed_call(v, x, 1, args.target)
            print(f"  warm-up {v.name:<14} first call (2 forwards + 1 backward) {v.first_call_s:6.1f} s", flush=True)
        except Exception as err:  # e.g. compile without a working C++ toolchain
            v.error = f"{type(err).__name__}: {str(err).strip().splitlines()[0][:160] if str(err).strip() else ''}"
            print(f"  warm-up {v.name:<14} FAILED ({v.error}); dropped", flush=True)
    variants = [v for v in variants if v.error is None]
    for r in range(args.rounds):
        for v in variants:
            steps, _, _ = timed_call(v, x, args.steps, args.target)
            v.steps_s.extend(steps)
        print(f"  round {r + 1}/{args.rounds}: " + ", ".join(f"{v.name} {statistics.median(v.steps_s[-args.steps:]):.2f}"
                                                             for v in variants) + " s/step", flush=True)

    # direction check (untimed)
    from torch.nn import functional as F

    ref_model = by_name(variants, "ours").model
    ref = wave_grad(ref_model, x, args.target)

    def ref_logp(wave: np.ndarray) -> float:
        with torch.no_grad():
            return float(F.log_softmax(ref_model(torch.from_numpy(wave)[None]).float(), dim=-1)[0, args.target])

    ref_gain = ref_logp(by_name(variants, "ours").x_last) - ref_logp(x)
    for v in variants:
        torch.manual_seed(args.seed)  # the train-mode variants draw their masks from torch's generator
        g = wave_grad(v.model, x, args.target)
        v.finite = bool(torch.isfinite(g).all()) and bool(np.isfinite(v.x_last).all())
        if v.finite:
            v.cos = float(torch.dot(g, ref) / (g.norm() * ref.norm()))
            v.sign = float((torch.sign(g) == torch.sign(ref)).double().mean())
            v.logp_gain = (ref_logp(v.x_last) - ref_logp(x)) / ref_gain

    by = {v.name: v for v in variants}
    naive = by["naive"]
    w = max(len(v.name) for v in variants) + 2
    print(f"\n{'variant':<{w}}{'what':<46}{'median s/step':>14}{'best':>8}{'vs naive':>10}{'spread':>8}"
          f"{'first call s':>14}{'p0':>8}{'grad cos':>10}{'sign agr':>10}{'gain':>7}")
    for v in variants:
        print(f"{v.name:<{w}}{v.what:<46}{v.median:>14.3f}{v.best:>8.3f}{naive.median / v.median:>9.2f}x"
              f"{max(v.steps_s) / min(v.steps_s):>8.2f}{v.first_call_s:>14.1f}{v.p0:>8.4f}{v.cos:>10.4f}"
              f"{v.sign:>10.4f}{v.logp_gain:>7.2f}")
    print(f"(p0: target probability at x; grad cos / sign agr: cosine / sign agreement of this variant's waveform "
          f"gradient with the fp32 eval-mode reference, ours ({by['ours'].depth} layers); train-mode variants are "
          f"below 1 by their random masking and dropout; gain: log p_target gained in {args.steps} steps, scored by "
          f"that reference, over the reference's own gain)")

    ours = by["ours"]
    print("\nablation (each alone on top of naive, ratio of median step times):")
    for name, label in (("eval", "eval mode"), ("frozen", "no parameter gradients"), ("sdpa", "SDPA attention")):
        if name in by:
            print(f"  {label:<26} {naive.median / by[name].median:5.2f}x")
    print(f"  {'all three (ours)':<26} {naive.median / ours.median:5.2f}x")
    for v in variants:
        if v.name.startswith("ours+"):
            gain = ours.median / v.median
            verdict = ("BROKEN: non-finite waveform gradient / x̂" if not v.finite else "no gain" if gain <= 1.05
                       else "helps" if v.cos > 0.99
                       else "faster, but changes the gradient: check the transformation's results before using it")
            print(f"  {v.name:<26} {gain:5.2f}x vs ours (grad cos {v.cos:.4f}, sign agr {v.sign:.3f}, gain "
                  f"{v.logp_gain:.2f}; first call {v.first_call_s:.0f} s): {verdict}")

    ratio = naive.median / ours.median
    print(f"\nnaive {naive.median:.3f} s/step, ours {ours.median:.3f} s/step: {ratio:.2f}x")
    verdict = "PASS" if ratio >= TARGET_RATIO and ours.finite and naive.finite else "FAIL"
    print(f"{verdict}: ours is {ratio:.2f}x faster per transformation step than naive (target >= {TARGET_RATIO}x)")


if __name__ == "__main__":
    main()
