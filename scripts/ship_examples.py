"""Held-out example songs for a model card: per direction, songs of the model's held-out split
transferred (and cycled back), as piano-roll PNGs, MIDI files and rendered audio (OGG).

    python scripts/ship_examples.py data/models/jazz-classical-melody --midi-root ../shared/data/midi

The songs are not picked by how well they turned out: per direction, the held-out songs of the
source genre (from the model's ``split.json``) are sorted by name and the ones at evenly spaced
positions are taken (skipping songs that cannot be read). Each example is cut to its first
``--bars`` bars so that the files stay small. Writes ``examples/`` in the model folder and prints
the markdown to paste into the card (also written to ``examples/examples.md``).
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
from pathlib import Path


def songs_by_sha1(root: Path) -> dict[str, Path]:
    from midigenre.prepare import find_midi_files

    out = {}
    for path, _ in find_midi_files([root]):
        out.setdefault(hashlib.sha1(path.read_bytes()).hexdigest(), path)
    return out


def _first_bars(pm, bars: int):
    """``pm`` (pretty_midi) cut to its first ``bars`` bars: a melody-locked model writes the whole
    song as an arrangement, an example keeps its beginning."""
    downbeats = pm.get_downbeats()
    if len(downbeats) <= bars:
        return pm
    end = float(downbeats[bars])
    for inst in pm.instruments:
        inst.notes = [n for n in inst.notes if n.start < end]
        for n in inst.notes:
            n.end = min(n.end, end)
        inst.control_changes = [c for c in inst.control_changes if c.time < end]
        inst.pitch_bends = [b for b in inst.pitch_bends if b.time < end]
    return pm


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("model", type=Path)
    ap.add_argument("--midi-root", type=Path, default=Path("../shared/data/midi"))
    ap.add_argument("--per-direction", type=int, default=2)
    ap.add_argument("--bars", type=int, default=8)
    ap.add_argument("--classifier", type=Path, help="a MIDI genre classifier: P(target) per example in the table")
    args = ap.parse_args()

    import numpy as np

    from audiogenre.render import render_to_file
    from midigenre.pianoroll import write_midi
    from midigenre.plots import plot_transfer
    from midigenre.transfer import TransferModel, transfer_midi
    from shared.errors import GenreError

    model = TransferModel.load(args.model)
    split = json.loads((args.model / "split.json").read_text())
    found = songs_by_sha1(args.midi_root)
    out = args.model / "examples"
    out.mkdir(exist_ok=True)
    clf = None
    if args.classifier:
        from midigenre.classifier import Classifier

        clf = Classifier.load(args.classifier)
    a, b = model.genres["a"], model.genres["b"]
    steps = args.bars * model.settings.steps_per_bar
    lines = ["| direction | song | source | transferred | cycled back | picture | content change (added / removed)"
             + (" | P(target) source → transferred" if clf else "") + " |",
             "|---|---|---|---|---|---|---" + ("|---" if clf else "") + "|"]
    for src, dst in ((a, b), (b, a)):
        held = [e for e in split["genres"][src]["test"] if e["sha1"] in found]
        picks, k = [], 0
        positions = [int(round(x)) for x in np.linspace(0, len(held) - 1, args.per_direction + 2)[1:-1]]
        for pos in positions:
            for e in held[pos:] + held[:pos]:  # the song at this position, or the next readable one
                if e in picks:
                    continue
                try:
                    res = transfer_midi(found[e["sha1"]], model, dst, cycle=True)
                except GenreError:
                    continue
                picks.append(e)
                break
            else:
                continue
            k += 1
            res = dataclasses.replace(res, source=res.source[:steps], transferred=res.transferred[:steps], cycled=res.cycled[:steps])
            stem = f"{src}-to-{dst}-{k}"
            files = {}
            for which in ("source", "transferred", "cycled"):
                mid = write_midi(_first_bars(res.midi(which), args.bars), out / f"{stem}.{which}.mid")
                render_to_file(mid, out / f"{stem}.{which}.ogg", max_bars=args.bars)
                files[which] = mid.name
            plot_transfer(res, out / f"{stem}.png", Path(e["name"]).stem, bars=args.bars)
            from midigenre.metrics import content_added, content_change, content_removed

            cc = (content_change(res.source, res.transferred), content_added(res.source, res.transferred),
                  content_removed(res.source, res.transferred))
            cell = lambda w: f"[MIDI](examples/{stem}.{w}.mid) · [audio](examples/{stem}.{w}.ogg)"  # noqa: E731
            row = (f"| {src} → {dst} | {Path(e['name']).stem} | {cell('source')} | {cell('transferred')} | {cell('cycled')} "
                   f"| [PNG](examples/{stem}.png) | {cc[0]:.2f} ({cc[1]:.2f} / {cc[2]:.2f})")
            if clf:
                from midigenre.pianoroll import split_phrases

                def p_target(roll):
                    ph, _ = split_phrases(roll, model.settings, keep_empty=False, pad_tail=True)
                    return float(np.mean(clf.predict(ph) == clf.genres.index(dst))) if len(ph) else float("nan")

                row += f" | {p_target(res.source):.2f} → {p_target(res.transferred):.2f}"
            lines.append(row + " |")
            print(f"{stem}: {e['name']}, content change {cc[0]:.2f}", flush=True)
    md = "\n".join(lines) + "\n"
    (out / "examples.md").write_text(md.replace("](examples/", "]("))  # links relative to the examples folder
    print(md)


if __name__ == "__main__":
    main()
