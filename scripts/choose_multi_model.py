"""Choose a multi-genre model from a run trained with ``--keep-epochs``, on its VALIDATION songs:
each epoch scored, each target genre's generator from its best epoch, thresholds calibrated.

    python scripts/choose_multi_model.py runs/four --out runs/four-chosen [--classifier DIR]
    python scripts/choose_multi_model.py runs/four-a runs/four-b --out runs/four-chosen   # several trainings of one split

The steps, each a script of its own that can be run by hand (README, "Any genre to any genre"):

1. ``benchmarks/multi_genre.py --part valid`` on every ``RUN/epochs/epoch_NNN`` (into
   ``OUT/epochs/epoch_NNN``, or ``OUT/RUN-NAME/epoch_NNN`` for several runs; the reference judge is trained once on the training songs into
   ``OUT/judge-reference`` unless ``--classifier`` gives one), each direction also at a grid of
   binarisation thresholds; an epoch already scored is kept;
2. ``scripts/combine_targets.py``: per target genre, the generator of the epoch that did best
   into it, each direction at its own best threshold, from any of the runs (into ``OUT/per-target``);
3. ``scripts/calibrate_thresholds.py``: a threshold per target genre and per direction (into
   ``OUT/model``).

The held-out songs are not read: score ``OUT/model`` with ``benchmarks/multi_genre.py``.
"""

from __future__ import annotations

import argparse
import json
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


def scored(results: Path) -> bool:
    """Whether an epoch's validation results are there, each direction with its threshold grid
    (results of an older benchmark, without one, are scored again)."""
    try:
        directions = json.loads(results.read_text())["directions"]
    except (OSError, ValueError, KeyError):
        return False
    return bool(directions) and all("grid" in d for d in directions)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("runs", type=Path, nargs="+", help="multi-genre run folders trained with --keep-epochs (several: "
                                                        "trainings of one song split)")
    ap.add_argument("--out", type=Path, required=True, help="folder for the scores and the chosen model (OUT/model)")
    ap.add_argument("--classifier", type=Path, help="a K-class classifier trained on the run's training songs "
                                                    "(default: train one into OUT/judge-reference)")
    ap.add_argument("--max-phrases", type=int, default=200, help="validation phrases per genre at most")
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()

    epochs = []
    for r in args.runs:
        found = sorted(p for p in (r / "epochs").glob("epoch_*") if (p / "model.json").is_file())
        if not found:
            raise SystemExit(f"error: {r} has no epochs/epoch_NNN folders; train it with --keep-epochs")
        epochs += [(p, (args.out / "epochs" if len(args.runs) == 1 else args.out / r.name) / p.name) for p in found]
    if len(args.runs) > 1 and len({r.name for r in args.runs}) < len(args.runs):
        raise SystemExit("error: the runs' folder names must differ")
    judge = args.classifier or args.out / "judge-reference"
    results = []
    for i, (epoch, out) in enumerate(epochs, 1):
        print(f"[{i}/{len(epochs)}] {epoch}", flush=True)
        if not scored(out / "results.json"):
            trains_judge = not (judge / "model.json").is_file() and not args.classifier
            run(ROOT / "benchmarks" / "multi_genre.py", "--model", epoch, "--out", args.out if trains_judge else out,
                "--part", "valid", "--max-phrases", args.max_phrases, "--threads", args.threads,
                *([] if trains_judge else ["--classifier", judge]))
            if trains_judge:  # the first epoch trained the judge into OUT/judge-reference; move its scores
                out.mkdir(parents=True, exist_ok=True)
                for name in ("results.json", "directions.csv", "heatmap.png"):
                    shutil.move(str(args.out / name), out / name)
        results.append(out / "results.json")
    run(ROOT / "scripts" / "combine_targets.py", *results, "--out", args.out / "per-target",
        *(["--log", args.runs[0] / "log.csv"] if len(args.runs) == 1 else []))
    run(ROOT / "scripts" / "calibrate_thresholds.py", args.out / "per-target", "--classifier", judge,
        "--out", args.out / "model", "--max-phrases", args.max_phrases, "--threads", args.threads)
    print(f"chosen model: {args.out / 'model'} (score it on the held-out songs with benchmarks/multi_genre.py)")


if __name__ == "__main__":
    main()
