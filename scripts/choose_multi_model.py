"""Choose a multi-genre model from a run trained with ``--keep-epochs``, on its VALIDATION songs:
each epoch scored, each target genre's generator from its best epoch, thresholds calibrated.

    python scripts/choose_multi_model.py runs/four --out runs/four-chosen [--classifier DIR]

The steps, each a script of its own that can be run by hand (README, "Any genre to any genre"):

1. ``benchmarks/multi_genre.py --part valid`` on every ``RUN/epochs/epoch_NNN`` (into
   ``OUT/epochs/epoch_NNN``; the reference judge is trained once on the training songs into
   ``OUT/judge-reference`` unless ``--classifier`` gives one); an epoch already scored is kept;
2. ``scripts/combine_targets.py``: per target genre, the generator of the epoch that did best
   into it (into ``OUT/per-target``);
3. ``scripts/calibrate_thresholds.py``: a threshold per target genre (into ``OUT/model``).

The held-out songs are not read: score ``OUT/model`` with ``benchmarks/multi_genre.py``.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def run(*args) -> None:
    cmd = [sys.executable, *map(str, args)]
    print("$ " + " ".join(cmd[1:]), flush=True)
    if subprocess.run(cmd).returncode != 0:
        raise SystemExit(f"error: {Path(str(args[0])).name} failed (see above)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("run", type=Path, help="a multi-genre run folder trained with --keep-epochs")
    ap.add_argument("--out", type=Path, required=True, help="folder for the scores and the chosen model (OUT/model)")
    ap.add_argument("--classifier", type=Path, help="a K-class classifier trained on the run's training songs "
                                                    "(default: train one into OUT/judge-reference)")
    ap.add_argument("--max-phrases", type=int, default=200, help="validation phrases per genre at most")
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()

    epochs = sorted(p for p in (args.run / "epochs").glob("epoch_*") if (p / "model.json").is_file())
    if not epochs:
        raise SystemExit(f"error: {args.run} has no epochs/epoch_NNN folders; train it with --keep-epochs")
    judge = args.classifier or args.out / "judge-reference"
    results = []
    for i, epoch in enumerate(epochs, 1):
        out = args.out / "epochs" / epoch.name
        print(f"[{i}/{len(epochs)}] {epoch}", flush=True)
        if not (out / "results.json").is_file():
            trains_judge = not (judge / "model.json").is_file() and not args.classifier
            run(ROOT / "benchmarks" / "multi_genre.py", "--model", epoch, "--out", args.out if trains_judge else out,
                "--part", "valid", "--max-phrases", args.max_phrases, "--threads", args.threads,
                *([] if trains_judge else ["--classifier", judge]))
            if trains_judge:  # the first epoch trained the judge into OUT/judge-reference; move its scores
                out.mkdir(parents=True, exist_ok=True)
                for name in ("results.json", "directions.csv", "heatmap.png"):
                    shutil.move(str(args.out / name), out / name)
        results.append(out / "results.json")
    run(ROOT / "scripts" / "combine_targets.py", *results, "--out", args.out / "per-target", "--log", args.run / "log.csv")
    run(ROOT / "scripts" / "calibrate_thresholds.py", args.out / "per-target", "--classifier", judge,
        "--out", args.out / "model", "--max-phrases", args.max_phrases, "--threads", args.threads)
    print(f"chosen model: {args.out / 'model'} (score it on the held-out songs with benchmarks/multi_genre.py)")


if __name__ == "__main__":
    main()
