"""A model folder and its card (``README.md``), written from a recipe run's own records.

:func:`write_model` copies the chosen model (weights, ``model.json`` without the training
machine's paths, ``split.json``) and the recipe into a model folder, and writes its card: what
the model does, the one command that made it, the data and split, the training time (each
training's ``log.csv``, up to the epochs the model uses), the choice on the validation songs (by
the judge that chose), and the held-out table, whose headline is read from the independent
judges beside matched baselines. Nothing on the card is typed by hand.
"""

from __future__ import annotations

import csv
import json
import os
import shutil
from pathlib import Path

from midigenre.choose import (HARMONY_MARGIN, ONSET_RANGE, SHARE_MARGIN, SONG_GRID, TARGET_HARMONY, TARGET_MELODY_TOP,
                              TARGET_SHARE)

INDEPENDENT = ("cnn-seed1", "feature")


def training_minutes(generators: list[dict], runs: dict[str, Path]) -> tuple[float, list[str]]:
    """Minutes of training the model's generators needed: per training, its ``log.csv`` up to the
    latest epoch any generator of it uses (a training counts once)."""
    upto: dict[str, int] = {}
    for g in generators:
        p = Path(g["from"])
        name = p.parent.parent.name if p.parent.name == "epochs" else p.name
        upto[name] = max(upto.get(name, 0), int(g["epochs_done"]))
    total, parts = 0.0, []
    for name, n in upto.items():
        log = Path(runs[name]) / "log.csv" if name in runs else None
        if log is None or not log.is_file():
            parts.append(f"{name}: {n} epochs, time unknown")
            continue
        with open(log, newline="") as fh:
            rows = [r for r in csv.DictReader(fh) if int(r["epoch"]) <= n]
        minutes = sum(float(r["seconds"]) for r in rows) / 60
        total += minutes
        parts.append(f"{name}: {n} epochs, {minutes:.1f} min")
    return total, parts


def portable(meta: dict) -> dict:
    """``model.json`` without the training machine's absolute paths: caches by file name, the
    generators' training folders as ``runs/RUN/epochs/epoch_NNN``."""
    meta = json.loads(json.dumps(meta))
    data = meta.get("data") or {}
    for entry in [*(data.get("genres") or []), *(data.get(k) for k in ("a", "b", "mixed"))]:
        if isinstance(entry, dict) and entry.get("cache"):
            entry["cache"] = Path(entry["cache"]).name
    for g in [*(meta.get("generators") or {}).values(), *(meta.get("per_target_generators") or [])]:
        if g.get("from"):
            p = Path(g["from"])
            g["from"] = f"runs/{p.parent.parent.name}/epochs/{p.name}" if p.parent.name == "epochs" else f"runs/{p.name}"
    return meta


def _generators(meta: dict) -> list[dict]:
    if meta["kind"] == "multi-genre":
        return list(meta.get("per_target_generators") or [])
    return [dict(g, direction=d) for d, g in (meta.get("generators") or {}).items()]


def _names(meta: dict) -> list[str]:
    if meta["kind"] == "multi-genre":
        return list(meta["genres"])
    return [meta["genres"]["a"], meta["genres"]["b"]]


def held_out_table(rows: list[dict]) -> list[str]:
    """The held-out rows as a markdown table: the song measures, the independent judges' shares
    beside the matched baselines, the choosing judge's for comparison, and which targets each misses."""
    head = ("| direction | melody on top | harmony kept (random acc.) | onsets × target | "
            "cnn-seed1: share (random edit, random acc.) | feature: share (random edit, random acc.) | "
            "reference (chose): share (random edit) | meets (cnn-seed1 / feature) |")
    out = [head, "|" + "---|" * 8]
    for r in rows:
        j = r["judges"]

        def cell(k):
            return f"{j[k]['share']:.2f} ({j[k]['random_edit']:.2f}, {j[k]['random_accompaniment']:.2f})"

        meets = " / ".join("✓" if r["passes"][k]["all"] else "✗ " + ", ".join(
            t for t, v in r["passes"][k].items() if t != "all" and not v) for k in INDEPENDENT)
        out.append(f"| {r['source']} → {r['target']} | {r['melody_top']:.2f} | {r['harmony']:.2f} "
                   f"({r['harmony_accompaniment']:.2f}) | {r['onsets_ratio']:.2f} | {cell('cnn-seed1')} | "
                   f"{cell('feature')} | {j['reference']['share']:.2f} ({j['reference']['random_edit']:.2f}) | {meets} |")
    return out


def headline(rows: list[dict]) -> dict:
    """Per judge, the directions that meet every target and those that meet the share target."""
    return {k: {"all": sum(r["passes"][k]["all"] for r in rows), "share": sum(r["passes"][k]["share"] for r in rows)}
            for k in (*INDEPENDENT, "reference")}


def card(meta: dict, *, name: str, recipe, record: dict, choice: dict, results: dict, runs: dict[str, Path]) -> str:
    """The model card (markdown) of a recipe run (see the module's docstring)."""
    multi = meta["kind"] == "multi-genre"
    names = _names(meta)
    gens = _generators(meta)
    train = (gens[0].get("train") if gens else None) or meta.get("train", {})
    minutes, parts = training_minutes(gens, runs)
    rows = results["rows"]
    n, h = len(rows), headline(rows)
    songs = results["songs_per_genre"]
    locked = bool(train.get("melody_lock"))
    title = (" / ".join(names) if multi else " ↔ ".join(names)) + (", melody-locked (keeps the song's tune)" if locked else "")
    what = ("One generator G(x, target) for every pair of " + ", ".join(f"**{g}**" for g in names) if multi else
            f"A CycleGAN pair **{names[0]} ↔ {names[1]}**")
    if locked:
        what += (" that keeps the song's melody note for note and rewrites the accompaniment under it (the generator "
                 "sees the melody and the accompaniment below it as two planes; its output is the melody plus notes "
                 "strictly below it where it sounds)")
        if train.get("harmony"):
            what += (", trained with the harmony loss (the per-beat pitch classes of the result stay near the "
                     f"source's, weight {train['harmony']:g})")
        what += (". `genre midi transfer` writes the result as an arrangement: the melody track with its own "
                 "instrument, velocities and timing; kept accompaniment notes as they were; added notes on the "
                 "target genre's chord and bass instruments.")
    else:
        what += "."
    parts_of = lambda g: "; ".join(  # noqa: E731
        f"{k} {meta['data'].get(k + '_songs', {}).get(g, '?')}" for k in ("train", "valid", "test"))
    lines = [
        f"# Model card: {title}", "", recipe.summary or what, "", what if recipe.summary else "", "",
        f"Use it with `genre midi transfer SONG.mid --model {name} --to GENRE -o OUT.mid`"
        + (" (the shipped model of this recipe; or this folder's path)." if name == recipe.name else "."), "",
        "## How it was made (one command)",
        f"- Command: `{record['command']}`",
        f"- Recipe: `{recipe.name}` (`recipe.toml` in this folder; `genre midi train --recipe {recipe.name}` runs it). "
        "It prepares the genres, trains, chooses on the validation songs, measures on the held-out songs and "
        "writes this folder and this card.",
        "- Genres and meter rules: " + ", ".join(f"{g} ({recipe.meter(g)})" for g in recipe.all_genres)
        + (f"; the judges know {', '.join(recipe.judge_genres)}" if set(recipe.judge_genres) != set(names) else "") + ".",
        "- Song-level split (`split.json`): songs per part (train; valid; test) "
        + "; ".join(f"{g}: {parts_of(g)}" for g in names) + ".",
        *[f"- Training `{t.name}`: " + ", ".join(f"{k}={v}" for k, v in t.settings.items())
          + f", precision {t.precision}" + (f"; epochs 1–{t.candidates} may be chosen" if t.candidates else "")
          for t in recipe.trainings],
        f"- Training time: {minutes:.1f} min for the epochs this model uses ({'; '.join(parts)}).",
        "", "## Choice (validation songs, reference judge)",
        "- Songs: " + ", ".join(f"{g} {len(v)}" for g, v in choice["songs"].items())
        + (f" (the first {recipe.choose_songs} by name of each genre)" if recipe.choose_songs else " (all)") + ".",
        f"- Every kept epoch at every binarisation threshold of {SONG_GRID[0]:g}–{SONG_GRID[-1]:g}, with and without "
        "keeping the source's "
        "notes, per direction; kept: the one that meets the most targets, then the widest margin, by the "
        "**reference** judge (a CNN of Brunner et al. trained on the split's training songs). That judge is not "
        "used for the headline.", "",
        "| direction | from | threshold | keeps source | share (random edit) | harmony | onsets × |",
        "|---|---|---|---|---|---|---|"]
    for k, r in sorted(choice["chosen"].items()):
        ref = r["judges"]["reference"]
        lines.append(f"| {k.replace('→', ' → ')} | {Path(r['candidate']).parent.parent.name}/{Path(r['candidate']).name} | "
                     f"{r['threshold']:g} | {'yes' if r.get('keep_source') else 'no'} | {ref['share']:.2f} "
                     f"({ref['random_edit']:.2f}) | {r['harmony']:.2f} | {r['onsets_ratio']:.2f} |")
    lines += [
        "", "## Held-out songs",
        "- Songs (held out: never seen in training or choice): " + ", ".join(f"{g} {songs.get(g, 0)}" for g in names)
        + (f" (the first {recipe.measure_songs} by name)" if recipe.measure_songs else "") + ".",
        "- Judges: **cnn-seed1** (the reference CNN trained apart with another seed) and **feature** (an MLP over "
        f"musical statistics), both trained on the training songs only, {len(recipe.judge_genres)} genres; "
        "`reference` is the judge that chose and is shown for comparison only.",
        "- Matched baselines: *random edit* deletes and adds notes at random at the direction's own removed/added "
        "rates, melody kept; *random acc.* lays the melody over a random real accompaniment of the target genre "
        "(it fools judges but keeps no harmony).",
        f"- Targets per direction: melody on top ≥ {TARGET_MELODY_TOP}; share judged target ≥ {TARGET_SHARE} and ≥ "
        f"random edit + {SHARE_MARGIN}; harmony kept ≥ {TARGET_HARMONY} and ≥ random acc. + {HARMONY_MARGIN}; "
        f"onsets per phrase {ONSET_RANGE[0]}–{ONSET_RANGE[1]:g}× the target genre's.", "",
        f"**Every target met: {h['cnn-seed1']['all']} of {n} directions by cnn-seed1, {h['feature']['all']} of {n} by "
        f"the feature judge** (share target alone: {h['cnn-seed1']['share']} and {h['feature']['share']} of {n}; by the "
        f"reference judge that chose: {h['reference']['all']} of {n}, share {h['reference']['share']} of {n}).", "",
        *held_out_table(rows), "",
        "## Limits",
        "- The melody is the file's melody track where one is named (MELODY, Lead, Vocal, …), else the skyline of "
        "the top voice; on a song whose tune is in an inner voice the skyline keeps the wrong line "
        "(`--melody track:NAME`).",
        "- Phrases are 4 bars of 4/4 on a 16th-note grid, MIDI 24–107: triplets and swing are quantised.",
        *[f"- {line}" for line in recipe.limits]]
    return "\n".join(line for line in lines if line is not None) + "\n"


def write_model(chosen: str | os.PathLike, dest: str | os.PathLike, *, recipe, record: dict, choice: dict,
                results: dict, runs: dict[str, Path]) -> Path:
    """The model folder ``dest``: the chosen model's weights, its portable ``model.json``, its
    ``split.json``, the recipe and the card (written to a temporary folder, then moved in place)."""
    chosen, dest = Path(chosen), Path(dest)
    meta = json.loads((chosen / "model.json").read_text(encoding="utf-8"))
    from midigenre.recipe import RECIPES_DIR

    shipped = recipe.path is not None and Path(recipe.path).resolve().parent == RECIPES_DIR
    text = card(meta, name=recipe.name if shipped else str(dest), recipe=recipe, record=record, choice=choice, results=results, runs=runs)
    tmp = dest.with_name(f".{dest.name}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    for f in ("model.safetensors", "split.json"):
        shutil.copy2(chosen / f, tmp / f)
    (tmp / "model.json").write_text(json.dumps(portable(meta), indent=1) + "\n", encoding="utf-8")
    if recipe.path is not None:
        shutil.copyfile(recipe.path, tmp / "recipe.toml")
    (tmp / "held-out.json").write_text(json.dumps(results, indent=1, default=float) + "\n", encoding="utf-8")
    (tmp / "README.md").write_text(text, encoding="utf-8")
    if dest.exists():
        old = dest.with_name(f".{dest.name}.old")
        shutil.rmtree(old, ignore_errors=True)
        dest.rename(old)
        tmp.rename(dest)
        shutil.rmtree(old)
    else:
        tmp.rename(dest)
    return dest
