"""Does a transfer keep the song? Every direction of one or more models on whole held-out songs.

For each model and direction (:mod:`midigenre.song_quality`): melody kept (still sounding / still
the top voice; the melody track where the file names one, else the skyline), harmony kept
(per-beat pitch-class similarity), accompaniment change, onsets per phrase against the target
genre's real phrases, and the share judged target by three judges — ``reference`` (the CNN of
Brunner et al. that chooses epochs and thresholds), ``cnn-seed1`` (the same network trained apart,
another seed) and ``feature`` (an MLP over musical statistics) — each beside the matched
baselines: the source unchanged, random deletion/addition at the direction's own rates, and the
melody over a random real accompaniment of the target genre. The judges are trained on the
split's training songs only (:func:`midigenre.judges.train_judges`; the CNNs kept in
``--judges``); the songs measured are the split's held-out (``--part test``) or validation songs.

A direction **meets the target** by a judge (:func:`midigenre.choose.song_passes`) when its
share is ≥ 0.5 and ≥ the random edit's + 0.25, harmony ≥ 0.75 and ≥ the random accompaniment's
+ 0.3, the melody is the top voice ≥ 0.95 and its onsets are 0.5–2× the target genre's. The
headline is read from the independent judges (``cnn-seed1``, ``feature``), never from
``reference``.

    python benchmarks/keep_the_song.py --model four-genres-melody --model runs/x/model --judges runs/judges \\
        --cache pop=pop.h5 --cache classical=classical.h5 --cache jazz=jazz.h5 --cache folk=folk.h5 \\
        --data ../shared/data/midi --out runs/keep-the-song

With ``--choose CANDIDATE …`` it instead chooses a model from kept epochs on the validation songs
with the reference judge (:func:`midigenre.choose.choose_by_song`) into ``--out``; ``genre midi
choose --keep-the-song`` does the same from training runs.

Writes ``OUT/results.json``, ``OUT/frontier.png`` (melody kept as the top voice against share
judged target, per direction and model) and prints a markdown table per model.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from midigenre.card import INDEPENDENT  # noqa: E402 - the judges of the headline, as on the cards


def load_judges(args, split_path: Path, names: list[str]) -> dict:
    """The reference CNN and the independent judges, trained on the split's training songs
    (:func:`midigenre.judges.train_judges`)."""
    from midigenre.judges import train_judges

    caches = dict(c.split("=", 1) for c in args.cache)
    missing = [g for g in names if g not in caches]
    if missing:
        raise SystemExit(f"give --cache {missing[0]}=FILE.h5 (the judges train on every genre of the split)")
    return train_judges({g: caches[g] for g in names}, split_path, args.judges,
                        say=lambda line: print(f"  {line}", flush=True))


def song_lists(split, names: list[str], part: str, folders: list[str], limit: int) -> dict[str, list]:
    from midigenre.song_quality import split_songs

    out = {}
    for g in names:
        songs = split_songs(split, g, part, folders)
        out[g] = songs[:limit] if limit else songs
    return out


def measure(model_name: str, judges: dict, songs: dict, melody: str) -> list[dict]:
    """Every direction of one model by every judge (:func:`midigenre.song_quality.measure_model`)."""
    from midigenre.song_quality import measure_model

    return measure_model(model_name, judges, songs, melody=melody,
                         progress=lambda line: print(f"  {model_name}: {line}", flush=True))


def table(name: str, rows: list[dict]) -> str:
    head = ("| direction | melody sounding / top | harmony (random acc.) | acc. change | onsets × | "
            "reference: share (edit, acc.) | cnn-seed1: share (edit, acc.) | feature: share (edit, acc.) | meets (ref / cnn / feat) |")
    lines = [f"**{name}**", "", head, "|" + "---|" * 9]
    for r in rows:
        j = r["judges"]
        cell = lambda k: f"{j[k]['share']:.2f} ({j[k]['random_edit']:.2f}, {j[k]['random_accompaniment']:.2f})"  # noqa: E731
        meets = " / ".join("✓" if r["passes"][k]["all"] else "✗" for k in ("reference", "cnn-seed1", "feature"))
        lines.append(f"| {r['source']} → {r['target']} | {r['melody_sounding']:.2f} / {r['melody_top']:.2f} | "
                     f"{r['harmony']:.2f} ({r['harmony_accompaniment']:.2f}) | {r['accompaniment_change']:.2f} | "
                     f"{r['onsets_ratio']:.2f} | {cell('reference')} | {cell('cnn-seed1')} | {cell('feature')} | {meets} |")
    for k in ("reference", "cnn-seed1", "feature"):
        met = sum(r["passes"][k]["all"] for r in rows)
        share = sum(r["passes"][k]["share"] for r in rows)
        lines.append(f"\n{k}: {met} of {len(rows)} directions meet every target; {share} meet the share target")
    return "\n".join(lines)


def frontier(results: dict, path: Path) -> None:
    from shared.plotting import new_figure, save_png

    fig, axes = new_figure(1, len(INDEPENDENT) + 1, figsize=(6 * (len(INDEPENDENT) + 1), 5.5))
    axes = np.atleast_1d(axes)
    markers = "osD^v<>p*"

    def label(name):
        p = Path(name)
        return p.parent.name if p.name == "model" else p.name

    for ax, judge in zip(axes, INDEPENDENT):
        for k, (name, rows) in enumerate(results.items()):
            x = [r["melody_top"] for r in rows]
            y = [r["judges"][judge]["share"] for r in rows]
            ax.scatter(x, y, marker=markers[k % len(markers)], label=label(name), alpha=0.8)
        ax.axhline(0.5, color="grey", lw=0.8, ls="--")
        ax.axvline(0.95, color="grey", lw=0.8, ls="--")
        ax.set_xlim(0, 1.02)
        ax.set_ylim(0, 1.02)
        ax.set_xlabel("melody still the top voice (share of its top line)")
        ax.set_ylabel(f"share judged target ({judge})")
        ax.set_title(f"each direction, held-out songs, {judge} judge", fontsize=10)
        ax.legend(fontsize=8, loc="lower left")
    ax = axes[-1]
    for k, (name, rows) in enumerate(results.items()):  # what a matched baseline cannot give
        x = [r["harmony"] - r["harmony_accompaniment"] for r in rows]
        y = [np.mean([r["judges"][j]["share"] - r["judges"][j]["random_edit"] for j in INDEPENDENT]) for r in rows]
        ax.scatter(x, y, marker=markers[k % len(markers)], label=label(name), alpha=0.8)
    ax.set_xlim(-0.3, 0.7)
    ax.set_ylim(-0.6, 1.0)
    ax.axhline(0.25, color="grey", lw=0.8, ls="--")
    ax.axvline(0.3, color="grey", lw=0.8, ls="--")
    ax.set_xlabel("harmony kept − the random accompaniment's")
    ax.set_ylabel("share − the random edit's (mean of the independent judges)")
    ax.set_title("beyond the matched baselines (targets: right of and above the lines)", fontsize=10)
    ax.legend(fontsize=8, loc="lower left")
    save_png(fig, path)


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", action="append", default=[], help="a model (shipped name or folder); repeatable")
    p.add_argument("--choose", nargs="+", help="candidate epoch/run folders to choose a model from (validation songs)")
    p.add_argument("--judges", help="folder of the judges (trained into it when missing)")
    p.add_argument("--cache", action="append", default=[], help="GENRE=FILE.h5 of the split's genres (judges' training data)")
    p.add_argument("--data", action="append", default=[], help="folder(s) holding the songs (searched recursively)")
    p.add_argument("--split", help="split.json (default: the first model's / candidate's)")
    p.add_argument("--part", default="test", choices=["test", "valid"])
    p.add_argument("--songs", type=int, default=0, help="at most this many songs per genre (0: all)")
    p.add_argument("--melody", default="auto")
    p.add_argument("--out", required=True)
    p.add_argument("--merge", nargs="+", metavar="RESULTS_JSON",
                   help="only merge earlier results.json files (same part and songs) into OUT and draw their frontier")
    args = p.parse_args(argv)
    if args.merge:
        merged, part = {}, None
        for f in args.merge:
            r = json.loads(Path(f).read_text())
            if part is not None and (r["part"], r["songs_per_genre"]) != part:
                raise SystemExit(f"{f} measured other songs ({r['part']}, {r['songs_per_genre']}) than {args.merge[0]}")
            part = (r["part"], r["songs_per_genre"])
            merged.update(r["models"])
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        (out / "results.json").write_text(json.dumps({"part": part[0], "songs_per_genre": part[1], "models": merged},
                                                     indent=1, default=float))
        frontier(merged, out / "frontier.png")
        print(f"wrote {out / 'results.json'} and {out / 'frontier.png'} ({len(merged)} models)")
        return
    from midigenre.dataset import SongSplit
    from midigenre.transfer import GenreTransfer

    if not args.judges:
        p.error("--judges is required")
    first = GenreTransfer.load((args.choose or args.model)[0])
    split_path = Path(args.split) if args.split else first.folder / "split.json"
    split = SongSplit.load(split_path)
    names = list(first.names) if first.kind == "multi-genre" else sorted(split.genres, key=list(split.genres).index)
    judge_names = [g for g in split.genres]
    judges = load_judges(args, split_path, judge_names)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    if args.choose:
        from midigenre.choose import choose_by_song

        part = "valid"
        songs = song_lists(split, names, part, args.data, args.songs)
        t0 = time.time()
        res = choose_by_song(args.choose, out / "model", songs=songs, judge=judges["reference"],
                             progress=lambda *a: print("  ", a[-1], flush=True))
        res["seconds"] = round(time.time() - t0, 1)
        (out / "choice.json").write_text(json.dumps(res, indent=1, default=float))
        for k, r in res["chosen"].items():
            print(f"{k}: {r['candidate']} threshold {r['threshold']}: share {r['judges']['reference']['share']:.2f} "
                  f"(edit {r['judges']['reference']['random_edit']:.2f}), harmony {r['harmony']:.2f}, "
                  f"onsets {r['onsets_ratio']:.2f}")
        print(f"wrote {res['model']} ({res['seconds']} s)")
        return
    songs = song_lists(split, judge_names, args.part, args.data, args.songs)
    results = {}
    for name in args.model:
        results[name] = measure(name, judges, songs, args.melody)
        print(table(name, results[name]), flush=True)
    (out / "results.json").write_text(json.dumps({"part": args.part, "songs_per_genre": {g: len(v) for g, v in songs.items()},
                                                  "models": results}, indent=1, default=float))
    frontier(results, out / "frontier.png")
    print(f"wrote {out / 'results.json'} and {out / 'frontier.png'}")


if __name__ == "__main__":
    main()
