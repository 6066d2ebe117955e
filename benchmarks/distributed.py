"""Distributed CycleGAN training (DistributedDataParallel, gloo) against one process, on this CPU.

Measured here, in one run, with the same global batch (``--batch-size`` phrases of each genre per
step) and the same data (two prepared caches):

  1 process, 1 thread       the plain trainer (no process group)
  1 process, N threads      the same CPU cores given to one process instead
  N processes × 1 thread    DistributedDataParallel over gloo (what --nproc N does)

Each configuration runs in fresh processes, takes ``--warmup`` steps and then times ``--steps``
steps of the real trainer (``CycleGANTask.train_step``: batch reading, G and D updates, the
gradient all-reduce) between two barriers. It prints steps/s, phrases/s and the ratio to the
1-process run, then the gradient bytes each process sends per step and, **as an estimate and not
a measurement**, the speed-up to expect on N GPUs from that volume, from the FLOPs of one step
(counted here by torch's FlopCounterMode) and a stated sustained GPU speed and link bandwidth.

    nice -n 10 python benchmarks/distributed.py --a /work/exp/jazz.h5 --b /work/exp/classical.h5

On a machine whose cores are busy with other jobs the N-process numbers show the contention,
not DDP; the script says how many cores it saw and how loaded they were.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def _worker(args: dict, result: str) -> None:
    """One process: build the trainer, warm up, time the steps, rank 0 writes the numbers."""
    import torch

    from midigenre.train import CycleGANTask, GenreSource, TrainConfig
    from shared import distributed

    torch.set_num_threads(args["threads"])
    cfg = TrainConfig(preset=args["preset"], batch_size=args["batch"], epochs=1, seed=0)
    with tempfile.TemporaryDirectory() as out:
        task = CycleGANTask(GenreSource.parse(args["a"]), GenreSource.parse(args["b"]), out, cfg, device="cpu",
                            precision="fp32")
        dist = task.dist
        batches = task.batches(0)
        need = args["warmup"] + args["steps"]
        if len(batches) < need:
            raise SystemExit(f"only {len(batches)} steps in an epoch; use fewer --steps or a smaller --batch-size")
        for b in batches[:args["warmup"]]:
            task.train_step(dist.shard(b))
        dist.barrier()
        t0 = time.perf_counter()
        for b in batches[args["warmup"]:need]:
            task.train_step(dist.shard(b))
        dist.barrier()
        seconds = time.perf_counter() - t0
        if dist.main:
            g = sum(p.numel() for net in task.model.generators() for p in net.parameters())
            d = sum(p.numel() for net in task.model.discriminators() for p in net.parameters())
            Path(result).write_text(json.dumps({"seconds": seconds, "g_params": g, "d_params": d}))
    distributed.finish()


def _run(args: dict, nproc: int) -> dict:
    from shared.distributed import launch

    with tempfile.NamedTemporaryFile(suffix=".json", delete=False) as fh:
        path = fh.name
    try:
        if nproc == 1:  # the plain trainer, in a fresh process of its own like the others
            import multiprocessing as mp

            p = mp.get_context("spawn").Process(target=_worker, args=(args, path))
            p.start()
            p.join()
            if p.exitcode:
                raise SystemExit(p.exitcode)
        else:
            launch(_worker, nproc, args, path, threads=args["threads"])
        return json.loads(Path(path).read_text())
    finally:
        os.unlink(path)


def _flops_per_step(preset: str, batch: int) -> float:
    """FLOPs of one generator + discriminator update of ``batch`` phrases per genre (forward and backward)."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    from midigenre.config import TrainConfig
    from midigenre.cyclegan import CycleGAN, discriminator_losses, generator_losses, weighted

    cfg = TrainConfig(preset=preset)
    m = CycleGAN(cfg.model)
    a = (torch.rand(batch, 1, 64, 84) > 0.9).float()
    b = (torch.rand(batch, 1, 64, 84) > 0.9).float()
    with FlopCounterMode(display=False) as counter:
        g, fa, fb = generator_losses(m, a, b, 1.0)
        weighted(g, cfg.weights).backward()
        d = discriminator_losses(m, a, b, fa.detach(), fb.detach(), None, 1.0)
        weighted(d, cfg.weights).backward()
    return float(counter.get_total_flops())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--a", default="/work/exp/jazz.h5")
    ap.add_argument("--b", default="/work/exp/classical.h5")
    ap.add_argument("--preset", default="small")
    ap.add_argument("--batch-size", type=int, default=16, dest="batch", help="global batch (phrases of each genre per step)")
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--nproc", type=int, default=2)
    ap.add_argument("--gpu-tflops", type=float, default=50.0,
                    help="assumed sustained GPU speed for the estimate (TFLOP/s; bf16 convolutions of this size)")
    ap.add_argument("--json", help="write the results here")
    opt = ap.parse_args()
    n = opt.nproc
    base = {"a": opt.a, "b": opt.b, "preset": opt.preset, "batch": opt.batch, "steps": opt.steps, "warmup": opt.warmup}
    load = os.getloadavg()[0]
    print(f"CycleGAN preset {opt.preset}, global batch {opt.batch} phrases of each genre, {opt.steps} timed steps; "
          f"{os.cpu_count()} cores, load average {load:.1f} at the start")
    rows = []
    for label, nproc, threads in (("1 process, 1 thread", 1, 1), (f"1 process, {n} threads", 1, n),
                                  (f"{n} processes x 1 thread (DDP, gloo)", n, 1)):
        r = _run({**base, "threads": threads}, nproc)
        sps = opt.steps / r["seconds"]
        rows.append({"config": label, "processes": nproc, "threads": threads, "steps_per_s": sps,
                     "phrases_per_s": sps * opt.batch, **r})
    ref = rows[0]["steps_per_s"]
    print(f"\n{'configuration':<36}{'steps/s':>9}{'phrases/s':>11}{'vs 1 process':>14}")
    for r in rows:
        print(f"{r['config']:<36}{r['steps_per_s']:>9.2f}{r['phrases_per_s']:>11.1f}{r['steps_per_s'] / ref:>13.2f}x")

    g, d = rows[0]["g_params"], rows[0]["d_params"]
    grad_bytes = 4 * (g + d)  # fp32 gradients, one all-reduce of G's and one of D's per step
    ring = 2 * (n - 1) / n * grad_bytes  # what a ring all-reduce sends (and receives) per process
    print(f"\ngradient all-reduce per step: {grad_bytes / 1e6:.2f} MB of fp32 gradients (G {g / 1e6:.2f} M, "
          f"D {d / 1e6:.2f} M parameters); a ring all-reduce over {n} processes sends {ring / 1e6:.2f} MB per process")

    out = {"preset": opt.preset, "batch": opt.batch, "steps": opt.steps, "cores": os.cpu_count(), "load": load,
           "rows": rows, "gradient_bytes": grad_bytes}
    print("\nESTIMATE for GPUs (not measured here; no GPU on this machine):")
    for preset in dict.fromkeys([opt.preset, "paper"]):
        from midigenre.config import TrainConfig
        from midigenre.cyclegan import CycleGAN

        m = CycleGAN(TrainConfig(preset=preset).model)
        nbytes = 4 * sum(p.numel() for p in m.parameters())
        per_gpu_batch = 16
        flops = _flops_per_step(preset, per_gpu_batch)
        t_c = flops / (opt.gpu_tflops * 1e12)
        print(f"  preset {preset}: {nbytes / 1e6:.1f} MB of gradients per step; {flops / 1e9:.1f} GFLOP per step of "
              f"{per_gpu_batch} phrases/genre/GPU -> {t_c * 1e3:.2f} ms at an assumed {opt.gpu_tflops:g} TFLOP/s")
        for link, gbs, lat in (("NVLink (~150 GB/s all-reduce bus bandwidth)", 150, 30e-6),
                               ("PCIe 4.0 (~15 GB/s)", 15, 30e-6), ("between machines, 100 Gb/s Ethernet (~10 GB/s)", 10, 100e-6)):
            line = []
            for k in (2, 4, 8):
                t_m = 2 * (k - 1) / k * nbytes / (gbs * 1e9) + 2 * lat * max(1, nbytes // 25_000_000 + 1)
                line.append(f"{k} GPUs {k * t_c / (t_c + t_m):.1f}x")  # no overlap of compute and communication
            print(f"    {link}: " + ", ".join(line))
            out.setdefault("estimate", []).append({"preset": preset, "link": link, "flops_per_step": flops,
                                                   "gradient_bytes": nbytes, "speedups": line})
    print("  (weak scaling, batch 16 per GPU so the global batch grows with the GPUs; speed-up = N·t_compute / "
          "(t_compute + t_all-reduce), all-reduce not overlapped with the backward pass: a lower bound for DDP, "
          "which overlaps them bucket by bucket)")
    if opt.json:
        Path(opt.json).write_text(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
