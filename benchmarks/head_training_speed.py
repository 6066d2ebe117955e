"""How much faster is training the genre head from the embedding cache than re-encoding every epoch?

Seed 000's public code trained its genre head with the frozen wav2vec2 inside the training loop:
every epoch ran the encoder over every clip again, although a frozen encoder in eval mode gives
each clip the same embedding every time. ``audiogenre.embeddings`` encodes each clip once into an
HDF5 cache and trains the head on the stored vectors. This benchmark times both ways of getting
the same 20-epoch head, on the same clips, encoder and head.

Setup (nothing is downloaded)
    encoder   ``Wav2Vec2Model(random_wav2vec2_config("base"))``: the wav2vec2-base shape (conv
              feature encoder 7 x 512 channels, 12 transformer layers x 768), random weights,
              seeded, SDPA attention, wrapped as ``Wav2Vec2Backend(enc, name="random-base",
              layers=7)`` (the seed's 7 layers, mean+max pooling, frozen, eval mode). Random
              weights cost exactly what trained ones do.
    clips     ``--n`` (32) seeded 10 s clips written as 16-bit WAV files at ``--file-rate``
              (16 kHz) into a temporary folder: per genre (4 genres) a different mixture of
              low-pass filtered noise and a few amplitude-modulated sines.
    head      ``GenreHead(768, 4)`` with the same seed in both ways; ``HeadConfig`` defaults
              (AdamW 5e-4, weight decay 1e-5, StepLR(5, 0.5), batch 16, 20 epochs), no validation
              set and a huge patience, so all 20 epochs run in both.

What is timed
    cache     (ours) the real path, from the files: ``backend.describe()`` (which hashes the
              encoder's weights for the cache identity), ``EmbeddingCache.in_folder`` in a new
              temporary folder, ``encode_items`` over ``AudioItem`` objects (file hashing, reading
              with soundfile, the paper's preprocessing, the encoder at batch ``--batch``, the
              atomic HDF5 cache write), then ``train_head`` for 20 epochs on the embeddings.
    baseline  (the seed's loop) for each epoch, for each shuffled batch of 16 clips: the encoder
              forward, then the head's forward, backward and AdamW step; StepLR after each epoch.
              It is made *generous* to the baseline: the clips are read and preprocessed once
              before the clock starts (the seed's data loader re-read and re-resampled every file
              in every epoch), the encoder runs in eval mode under ``torch.no_grad()`` (the seed
              left it in train mode and built an autograd graph through it), with SDPA attention
              and only 7 layers, i.e. the baseline differs from ours *only* in encoding every
              epoch instead of once.

At base size on one CPU thread a 10 s clip takes about a second to encode, so 20 baseline epochs
of 32 clips take ~10+ minutes. Unless ``--baseline-epochs`` is given, the baseline's first epoch
is timed, then as many epochs as fit in ``--baseline-budget`` seconds (all 20 when they fit) are
measured, and the 20-epoch time is extrapolated linearly from the measured epochs (every epoch
does the same work: the same clips through the same encoder); the output says when it is.

Both ways follow the same random stream (same head initialisation, same shuffling, same dropout
draws), so their per-epoch training losses must agree up to float rounding of the encoder at
different batch compositions: printed as a check that the two produce the same model.

PASS when the 20-epoch baseline takes at least 10x the cache way. Also printed: the projection of
the seed's FMA-small setting (6,400 training clips x 20 epochs) on this CPU from the measured
per-clip times, for both ways.

Run from the repo root (one thread, as the house benchmarks on this shared 2-core machine):
    OMP_NUM_THREADS=1 python benchmarks/head_training_speed.py [--n 32] [--baseline-epochs E]
                                                               [--baseline-budget 240]
"""

from __future__ import annotations

import argparse
import math
import os
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

TARGET_RATIO = 10.0
GENRES = ("blues", "classical", "jazz", "rock")
FMA_TRAIN_CLIPS = 6_400  # FMA-small: 8,000 tracks, 80 % in the training split


def make_clip(rng: np.random.Generator, genre: int, seconds: float, rate: int) -> np.ndarray:
    """A seeded 'random-ish' clip: low-pass filtered noise + amplitude-modulated sines, per-genre band."""
    from scipy.signal import butter, sosfilt

    n = int(round(seconds * rate))
    t = np.arange(n) / rate
    cutoff = (600.0, 1500.0, 3000.0, 6000.0)[genre] * rng.uniform(0.8, 1.2)
    sos = butter(4, min(cutoff, 0.45 * rate), fs=rate, output="sos")
    x = 0.3 * sosfilt(sos, rng.standard_normal(n))
    for _ in range(3 + genre):
        f = rng.uniform(80.0, 400.0) * (1 + genre)
        am = 0.5 + 0.5 * np.sin(2 * np.pi * rng.uniform(0.5, 4.0) * t + rng.uniform(0, 2 * np.pi))
        x += 0.15 * am * np.sin(2 * np.pi * f * t + rng.uniform(0, 2 * np.pi))
    x *= 0.5 / max(1e-9, np.max(np.abs(x)))
    return x.astype(np.float32)


def build_backend(seed: int):
    from transformers import Wav2Vec2Model

    from audiogenre.models import Wav2Vec2Backend, random_wav2vec2_config

    torch.manual_seed(seed)
    enc = Wav2Vec2Model(random_wav2vec2_config("base"))
    return Wav2Vec2Backend(enc, name="random-base", layers=7)


def new_head(dim: int, cfg, seed: int):
    from audiogenre.models import GenreHead

    torch.manual_seed(seed)
    return GenreHead(dim, len(GENRES), hidden=cfg.hidden, dropout=cfg.dropout)


def run_cache(backend, items, labels, pre, cfg, head_seed: int, batch: int, work: Path) -> dict:
    """The package's path: describe → EmbeddingCache → encode_items → train_head (timed in parts)."""
    from audiogenre.embeddings import EmbeddingCache, encode_items, train_head

    t0 = time.perf_counter()
    info = backend.describe()
    cache = EmbeddingCache.in_folder(work / "cache", info, pre)
    t1 = time.perf_counter()
    emb, ok = encode_items(backend, items, pre, cache=cache, batch_size=batch, progress=False, on_error="raise")
    t2 = time.perf_counter()
    head = new_head(emb.shape[1], cfg, head_seed)
    t3 = time.perf_counter()
    history, _ = train_head(head, emb, labels[ok], None, None, cfg)
    t4 = time.perf_counter()
    return {"describe_s": t1 - t0, "encode_s": t2 - t1, "train_s": t4 - t3, "total_s": (t2 - t0) + (t4 - t3),
            "emb": emb, "losses": [h["train_loss"] for h in history], "cache_file": cache.path}


def run_baseline(backend, waves: torch.Tensor, labels: np.ndarray, cfg, head_seed: int, epochs: int | None,
                 budget: float) -> dict:
    """The seed's loop (made generous: clips in memory, encoder in eval mode under no_grad)."""
    from torch.nn import functional as F

    head = new_head(backend.dim, cfg, head_seed)
    torch.manual_seed(cfg.seed)  # what train_head does, so both ways draw the same dropout masks
    gen = torch.Generator().manual_seed(cfg.seed)
    yt = torch.from_numpy(labels.astype(np.int64))
    opt = torch.optim.AdamW(head.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    sched = torch.optim.lr_scheduler.StepLR(opt, step_size=cfg.step_size, gamma=cfg.gamma)
    backend.eval()
    epoch_s, enc_s, losses = [], 0.0, []
    first_emb = torch.zeros(len(waves), backend.dim)
    planned = epochs
    epoch = 0
    while planned is None or epoch < planned:
        epoch += 1
        t0 = time.perf_counter()
        head.train()
        order = torch.randperm(len(waves), generator=gen)
        total, seen = 0.0, 0
        for b0 in range(0, len(order), cfg.batch_size):
            sel = order[b0:b0 + cfg.batch_size]
            te = time.perf_counter()
            with torch.no_grad():
                emb = backend(waves[sel])
            enc_s += time.perf_counter() - te
            if epoch == 1:
                first_emb[sel] = emb
            logits = head(emb)
            loss = F.cross_entropy(logits, yt[sel])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            total += float(loss.detach()) * len(sel)
            seen += len(sel)
        sched.step()
        losses.append(total / seen)
        epoch_s.append(time.perf_counter() - t0)
        print(f"  baseline epoch {epoch}: {epoch_s[-1]:.1f} s", flush=True)
        if planned is None:  # decide after the first epoch how many fit in the budget
            planned = max(1, min(cfg.epochs, int(budget // epoch_s[0])))
            print(f"  -> measuring {planned} of {cfg.epochs} baseline epochs "
                  f"({'all' if planned == cfg.epochs else 'the rest extrapolated'}; budget {budget:.0f} s)", flush=True)
    return {"epoch_s": epoch_s, "enc_s": enc_s, "losses": losses, "first_emb": first_emb.numpy()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=32, help="training clips (32)")
    ap.add_argument("--seconds", type=float, default=10.0, help="clip length in seconds (10, the seed's)")
    ap.add_argument("--file-rate", type=int, default=16_000, help="sample rate of the WAV files written (16000)")
    ap.add_argument("--batch", type=int, default=16, help="encoder batch size of both ways (16, the seed's)")
    ap.add_argument("--epochs", type=int, default=20, help="head epochs (20, the seed's)")
    ap.add_argument("--baseline-epochs", type=int, default=None,
                    help="baseline epochs to measure (default: as many as fit in --baseline-budget, at most --epochs)")
    ap.add_argument("--baseline-budget", type=float, default=240.0,
                    help="seconds the baseline may take when --baseline-epochs is not given (240)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=1, help="torch threads (1)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)

    import soundfile as sf
    from transformers.utils import logging as hf_logging

    from audiogenre.audio import Preprocess, load_clip
    from audiogenre.datasets import AudioItem
    from audiogenre.embeddings import HeadConfig

    hf_logging.set_verbosity_error()
    cfg = HeadConfig(epochs=args.epochs, batch_size=16, patience=10**9)
    pre = Preprocess(seconds=args.seconds)
    head_seed = args.seed + 1

    with tempfile.TemporaryDirectory(prefix="head_speed_") as tmp:
        work = Path(tmp)
        rng = np.random.default_rng(args.seed)
        items, labels = [], []
        for i in range(args.n):
            g = i % len(GENRES)
            path = work / "clips" / GENRES[g] / f"clip{i:04d}.wav"
            path.parent.mkdir(parents=True, exist_ok=True)
            sf.write(str(path), make_clip(rng, g, args.seconds, args.file_rate), args.file_rate, subtype="PCM_16")
            items.append(AudioItem(path=path, genre=GENRES[g], split="train", group=str(i)))
            labels.append(g)
        labels = np.array(labels)

        t0 = time.perf_counter()
        backend = build_backend(args.seed)
        n_params = sum(p.numel() for p in backend.parameters())
        print(f"torch {torch.__version__}, {torch.get_num_threads()} thread(s), OMP_NUM_THREADS="
              f"{os.environ.get('OMP_NUM_THREADS', 'unset')}; encoder: random wav2vec2-base shape, {backend.layers} of 12 "
              f"layers kept ({n_params / 1e6:.1f} M parameters), SDPA, built in {time.perf_counter() - t0:.1f} s")
        print(f"data: {args.n} clips x {args.seconds:g} s, {len(GENRES)} genres, 16-bit WAV at {args.file_rate} Hz; "
              f"head: {cfg.epochs} epochs, batch {cfg.batch_size}, AdamW {cfg.lr:g}, StepLR({cfg.step_size}, {cfg.gamma})")

        # the baseline's clips, read and preprocessed before its clock starts (generous to it)
        waves = torch.from_numpy(np.stack([load_clip(it.path, pre) for it in items]))
        with torch.no_grad():  # warm-up: first-call allocations and oneDNN set-up, for neither way's clock
            t0 = time.perf_counter()
            backend(waves[:args.batch])
            print(f"warm-up forward of {min(args.batch, args.n)} clips: {time.perf_counter() - t0:.1f} s\n", flush=True)

        print("ours: encode once into the embedding cache, then train the head from it", flush=True)
        ours = run_cache(backend, items, labels, pre, cfg, head_seed, args.batch, work)
        print(f"  describe (weights hash) {ours['describe_s']:.1f} s + encode_items {ours['encode_s']:.1f} s "
              f"+ train_head {ours['train_s']:.2f} s = {ours['total_s']:.1f} s "
              f"(cache {ours['cache_file'].stat().st_size / 1e3:.0f} kB)\n", flush=True)

        print("baseline: the encoder inside every epoch (seed's loop; clips in memory, eval, no_grad)", flush=True)
        base = run_baseline(backend, waves, labels, cfg, head_seed, args.baseline_epochs, args.baseline_budget)

    e_meas = len(base["epoch_s"])
    meas_s = sum(base["epoch_s"])
    base_s = meas_s * cfg.epochs / e_meas
    extrapolated = e_meas < cfg.epochs
    ratio = base_s / ours["total_s"]

    # same model check: embeddings and per-epoch losses
    emb_diff = float(np.max(np.abs(ours["emb"] - base["first_emb"])) / np.max(np.abs(ours["emb"])))
    loss_diff = max(abs(a - b) for a, b in zip(ours["losses"], base["losses"]))
    print(f"\ncheck: largest embedding difference cache vs baseline {emb_diff:.1e} (relative to the largest value); "
          f"training loss of epochs 1-{e_meas}: largest difference {loss_diff:.1e} "
          f"(epoch 1: cache {ours['losses'][0]:.5f}, baseline {base['losses'][0]:.5f})")

    print(f"\n{'way':<58}{'seconds':>10}")
    print(f"{'ours: cache (describe + encode_items + train_head x ' + str(cfg.epochs) + ')':<58}{ours['total_s']:>10.1f}")
    label = f"baseline: {cfg.epochs} epochs re-encoding" + (f" (extrapolated from {e_meas})" if extrapolated else "")
    print(f"{label:<58}{base_s:>10.1f}")
    if extrapolated:
        print(f"  measured: {e_meas} epoch(s) in {meas_s:.1f} s ({meas_s / e_meas:.1f} s/epoch, epochs "
              f"{', '.join(f'{s:.1f}' for s in base['epoch_s'])} s); x {cfg.epochs}/{e_meas} -> {base_s:.1f} s. "
              f"EXTRAPOLATED, not measured for all {cfg.epochs} epochs")
    print(f"ratio: baseline / ours = {ratio:.1f}x")

    # FMA-small projection from measured per-clip times
    enc_clip_base = base["enc_s"] / (e_meas * args.n)  # encoder forward per clip in the seed's loop
    head_clip_base = (meas_s - base["enc_s"]) / (e_meas * args.n)  # head step share per clip-epoch
    encode_clip_ours = (ours["describe_s"] + ours["encode_s"]) / args.n  # incl. reading, hashing, cache write
    head_clip_ours = ours["train_s"] / (cfg.epochs * args.n)
    n = FMA_TRAIN_CLIPS
    seed_fma = n * cfg.epochs * (enc_clip_base + head_clip_base)
    ours_fma = n * encode_clip_ours + n * cfg.epochs * head_clip_ours
    print(f"\nprojection (not a measurement), the seed's FMA-small setting on this CPU: {n:,} training clips x "
          f"{cfg.epochs} epochs")
    print(f"  measured per clip: encoder forward {enc_clip_base:.3f} s (baseline loop), head step "
          f"{head_clip_base * 1e3:.2f} ms per clip-epoch; cache way {encode_clip_ours:.3f} s per clip to encode "
          f"(reading, hashing, preprocessing, cache write; weights hash spread over {args.n} clips), "
          f"{head_clip_ours * 1e3:.3f} ms per clip-epoch of head training")
    print(f"  seed's loop: {n:,} x {cfg.epochs} x {enc_clip_base + head_clip_base:.3f} s = {seed_fma / 3600:.1f} h; "
          f"ours: {n:,} x {encode_clip_ours:.3f} s + {cfg.epochs} epochs of head = {ours_fma / 3600:.2f} h "
          f"({seed_fma / ours_fma:.1f}x); validation clips (re-encoded every epoch by the seed too) not counted")

    verdict = "PASS" if ratio >= TARGET_RATIO else "FAIL"
    print(f"\n{verdict}: cache way is {ratio:.1f}x faster than re-encoding every epoch (target >= {TARGET_RATIO:.0f}x)"
          + (f"; baseline extrapolated from {e_meas} of {cfg.epochs} epochs" if extrapolated else ""))
    if not math.isfinite(ratio):
        raise SystemExit(1)


if __name__ == "__main__":
    main()
