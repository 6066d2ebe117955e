"""How fast does the CycleGAN train, and which settings make a training step faster?

Every number comes from ``CycleGANTask.update`` (one training step) on real data: the jazz and classical folders of
the shared MIDI data are prepared (``RollSettings(meter="lenient")``) into a temporary folder,
and each setting gets a fresh ``CycleGANTask`` (same seed, so the same initial weights) fed the same
pre-loaded batches.

What is counted
    One *step* is ``CycleGANTask.update(real_a, real_b, None)``: one batch of ``batch_size`` genre-A
    phrases plus one of genre-B phrases, a generator update then a discriminator update (base
    variant, image pool on). ``phrases/s`` = batch_size x steps / seconds, i.e. the A-B *pairs*
    per second, the same quantity as ``phrases_per_s`` in a run's log.csv (phrases touched per
    second, A and B together, is twice that). Loading batches from the HDF5 cache is *not* in the
    step times; it is timed on its own and printed once.

Settings (``--variants``; tokens joined with ``+``)
    eager      the way the trainer runs now: fp32, contiguous tensors, no compilation
    cl         channels_last memory format for all four networks and the input batches
    bf16       ``torch.autocast(device, dtype=torch.bfloat16)`` (the task's ``amp`` switch forced on)
    compile    ``torch.compile`` of G_AB, G_BA, D_A and D_B (default mode); compilation happens in
               the warm-up steps, whose time is printed as "first step" and never in the timings
    ro         the same with ``mode="reduce-overhead"`` (CUDA graphs; meant for GPUs)
    tN         ``torch.set_num_threads(N)`` during the setting's steps (CPU only)
    passive    the setting runs in a child process started with ``OMP_WAIT_POLICY=PASSIVE`` (idle
               OpenMP threads sleep instead of spinning; libgomp reads this only at start-up, so it
               cannot be switched inside one process). CPU only; timed in the same rounds.
    sn, sa     spectral norm / self-attention in the model (``--sn`` / ``--sa`` add an ``sn`` /
               ``sa`` twin of every listed setting)

Timing: all settings of a preset are warmed up first, then timed in interleaved rounds (each round
runs a few steps of every setting in turn), so a machine whose load drifts - another job on the
CPU - slows all settings alike; "vs eager" is the ratio of step times within the same run.
``spread`` is the slowest round's step time over the fastest one's, a noise indicator.

The H100 figure at the end is an *estimate* from counted FLOPs (FlopCounterMode on a meta-device
copy of one paper-preset step: convolutions and matrix products, forward and backward) and an
assumed sustained throughput; it is not a measurement.

Run from the repo root:
    python benchmarks/train_speed.py [--presets small,paper] [--steps N] [--warmup 1] [--sn] [--sa]
                                     [--variants eager,bf16,...] [--rounds 4]
"""

from __future__ import annotations

import argparse
import math
import os
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch._dynamo
from torch.utils.flop_counter import FlopCounterMode

from midigenre.models import preset as model_preset
from midigenre.pianoroll import RollSettings
from midigenre.prepare import prepare
from midigenre.cyclegan import CycleGAN, discriminator_losses, generator_losses, weighted
from midigenre.train import CycleGANTask, GenreSource, TrainConfig

REPO = Path(__file__).resolve().parent.parent
DEFAULT_STEPS = {"small": 20, "paper": 3}
CPU_VARIANTS = "eager,t1,passive,cl,bf16,compile,compile+bf16,t1+cl,t1+bf16,t1+cl+bf16,t1+compile,t1+compile+bf16"
GPU_VARIANTS = "eager,bf16,cl+bf16,compile,compile+bf16,compile+cl+bf16,ro+bf16"
H100_BF16_DENSE = 989e12  # FLOP/s, H100 SXM bf16 dense tensor-core peak (no sparsity)
H100_UTILISATION = (0.20, 0.30)  # assumed sustained fraction of that peak for these small convolutional nets
LAUNCH_US = (5e-6, 10e-6)  # assumed host cost per dispatched op in eager mode on a GPU


# ----------------------------------------------------------------------------- settings


@dataclass(frozen=True)
class Setting:
    name: str
    channels_last: bool = False
    bf16: bool = False
    compile: bool = False
    reduce_overhead: bool = False
    threads: int | None = None
    passive: bool = False
    sn: bool = False
    sa: bool = False

    @classmethod
    def parse(cls, spec: str) -> "Setting":
        kw: dict = {}
        for tok in spec.split("+"):
            if tok == "eager":
                continue
            elif tok == "cl":
                kw["channels_last"] = True
            elif tok in ("bf16", "compile", "passive", "sn", "sa"):
                kw[tok] = True
            elif tok == "ro":
                kw["compile"] = kw["reduce_overhead"] = True
            elif tok[:1] == "t" and tok[1:].isdigit() and int(tok[1:]) > 0:
                kw["threads"] = int(tok[1:])
            else:
                raise SystemExit(f"unknown token {tok!r} in setting {spec!r} (use eager, cl, bf16, compile, ro, tN, passive, sn, sa)")
        return cls(name=spec, **kw)

    @property
    def arch(self) -> str:
        return "+".join(t for t, on in (("sn", self.sn), ("sa", self.sa)) if on) or "plain"

    def without(self, token: str) -> str:
        """Name of the same setting without ``token`` ("eager" if nothing is left)."""
        return "+".join(t for t in self.name.split("+") if t not in (token, "eager")) or "eager"


def setting_list(spec: str, sn: bool, sa: bool, device: torch.device) -> list[Setting]:
    base = [Setting.parse(s.strip()) for s in spec.split(",") if s.strip()]
    if device.type != "cpu":
        base = [s for s in base if s.threads is None and not s.passive]
    elif (os.cpu_count() or 1) == 1:
        base = [s for s in base if s.threads is None or s.threads == 1]
    if not any(s.name == "eager" for s in base):
        base.insert(0, Setting("eager"))
    twins = []
    for tag, on in (("sn", sn), ("sa", sa), ("sn+sa", sn and sa)):
        if on:
            for s in base:
                if not (s.sn or s.sa):
                    twins.append(Setting.parse(f"{s.name}+{tag}" if s.name != "eager" else tag))
    out, seen = [], set()
    for s in base + twins:
        if s.name not in seen:
            seen.add(s.name)
            out.append(s)
    return out


# ----------------------------------------------------------------------------- one setting


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def one_line(err: BaseException) -> str:
    msg = str(err).strip().splitlines()
    return f"{type(err).__name__}: {msg[0][:160] if msg else ''}"


class Runner:
    """A fresh CycleGANTask with one setting applied; ``run(n)`` times n calls of its ``update``, unchanged."""

    def __init__(self, setting: Setting, preset: str, srcs, batches, device: torch.device, work: Path, default_threads: int):
        self.s, self.device, self.default_threads = setting, device, default_threads
        cfg = TrainConfig(preset=preset, spectral_norm=setting.sn, self_attention=setting.sa)
        self.trainer = CycleGANTask(srcs[0], srcs[1], work / f"{preset}_{setting.name}", cfg, device=str(device))
        tr = self.trainer
        tr.amp = setting.bf16  # update wraps both updates in autocast(device, bf16, enabled=amp)
        fmt = torch.channels_last if setting.channels_last else torch.contiguous_format
        if setting.channels_last:
            tr.model.to(memory_format=torch.channels_last)  # in place: the optimisers keep the same parameters
        self.batches = [(a.to(device).contiguous(memory_format=fmt), b.to(device).contiguous(memory_format=fmt))
                        for a, b in batches]
        if setting.compile:
            for key in ("recompile_limit", "cache_size_limit"):  # many settings share the same forward code
                if hasattr(torch._dynamo.config, key):
                    setattr(torch._dynamo.config, key, 64)
            m = tr.model
            mode = "reduce-overhead" if setting.reduce_overhead else None
            m.G_AB, m.G_BA, m.D_A, m.D_B = (torch.compile(x, mode=mode) for x in (m.G_AB, m.G_BA, m.D_A, m.D_B))
        self.i = 0
        self.first_losses: dict[str, float] | None = None
        self.first_step_s: float | None = None
        self.warm_s: list[float] = []
        self.round_s: list[tuple[int, float]] = []  # (steps, seconds) per timed round

    def _mark_step(self):
        if self.s.reduce_overhead and hasattr(torch.compiler, "cudagraph_mark_step_begin"):
            torch.compiler.cudagraph_mark_step_begin()  # a new training iteration for CUDA-graph trees

    def _threads(self):
        return self.s.threads if self.s.threads is not None else self.default_threads

    def run(self, n: int) -> float:
        torch.set_num_threads(self._threads())
        try:
            sync(self.device)
            t0 = time.perf_counter()
            for _ in range(n):
                a, b = self.batches[self.i % len(self.batches)]
                self._mark_step()
                losses = self.trainer.update(a, b, None)
                self.i += 1
            sync(self.device)
            dt = time.perf_counter() - t0
        finally:
            torch.set_num_threads(self.default_threads)
        if not all(math.isfinite(v) for v in losses.values()):
            raise FloatingPointError(f"non-finite loss {losses}")
        return dt

    def warmup(self, n: int) -> None:
        torch.manual_seed(1234)  # same noise and pool draws in every setting's first step
        torch.set_num_threads(self._threads())
        try:
            a, b = self.batches[0]
            t0 = time.perf_counter()
            self._mark_step()
            self.first_losses = self.trainer.update(a, b, None)
            sync(self.device)
            self.first_step_s = time.perf_counter() - t0
        finally:
            torch.set_num_threads(self.default_threads)
        self.i = 1
        for _ in range(max(0, n - 1)):
            self.warm_s.append(self.run(1))

    @property
    def steps(self) -> int:
        return sum(n for n, _ in self.round_s)

    @property
    def step_s(self) -> float:
        return sum(t for _, t in self.round_s) / self.steps

    @property
    def spread(self) -> float:
        per = [t / n for n, t in self.round_s]
        return max(per) / min(per)


class Child:
    """A spawned process (OMP_WAIT_POLICY=PASSIVE) that hosts Runners and runs steps on request."""

    def __init__(self, preset, srcs, batches, work: Path, default_threads: int):
        import multiprocessing as mp

        ctx = mp.get_context("spawn")
        self.conn, child_end = ctx.Pipe()
        old = os.environ.get("OMP_WAIT_POLICY")
        os.environ["OMP_WAIT_POLICY"] = "PASSIVE"
        try:
            np_batches = [(a.numpy(), b.numpy()) for a, b in batches]
            self.proc = ctx.Process(target=_serve, args=(child_end, preset, srcs, np_batches, str(work), default_threads),
                                    daemon=True)
            self.proc.start()
        finally:
            if old is None:
                os.environ.pop("OMP_WAIT_POLICY", None)
            else:
                os.environ["OMP_WAIT_POLICY"] = old
        child_end.close()

    def call(self, *msg):
        self.conn.send(msg)
        status, out = self.conn.recv()
        if status != "ok":
            raise RuntimeError(f"in the OMP_WAIT_POLICY=PASSIVE process: {out}")
        return out

    def stop(self):
        try:
            self.conn.send(("stop", None, None))
        except OSError:
            pass
        self.proc.join(30)


def _serve(conn, preset, srcs, np_batches, work, default_threads):
    torch.set_num_threads(default_threads)
    batches = [(torch.from_numpy(a), torch.from_numpy(b)) for a, b in np_batches]
    runners: dict[str, Runner] = {}
    while True:
        cmd, name, arg = conn.recv()
        if cmd == "stop":
            return
        try:
            if cmd == "make":
                runners[name] = Runner(arg, preset, srcs, batches, torch.device("cpu"), Path(work), default_threads)
                out = None
            elif cmd == "warmup":
                runners[name].warmup(arg)
                out = (runners[name].first_step_s, runners[name].first_losses)
            else:
                out = runners[name].run(arg)
            conn.send(("ok", out))
        except Exception as err:
            conn.send(("err", one_line(err)))


class RemoteRunner(Runner):
    """Same interface as Runner; the steps run in a Child."""

    def __init__(self, setting: Setting, child: Child):
        self.s, self.child = setting, child
        self.first_losses, self.first_step_s, self.warm_s, self.round_s = None, None, [], []
        child.call("make", setting.name, setting)

    def warmup(self, n: int) -> None:
        self.first_step_s, self.first_losses = self.child.call("warmup", self.s.name, n)

    def run(self, n: int) -> float:
        return self.child.call("run", self.s.name, n)


# ----------------------------------------------------------------------------- FLOPs


def step_flops(preset: str, batch: int, sn: bool = False, sa: bool = False) -> tuple[int, int]:
    """(FLOPs, dispatched aten ops) of one base-variant training step, forward and backward of both
    updates, counted on meta tensors (no arithmetic is done). The optimiser step is not counted."""
    from torch.utils._python_dispatch import TorchDispatchMode

    class OpCount(TorchDispatchMode):
        n = 0

        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            OpCount.n += 1
            return func(*args, **(kwargs or {}))

    cfg, tc = model_preset(preset, spectral_norm=sn, self_attention=sa), TrainConfig()
    with torch.device("meta"):
        m = CycleGAN(cfg)
        real_a, real_b = torch.zeros(batch, 1, 64, 84), torch.zeros(batch, 1, 64, 84)
    counter = FlopCounterMode(display=False)
    with counter, OpCount():
        for d in m.discriminators():
            d.requires_grad_(False)
        g_losses, fake_a, fake_b = generator_losses(m, real_a, real_b, tc.sigma_d)
        weighted(g_losses, tc.weights).backward()
        for d in m.discriminators():
            d.requires_grad_(True)
        d_losses = discriminator_losses(m, real_a, real_b, fake_a.detach(), fake_b.detach(), None, tc.sigma_d)
        weighted(d_losses, tc.weights).backward()
    return counter.get_total_flops(), OpCount.n


# ----------------------------------------------------------------------------- benchmark


def bench_preset(preset: str, settings: list[Setting], srcs, batches, device, work, args, default_threads) -> dict:
    steps = args.steps if args.steps is not None else DEFAULT_STEPS.get(preset, 5)
    rounds = max(1, min(args.rounds, steps))
    per_round = [steps // rounds + (r < steps % rounds) for r in range(rounds)]
    mc = model_preset(preset)
    print(f"\n== {preset} preset (G {mc.g_channels} ch / {mc.n_res_blocks} res blocks, D {mc.d_channels} ch) on "
          f"{device_name(device)}: batch {args.batch_size}, warm-up {args.warmup} step(s), "
          f"then {steps} timed steps per setting in {rounds} interleaved round(s)")

    runners: dict[str, Runner] = {}
    child = None
    for s in settings:
        try:
            if s.passive:
                child = child or Child(preset, srcs, batches, work, default_threads)
                r = RemoteRunner(s, child)
            else:
                r = Runner(s, preset, srcs, batches, device, work, default_threads)
            r.warmup(max(args.warmup, 1))
            runners[s.name] = r
        except Exception as err:  # e.g. torch.compile without a working compiler
            print(f"  {s.name}: FAILED during set-up/warm-up ({one_line(err)}); skipped")
    for k in range(rounds):
        for name in list(runners):
            try:
                runners[name].round_s.append((per_round[k], runners[name].run(per_round[k])))
            except Exception as err:
                print(f"  {name}: FAILED in timed round {k + 1} ({one_line(err)}); dropped")
                del runners[name]
    if child is not None:
        child.stop()
    if not runners:
        return {}

    flops = {arch: step_flops(preset, args.batch_size, sn="sn" in arch, sa="sa" in arch)[0]
             for arch in {r.s.arch for r in runners.values()}}
    print(f"  {'setting':<22}{'ms/step':>10}{'phrases/s':>11}{'vs eager':>10}{'GFLOP/s':>9}{'spread':>8}"
          f"{'first step s':>14}{'step-1 loss Δ':>15}")
    results = {}
    for name, r in runners.items():
        ref = runners.get("+".join(x for x in ("sn", "sa") if getattr(r.s, x)) or "eager")  # same architecture, eager
        vs = f"{ref.step_s / r.step_s:>9.2f}x" if ref else f"{'-':>10}"
        if ref and r.first_losses and ref.first_losses and ref is not r:
            delta = max(abs(r.first_losses[k] - ref.first_losses[k]) / max(abs(ref.first_losses[k]), 1e-12)
                        for k in ref.first_losses)
            delta_s = f"{delta:>15.1e}"
        else:
            delta_s = f"{'(ref)' if ref is r else '-':>15}"
        print(f"  {name:<22}{r.step_s * 1e3:>10.0f}{args.batch_size / r.step_s:>11.1f}{vs}"
              f"{flops[r.s.arch] / r.step_s / 1e9:>9.1f}{r.spread:>8.2f}{r.first_step_s:>14.1f}{delta_s}")
        results[name] = r
    for name, r in runners.items():
        if r.s.compile:
            print(f"  compile time {name}: first step {r.first_step_s:.1f} s vs {r.step_s:.2f} s per compiled step "
                  f"-> ~{r.first_step_s - r.step_s:.0f} s of compilation (graphs already compiled in this process "
                  f"for another setting, or in inductor's on-disk cache, are reused)")
    for name, r in runners.items():
        for arch in ("sn", "sa"):
            twin = runners.get(r.s.without(arch)) if getattr(r.s, arch) and not (r.s.sn and r.s.sa) else None
            if twin is not None:
                print(f"  {arch} cost ({twin.s.name} -> {name}): {r.step_s * 1e3:.0f} ms/step with {arch.upper()} vs "
                      f"{twin.step_s * 1e3:.0f} ms without = {r.step_s / twin.step_s:.2f}x the step time")
    print("  (vs eager: step-time ratio to eager with the same architecture; GFLOP/s: counted conv/matmul FLOPs "
          "per step / step time; step-1 loss Δ: largest relative difference of the first step's losses from "
          "eager's with the same seed and batch)")
    return results


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"CPU ({os.cpu_count()} cores, torch {torch.get_num_threads()} threads, {torch.backends.cpu.get_cpu_capability()})"


def summary(label: str, all_results: dict[str, dict], bs: int) -> None:
    for preset, res in all_results.items():
        plain = {k: r for k, r in res.items() if not (r.s.sn or r.s.sa)}
        if "eager" not in plain:
            print(f"summary {label} {preset}: no eager baseline")
            continue
        best = min(plain.values(), key=lambda r: r.step_s)
        e = plain["eager"]
        print(f"summary {label} {preset}: best = {best.s.name} at {best.step_s * 1e3:.0f} ms/step "
              f"({bs / best.step_s:.1f} phrases/s), {e.step_s / best.step_s:.2f}x eager "
              f"({e.step_s * 1e3:.0f} ms/step, {bs / e.step_s:.1f} phrases/s)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--presets", default="small,paper", help="comma-separated model presets (small,paper)")
    ap.add_argument("--steps", type=int, default=None,
                    help=f"timed steps per setting (default {', '.join(f'{k} {v}' for k, v in DEFAULT_STEPS.items())})")
    ap.add_argument("--warmup", type=int, default=1, help="untimed steps per setting first; compilation happens here (1)")
    ap.add_argument("--rounds", type=int, default=4, help="interleaved rounds the timed steps are split into (4)")
    ap.add_argument("--variants", default=None, help=f"settings to time on CPU (default {CPU_VARIANTS}); "
                    f"on a GPU {GPU_VARIANTS}")
    ap.add_argument("--gpu-variants", default=GPU_VARIANTS, help="settings to time on CUDA")
    ap.add_argument("--sn", action="store_true", help="also time every setting with spectral norm")
    ap.add_argument("--sa", action="store_true", help="also time every setting with self-attention")
    ap.add_argument("--no-cpu", action="store_true", help="skip the CPU measurements")
    ap.add_argument("--batch-size", type=int, default=16, help="phrases per genre per step (16, TrainConfig's default)")
    ap.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data" / "midi",
                    help="folder with jazz/ and classical/ MIDI files")
    args = ap.parse_args()
    presets = [p.strip() for p in args.presets.split(",") if p.strip()]
    for p in presets:
        model_preset(p)
    default_threads = torch.get_num_threads()

    with tempfile.TemporaryDirectory(prefix="train_speed_") as tmp:
        work = Path(tmp)
        t0 = time.perf_counter()
        for genre in ("jazz", "classical"):
            prepare([args.data / genre], genre, work / f"{genre}.h5", RollSettings(meter="lenient"))
        srcs = (GenreSource.parse(work / "jazz.h5"), GenreSource.parse(work / "classical.h5"))
        probe = CycleGANTask(srcs[0], srcs[1], work / "probe", TrainConfig(preset="paper", batch_size=args.batch_size), device="cpu")
        spe = probe.steps_per_epoch()
        bs = args.batch_size
        n_batches = min(8, spe)
        t1 = time.perf_counter()
        batches = [(probe.train_a.batch(np.arange(k * bs, (k + 1) * bs)), probe.train_b.batch(np.arange(k * bs, (k + 1) * bs)))
                   for k in range(n_batches)]
        load_s = (time.perf_counter() - t1) / n_batches
        print(f"torch {torch.__version__}; data: jazz (A) vs classical (B) from {args.data}, prepared in {t1 - t0:.1f} s; "
              f"{len(probe.train_a.rows)} training phrases per genre after balancing = {spe} steps/epoch at batch {bs}")
        print(f"one step = one batch of {bs} A phrases + {bs} B phrases (G update, then D update); "
              f"phrases/s = {bs} x steps / s (A-B pairs per second, as in log.csv); "
              f"loading a batch pair from HDF5 takes {load_s * 1e3:.1f} ms and is not in the timings")
        del probe

        cpu_results, gpu_results = {}, {}
        if not args.no_cpu:
            cpu = torch.device("cpu")
            settings = setting_list(args.variants or CPU_VARIANTS, args.sn, args.sa, cpu)
            for p in presets:
                cpu_results[p] = bench_preset(p, settings, srcs, batches, cpu, work, args, default_threads)

        if torch.cuda.is_available():
            gpu = torch.device("cuda")
            print(f"\nGPU: {torch.cuda.get_device_name(gpu)} (eager = fp32; the trainer itself uses bf16 autocast on CUDA)")
            settings = setting_list(args.gpu_variants, args.sn, args.sa, gpu)
            for p in presets:
                gpu_results[p] = bench_preset(p, settings, srcs, batches, gpu, work, args, default_threads)
                r = min((r for r in gpu_results[p].values() if not (r.s.sn or r.s.sa)), key=lambda r: r.step_s, default=None)
                if r is not None:
                    print(f"  measured on this GPU: 100 epochs of {p} = {spe} x 100 steps x {r.step_s * 1e3:.1f} ms "
                          f"({r.s.name}) = {spe * 100 * r.step_s / 60:.1f} min of steps (+ data loading, samples, checkpoints)")
        else:
            print("\nGPU: no CUDA device here (torch.cuda.is_available() is False); GPU timings skipped")

        # ---- H100 estimate
        flops, ops = step_flops("paper", bs)
        total = flops * spe * 100
        lo_rate, hi_rate = (H100_BF16_DENSE * u for u in H100_UTILISATION)
        t_hi, t_lo = total / lo_rate, total / hi_rate
        print("\nESTIMATE (not a measurement): paper preset, 100 epochs on one H100")
        print(f"  counted FLOPs of one paper step (batch {bs}, base variant, fwd+bwd of G and D updates, FlopCounterMode) "
              f"= {flops / 1e12:.3f} TFLOP; x {spe} steps/epoch x 100 epochs = {total / 1e15:.1f} PFLOP")
        print(f"  assuming bf16 dense peak {H100_BF16_DENSE / 1e12:.0f} TFLOP/s at {H100_UTILISATION[0]:.0%}-"
              f"{H100_UTILISATION[1]:.0%} sustained utilisation ({lo_rate / 1e12:.0f}-{hi_rate / 1e12:.0f} TFLOP/s): "
              f"{t_lo:.0f}-{t_hi:.0f} s of compute ({t_lo / 60:.1f}-{t_hi / 60:.1f} min), "
              f"{t_lo / spe / 100 * 1e3:.1f}-{t_hi / spe / 100 * 1e3:.1f} ms per step")
        launch = [ops * u for u in LAUNCH_US]
        print(f"  caveat: a step dispatches ~{ops} aten ops (fwd+bwd, optimiser excluded); at "
              f"{LAUNCH_US[0] * 1e6:.0f}-{LAUNCH_US[1] * 1e6:.0f} us each, eager mode alone needs "
              f"{launch[0] * 1e3:.0f}-{launch[1] * 1e3:.0f} ms per step = {launch[0] * spe * 100 / 60:.1f}-"
              f"{launch[1] * spe * 100 / 60:.1f} min per 100 epochs; batch loading as measured here adds "
              f"{load_s * spe * 100 / 60:.1f} min unless overlapped; per-epoch samples/checkpoints are extra")

        print()
        if cpu_results:
            summary("CPU", cpu_results, bs)
        if gpu_results:
            summary("GPU", gpu_results, bs)


if __name__ == "__main__":
    main()
