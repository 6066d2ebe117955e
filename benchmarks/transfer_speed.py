"""How long does a whole-song transfer take with the default model?

Picks the real jazz song from ``../shared/data/midi/jazz`` whose length is closest to
``--seconds`` (3 minutes by default) and times, best of ``--repeat`` runs:

* ``load``      reading the model (safetensors + JSON) and building the generators
* ``transfer``  ``transfer_midi``: parse, cut into phrases (tail padded), run every phrase
                through the generator in batches, stitch, and build the output MIDI object
* ``write``     writing the MIDI file
* ``cli``       the whole command ``genre midi transfer SONG --to classical -o OUT.mid`` in a
                fresh process (Python start-up and the torch import included)

and prints the ratio to the target (2 s on this machine's 2 cores). Run from the repo root:

    python benchmarks/transfer_speed.py [--model data/models/jazz-classical-melody] [--seconds 180]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
TARGET_S = 2.0


def pick_song(folder: Path, seconds: float) -> tuple[Path, float]:
    from symusic import Score

    from midigenre.pianoroll import check_meter

    best = None
    for p in sorted(folder.glob("*.mid")):
        score = Score(str(p), ttype="second")
        if check_meter([(0, t.numerator, t.denominator) for t in score.time_signatures], "lenient"):
            continue  # not 4/4: the model would refuse it
        dur = score.end()
        if best is None or abs(dur - seconds) < abs(best[1] - seconds):
            best = (p, dur)
    if best is None:
        raise SystemExit(f"no MIDI files in {folder}")
    return best


def best_of(repeat: int, fn):
    times, out = [], None
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return min(times), out


def main() -> None:
    from midigenre.transfer import DEFAULT_MODEL

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", type=Path, default=DEFAULT_MODEL)
    ap.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data" / "midi" / "jazz")
    ap.add_argument("--seconds", type=float, default=180.0, help="length of the song to pick (180)")
    ap.add_argument("--to", default=None, help="target genre (default: the model's genre B)")
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()

    import torch

    from midigenre.pianoroll import write_midi
    from midigenre.transfer import TransferModel, transfer_midi

    song, dur = pick_song(args.data, args.seconds)
    t_load, model = best_of(args.repeat, lambda: TransferModel.load(args.model))
    target = args.to or model.genres["b"]
    transfer_midi(song, model, target)  # warm-up (first-call allocations)
    t_transfer, res = best_of(args.repeat, lambda: transfer_midi(song, model, target))
    n_phrases = -(-len(res.source) // res.settings.phrase_steps)
    with tempfile.TemporaryDirectory() as tmp:
        t_write, _ = best_of(args.repeat, lambda: write_midi(res.midi(), Path(tmp) / "out.mid"))
        cmd = [sys.executable, "-m", "cli", "midi", "transfer", str(song), "--model", str(args.model), "--to", target,
               "-o", str(Path(tmp) / "cli.mid")]
        t_cli, proc = best_of(max(1, args.repeat // 2), lambda: subprocess.run(cmd, capture_output=True, text=True, cwd=REPO))
        if proc.returncode:
            raise SystemExit(f"the CLI failed: {proc.stderr.strip()}")

    arch = model.meta["config"]
    print(f"song: {song.name}, {dur:.0f} s, {len(res.source) / res.settings.steps_per_bar:.0f} bars, {n_phrases} phrases; "
          f"model {args.model} (g_channels {arch['g_channels']}, {arch['n_res_blocks']} residual blocks"
          f"{', SN' if arch['spectral_norm'] else ''}{', SA' if arch['self_attention'] else ''}); "
          f"torch {torch.__version__}, {torch.get_num_threads()} threads\n")
    rows = [("load model", t_load), ("transfer (parse, generate, stitch)", t_transfer), ("write MIDI", t_write),
            ("API total (transfer + write)", t_transfer + t_write), ("CLI, fresh process", t_cli)]
    for name, t in rows:
        print(f"  {name:<36}{t:8.3f} s")
    api = t_transfer + t_write
    print(f"\nwhole-song transfer: {api:.3f} s in the API = {TARGET_S / api:.1f}x under the {TARGET_S:.0f} s target; "
          f"the CLI end to end takes {t_cli:.2f} s ({TARGET_S / t_cli:.1f}x under the target)")


if __name__ == "__main__":
    main()
