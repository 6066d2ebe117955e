"""Choose, per target genre, the multi-genre model (e.g. the epoch) whose transfers INTO that genre
did best on the VALIDATION songs, and join the chosen generators into one model.

One generator serves every target, and its best epoch for one target is rarely the best for
another (run 6 of issue 12: the transfers into classical peak after epoch 1, into pop after
epoch 6). Give the ``results.json`` of ``benchmarks/multi_genre.py --part valid`` for each
candidate (each epoch folder of a run trained with ``--keep-epochs``):

    python scripts/combine_targets.py runs/four-ep*-valid/results.json --out runs/four-per-target

Per target genre t, the candidate with the most directions into t that meet the target of
issue 12 (share classified as t > 0.5 and transposition-invariant content change ≤ 1.2) wins;
ties go to the higher mean of (share − content change above 1.2) over the sources. Where the
results hold each direction at a grid of binarisation thresholds (``benchmarks/multi_genre.py
--part valid`` writes one), a direction is scored at its own best threshold, as
``scripts/calibrate_thresholds.py`` will binarise it: it meets the target if any threshold makes
it, and ties go to the higher mean of the widest margins, min((share − 0.5) / 0.5, (1.2 − TI) / 1.2). The
discriminator and genre critic (the genre of a song whose genre is not given) come from the
candidate that meets the most directions over all. Results of the held-out songs are refused:
choose on validation songs, then score the combined model with ``benchmarks/multi_genre.py``
(and calibrate its thresholds first with ``scripts/calibrate_thresholds.py``, if wanted).

Writes the model (``midigenre.stargan.combine_targets``) with the run's split.json, its
log.csv up to the latest epoch chosen (for candidates of one training) and trainings.json (per
training: the epochs it took and their seconds, read by ``scripts/ship_multi_model.py``), and
prints the choice.
"""

from __future__ import annotations

import argparse
import csv
import json
from pathlib import Path

from midigenre.choose import TARGET_TI, meets, target_score


def _model_path(results: Path, model: str) -> Path:
    """The candidate's folder: as written (relative to here), else beside its results folder."""
    for p in (Path(model), results.parent.parent / model):
        if (p / "model.json").is_file():
            return p
    raise SystemExit(f"{results}: its model {model} is not found here or beside {results.parent}")


def score(directions: list[dict], target: str) -> tuple[int, float]:
    """(directions into ``target`` that meet the target, a tie-breaker): with a grid, each
    direction at its best threshold and the mean of the widest margins
    (:func:`midigenre.choose.target_score`); else at the results' threshold, the mean of
    share − content change above 1.2."""
    into = [d for d in directions if d["target"] == target]
    if into and all("grid" in d for d in into):
        return target_score(into, target)
    met = sum(meets(d["share_target[reference]"], d["transposition_invariant"]) for d in into)
    mean = sum(d["share_target[reference]"] - max(0.0, d["transposition_invariant"] - TARGET_TI) for d in into) / max(len(into), 1)
    return met, mean


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("results", type=Path, nargs="+", help="results.json of benchmarks/multi_genre.py --part valid, one per candidate")
    ap.add_argument("--out", type=Path, required=True, help="folder for the combined model")
    ap.add_argument("--log", type=Path, help="the training's log.csv (default: the candidate's, or its run's for an "
                                             "epoch folder RUN/epochs/epoch_NNN)")
    args = ap.parse_args()

    from midigenre.stargan import combine_targets
    from shared.atomic import atomic_path, write_json
    from shared.errors import GenreError

    candidates = []
    for path in args.results:
        r = json.loads(path.read_text())
        if r.get("part") != "valid":
            raise SystemExit(f"{path} was measured on the {r.get('part')!r} songs; choose on the validation songs (--part valid)")
        candidates.append({"results": path, "model": _model_path(path, r["model"]), "genres": r["genres"],
                           "directions": r["directions"], "epochs_done": r.get("epochs_done")})
    genres = candidates[0]["genres"]
    if any(c["genres"] != genres for c in candidates):
        raise SystemExit("the candidates were trained on different genres")
    gridded = {all("grid" in d for d in c["directions"]) for c in candidates}
    if len(gridded) > 1:
        raise SystemExit("some candidates were scored with a threshold grid and some without; score them all alike "
                         "(benchmarks/multi_genre.py --part valid)")

    chosen, rows = {}, []
    for t in genres:
        best = max(candidates, key=lambda c: score(c["directions"], t))
        chosen[t] = best
        met, mean = score(best["directions"], t)
        rows.append(f"| → {t} | {best['model']} | {best['epochs_done']} | {met} of {len(genres) - 1} | {mean:.2f} |")
    base = max(candidates, key=lambda c: (sum(score(c["directions"], t)[0] for t in genres),
                                          sum(score(c["directions"], t)[1] for t in genres)))
    try:
        combine_targets({t: c["model"] for t, c in chosen.items()}, base["model"], args.out)
    except GenreError as err:
        raise SystemExit(f"error: {err}") from None
    # the training it took: per training (candidates with the same training settings), its log up to
    # the latest epoch chosen from it; trainings.json sums them, log.csv is the one log when there is one
    trainings = {}
    for c in chosen.values():
        key = json.dumps(json.loads((c["model"] / "model.json").read_text()).get("train"), sort_keys=True)
        if key not in trainings or (c["epochs_done"] or 0) > (trainings[key]["epochs_done"] or 0):
            trainings[key] = c
    summary = []
    for c in trainings.values():
        logs = [args.log] if args.log and len(trainings) == 1 else [c["model"] / "log.csv", c["model"].parent.parent / "log.csv"]
        log = next((p for p in logs if p is not None and p.is_file()), None)
        if log is None:
            print(f"note: no log.csv found for {c['model']} (give --log RUN/log.csv), so its training time is unknown")
            summary.append({"model": str(c["model"]), "epochs": c["epochs_done"], "seconds": None})
            continue
        lines = log.read_text().splitlines()[:1 + (c["epochs_done"] or 10 ** 9)]  # the header and the epochs taken
        logged = list(csv.DictReader(lines))
        summary.append({"model": str(c["model"]), "epochs": len(logged), "seconds": round(sum(float(r["seconds"]) for r in logged), 1)})
        if len(trainings) == 1:
            with atomic_path(args.out / "log.csv") as tmp:
                tmp.write_text("\n".join(lines) + "\n")
    write_json(args.out / "trainings.json", summary)
    if len(trainings) > 1:
        known = [t["seconds"] for t in summary if t["seconds"] is not None]
        print(f"generators from {len(trainings)} trainings: "
              + "; ".join(f"{t['model']} ({t['epochs']} epochs, {t['seconds'] / 60:.1f} min)" if t["seconds"] is not None
                          else f"{t['model']} (time unknown)" for t in summary)
              + f"; together {sum(known) / 60:.1f} min")
    tie = "mean widest margin (own thresholds)" if gridded == {True} else "mean share − excess"
    print(f"| target | generator from | epochs | directions that meet the target (valid) | {tie} |")
    print("|---|---|---|---|---|")
    print("\n".join(rows))
    print(f"\ndiscriminator and genre critic from {base['model']}; wrote {args.out}")
    print(f"together, on the validation songs: {sum(score(chosen[t]['directions'], t)[0] for t in genres)} of "
          f"{len(genres) * (len(genres) - 1)} directions meet the target (each target's candidate scored on its own)")


if __name__ == "__main__":
    main()
