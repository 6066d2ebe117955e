"""Success rate and SNR of the gradient-guided transformation on whole rendered songs.

Takes a trained audio classifier and a rendered data set (``genre audio render-dataset``),
picks ``--songs`` held-out songs (test split, spread over the genres), renders ``--seconds``
of each with FluidSynth at 44.1 kHz stereo, and transforms each toward the next genre of the
classifier's list (a genre other than its own). Everything is measured on the written
output (PCM 16-bit WAV at the song's rate, re-read and re-classified):

* success: the song's mean genre probability now ranks the target first; per window too;
* p(target) before → after (mean over windows);
* SNR of the change in dB (whole song, all channels).

Example::

    python benchmarks/transform_quality.py --classifier clf/ --dataset audio/ --songs 8
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--classifier", required=True)
    ap.add_argument("--dataset", required=True, help="render-dataset folder (manifest.json names the MIDI songs)")
    ap.add_argument("--songs", type=int, default=8)
    ap.add_argument("--seconds", type=float, default=30.0)
    ap.add_argument("--steps", type=int, default=60)
    ap.add_argument("--lr", type=float, default=2e-4)
    ap.add_argument("--lam", type=float, default=1.0)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--json", help="write the per-song results here")
    args = ap.parse_args()

    import torch

    from audiogenre.audio import load_audio, write_audio
    from audiogenre.models import AudioClassifier
    from audiogenre.render import render_file
    from audiogenre.transform import TransformConfig, transform_audio, default_windows

    torch.set_num_threads(args.threads)
    model, meta = AudioClassifier.load(args.classifier)
    window, overlap = default_windows(float(meta["settings"]["seconds"]))  # as `genre audio transform` does
    man = json.loads((Path(args.dataset) / "manifest.json").read_text())
    source = Path(man["source"])
    test = [c for c in man["clips"] if c["split"] == "test" and c["genre"] in model.genres]
    by_genre: dict[str, list] = {}
    for c in test:
        by_genre.setdefault(c["genre"], []).append(c)
    picks = []
    while len(picks) < args.songs and any(by_genre.values()):
        for g in sorted(by_genre):
            if by_genre[g] and len(picks) < args.songs:
                picks.append(by_genre[g].pop(0))
    cfg = TransformConfig(lam=args.lam, lr=args.lr, steps=args.steps, window=window, overlap=overlap)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for k, c in enumerate(picks):
            target = model.genres[(model.genres.index(c["genre"]) + 1) % len(model.genres)]
            start = max(0.0, c["song_start"] - args.seconds / 2)
            wave = render_file(source / c["song"], rate=44100, start=start, seconds=args.seconds)
            src = Path(tmp) / f"song{k}.wav"
            write_audio(src, wave, 44100)
            audio = load_audio(src)
            t0 = time.perf_counter()
            out, rep, _ = transform_audio(model, audio, target, cfg, progress=False)
            dt = time.perf_counter() - t0
            dst = Path(tmp) / f"song{k}_out.wav"
            write_audio(dst, out, audio.rate)
            # re-measure on the file as written (16-bit PCM)
            from audiogenre.transform import _probabilities, windows
            from audiogenre.audio import SAMPLE_RATE, resample, to_mono

            written = load_audio(dst)
            mono = np.clip(resample(to_mono(written.samples), written.rate, SAMPLE_RATE), -1, 1)
            bounds = windows(len(mono), SAMPLE_RATE, cfg.window, cfg.overlap)
            p = _probabilities(model, [mono[s:e] for s, e in bounds], "cpu")
            t = model.genres.index(target)
            row = {"song": c["song"], "genre": c["genre"], "target": target, "p_before": rep.p_before,
                   "p_after_file": float(p[:, t].mean()), "genre_before": rep.genre_before,
                   "genre_after_file": model.genres[int(p.mean(0).argmax())],
                   "window_success": float(np.mean(p.argmax(1) == t)), "snr_db": rep.snr_db,
                   "steps": [w.steps for w in rep.windows], "seconds": dt}
            rows.append(row)
            print(f"{c['song'][:38]:<38} {c['genre']:>9} → {target:<9} p {row['p_before']:.3f} → {row['p_after_file']:.3f}  "
                  f"{row['genre_before']:>9} → {row['genre_after_file']:<9} windows {row['window_success']:4.0%}  "
                  f"SNR {row['snr_db']:5.1f} dB  steps {row['steps']}  {dt:5.1f} s", flush=True)
    succ = np.mean([r["genre_after_file"] == r["target"] for r in rows])
    print(f"\n{len(rows)} songs of {args.seconds:g} s: success {succ:.0%} (song-level, on the written files); "
          f"windows {np.mean([r['window_success'] for r in rows]):.0%}; "
          f"p(target) {np.mean([r['p_before'] for r in rows]):.3f} → {np.mean([r['p_after_file'] for r in rows]):.3f}; "
          f"SNR median {np.median([r['snr_db'] for r in rows]):.1f} dB (min {min(r['snr_db'] for r in rows):.1f}); "
          f"λ={args.lam}, lr={args.lr}, ≤{args.steps} steps per window")
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
