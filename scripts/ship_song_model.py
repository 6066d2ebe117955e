"""Copy a model chosen by ``benchmarks/keep_the_song.py --choose`` into data/models/NAME with its card.

    python scripts/ship_song_model.py runs/chosen/model data/models/jazz-classical-melody \\
        --choice runs/chosen/choice.json --results runs/kts/results.json --result-key runs/chosen/model \\
        --command "genre midi train …" --choose-command "python benchmarks/keep_the_song.py --choose …" \\
        --benchmark-command "python benchmarks/keep_the_song.py --model … --part test"

The card gives what the model keeps (the melody note for note), the data and split, the training
command(s) and time (each training's log.csv, up to the epochs the model uses), the choice on the
validation songs (epoch and threshold per direction, by the reference judge), and the held-out
table of the benchmark: melody kept, harmony kept, onsets, and the share judged target by the
independent judges beside the matched baselines. The headline is read from the independent judges
(``cnn-seed1``, ``feature``), never from the judge that chose.
"""

from __future__ import annotations

import argparse
import csv
import json
import shutil
from pathlib import Path

INDEPENDENT = ("cnn-seed1", "feature")


def training_minutes(generators: list[dict], runs: Path | None = None) -> tuple[float, list[str]]:
    """Minutes of training the model's generators needed: per training, its log.csv up to the
    latest epoch any generator of it uses (trainings that share a run count once); a run not
    found where ``from`` says is looked for by name in ``runs``."""
    upto: dict[Path, int] = {}
    for g in generators:
        p = Path(g["from"])
        run = p.parent.parent if p.parent.name == "epochs" else p
        if not (run / "log.csv").is_file() and runs is not None:
            run = runs / run.name
        upto[run] = max(upto.get(run, 0), int(g["epochs_done"]))
    total, parts = 0.0, []
    for run, n in upto.items():
        with open(run / "log.csv") as fh:
            rows = [r for r in csv.DictReader(fh) if int(r["epoch"]) <= n]
        minutes = sum(float(r["seconds"]) for r in rows) / 60
        total += minutes
        parts.append(f"{run.name}: {n} epochs, {minutes:.1f} min")
    return total, parts


def _run_relative(path: str) -> str:
    p = Path(path)
    return f"runs/{p.parent.parent.name}/epochs/{p.name}" if p.parent.name == "epochs" else f"runs/{p.name}"


def portable(meta: dict) -> dict:
    """``model.json`` without the training machine's absolute paths: caches by file name, the
    generators' training folders relative to a ``runs/`` folder."""
    meta = json.loads(json.dumps(meta))
    data = meta.get("data") or {}
    for entry in [*(data.get("genres") or []), *(data.get(k) for k in ("a", "b", "mixed"))]:
        if isinstance(entry, dict) and entry.get("cache"):
            entry["cache"] = Path(entry["cache"]).name
    gens = list((meta.get("generators") or {}).values()) + list(meta.get("per_target_generators") or [])
    for g in gens:
        if g.get("from"):
            g["from"] = _run_relative(g["from"])
    return meta


def held_out_table(rows: list[dict]) -> list[str]:
    head = ("| direction | melody on top | harmony kept (random acc.) | onsets × target | "
            "cnn-seed1: share (random edit, random acc.) | feature: share (random edit, random acc.) | "
            "reference (chose): share (random edit) | meets (cnn-seed1 / feature) |")
    out = [head, "|" + "---|" * 8]
    for r in rows:
        j = r["judges"]
        cell = lambda k: f"{j[k]['share']:.2f} ({j[k]['random_edit']:.2f}, {j[k]['random_accompaniment']:.2f})"  # noqa: E731
        meets = " / ".join("✓" if r["passes"][k]["all"] else "✗ " + ", ".join(t for t, v in r["passes"][k].items()
                                                                             if t != "all" and not v)
                           for k in INDEPENDENT)
        out.append(f"| {r['source']} → {r['target']} | {r['melody_top']:.2f} | {r['harmony']:.2f} "
                   f"({r['harmony_accompaniment']:.2f}) | {r['onsets_ratio']:.2f} | {cell('cnn-seed1')} | "
                   f"{cell('feature')} | {j['reference']['share']:.2f} ({j['reference']['random_edit']:.2f}) | {meets} |")
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("model", type=Path, help="the chosen model folder (OUT/model of keep_the_song.py --choose)")
    ap.add_argument("dest", type=Path)
    ap.add_argument("--choice", type=Path, required=True, help="choice.json of keep_the_song.py --choose")
    ap.add_argument("--results", type=Path, required=True, help="results.json of keep_the_song.py on the held-out songs")
    ap.add_argument("--result-key", required=True, help="the model's name in results.json")
    ap.add_argument("--command", action="append", default=[], help="the training command(s)")
    ap.add_argument("--choose-command", required=True)
    ap.add_argument("--benchmark-command", required=True)
    ap.add_argument("--prepare", default="genre midi prepare DATA/pop -g pop -o pop.h5 --meter assume-4/4; "
                                          "classical, jazz and folk with --meter lenient")
    ap.add_argument("--runs", type=Path, help="the folder of the training runs (where their log.csv are)")
    ap.add_argument("--limits", default="", help="markdown bullets for the Limits section")
    args = ap.parse_args()

    meta = json.loads((args.model / "model.json").read_text())
    choice = json.loads(args.choice.read_text())
    res = json.loads(args.results.read_text())
    rows = res["models"][args.result_key]
    multi = meta["kind"] == "multi-genre"
    if multi:
        gens = meta.get("per_target_generators") or []
        names = meta["genres"] if isinstance(meta["genres"], list) else list(meta["genres"])
    else:
        gens = [dict(g, direction=d) for d, g in (meta.get("generators") or {}).items()]
        names = [meta["genres"]["a"], meta["genres"]["b"]]
    minutes, parts = training_minutes(gens, args.runs)
    train = (gens[0].get("train") if gens else None) or meta.get("train", {})
    n = len(rows)
    met = {k: sum(r["passes"][k]["all"] for r in rows) for k in (*INDEPENDENT, "reference")}
    share = {k: sum(r["passes"][k]["share"] for r in rows) for k in (*INDEPENDENT, "reference")}
    songs = res["songs_per_genre"]
    title = " ↔ ".join(names) if not multi else " / ".join(names)

    lines = [f"# Model card: {title}, melody-locked (keeps the song's tune)", "",
             ("One generator G(x, target) for every pair of " + ", ".join(f"**{g}**" for g in names) if multi else
              f"A CycleGAN pair **{names[0]} ↔ {names[1]}**")
             + " that keeps the song's melody note for note and rewrites the accompaniment under it "
             "(`--melody-lock`: the generator sees the melody and the accompaniment below it as two planes; its "
             "output is the melody plus notes strictly below it where it sounds)"
             + (", trained with the harmony loss (the per-beat pitch classes of the result stay near the "
                f"source's, weight {train.get('harmony'):g})" if train.get("harmony") else "")
             + ". `genre midi transfer` writes the result as an arrangement: the melody track with its own "
             "instrument, velocities and timing; kept accompaniment notes as they were; added notes on the "
             "target genre's chord and bass instruments.", "",
             f"Use it with `genre midi transfer SONG.mid --model {args.dest.name} --to GENRE -o OUT.mid`.", "",
             "## Data",
             "- Genres: " + ", ".join(names) + f"; prepared with `{args.prepare}`.",
             "- Song-level split (`split.json`, the same as the shipped `four-genres`): songs per part "
             + "; ".join(f"{g}: training {meta['data'].get('train_songs', {}).get(g, '?')}, validation "
                         f"{meta['data'].get('valid_songs', {}).get(g, '?')}, held out {meta['data'].get('test_songs', {}).get(g, '?')}"
                         for g in names) + ".",
             "", "## Training",
             *[f"- Command: `{c}`" for c in args.command],
             f"- Training time on the 2-core CPU: {minutes:.1f} min for the epochs this model uses ({'; '.join(parts)}).",
             "", "## Choice (validation songs, reference judge)",
             f"- Command: `{args.choose_command}`",
             "- Every kept epoch at every binarisation threshold of 0.3–0.8, per direction; kept: the one that "
             "meets the most targets (below), then the widest margin, by the **reference** judge (a CNN of "
             "Brunner et al. trained on the split's training songs). That judge is not used for the headline.",
             "", "| direction | from | threshold | share (random edit) | harmony | onsets × |", "|---|---|---|---|---|---|"]
    for k, r in sorted(choice["chosen"].items()):
        lines.append(f"| {k.replace('→', ' → ')} | {Path(r['candidate']).name} | {r['threshold']:g} | "
                     f"{r['judges']['reference']['share']:.2f} ({r['judges']['reference']['random_edit']:.2f}) | "
                     f"{r['harmony']:.2f} | {r['onsets_ratio']:.2f} |")
    lines += ["", "## Held-out songs (`benchmarks/keep_the_song.py`)",
              f"- Command: `{args.benchmark_command}`",
              "- Songs (held out: never seen in training or choice): " + ", ".join(
                  f"{g} {songs.get(g, 0)}" + (f" (the first by name of {meta['data']['test_songs'][g]})"
                                              if songs.get(g, 0) < (meta["data"].get("test_songs") or {}).get(g, 0) else "")
                  for g in names) + ".",
              "- Judges: **cnn-seed1** (the reference CNN trained apart with another seed) and **feature** (an MLP over "
              "musical statistics), both trained on the training songs only, 4 genres; `reference` is the judge that "
              "chose and is shown for comparison only.",
              "- Matched baselines: *random edit* deletes and adds notes at random at the direction's own removed/added "
              "rates, melody kept; *random acc.* lays the melody over a random real accompaniment of the target genre "
              "(it fools judges but keeps no harmony).",
              "- Targets per direction: melody on top ≥ 0.95; share judged target ≥ 0.5 and ≥ random edit + 0.25; "
              "harmony kept ≥ 0.75 and ≥ random acc. + 0.3; onsets per phrase 0.5–2× the target genre's.", "",
              f"**Every target met: {met['cnn-seed1']} of {n} directions by cnn-seed1, {met['feature']} of {n} by the "
              f"feature judge** (share target alone: {share['cnn-seed1']} and {share['feature']} of {n}; by the "
              f"reference judge that chose: {met['reference']} of {n}, share {share['reference']} of {n}).", "",
              *held_out_table(rows), ""]
    lines += ["## Limits",
              "- The melody is the file's melody track where one is named (MELODY, Lead, Vocal, …), else the skyline "
              "of the top voice; on a song whose tune is in an inner voice the skyline keeps the wrong line "
              "(`--melody track:NAME`).",
              "- Phrases are 4 bars of 4/4 on a 16th-note grid, MIDI 24–107: triplets and swing are quantised.",
              *([args.limits] if args.limits else [])]
    args.dest.mkdir(parents=True, exist_ok=True)
    for name in ("model.safetensors", "split.json"):
        shutil.copy2(args.model / name, args.dest / name)
    (args.dest / "model.json").write_text(json.dumps(portable(meta), indent=1) + "\n", encoding="utf-8")
    (args.dest / "README.md").write_text("\n".join(lines) + "\n", encoding="utf-8")
    print(f"wrote {args.dest} (every target: {met['cnn-seed1']}/{n} cnn-seed1, {met['feature']}/{n} feature)")


if __name__ == "__main__":
    main()
