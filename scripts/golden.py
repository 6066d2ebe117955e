"""Rewrite the golden values of the shipped MIDI models (``tests/test_golden.py``), and train its judge.

Run it **on purpose, when a model is re-shipped** (and commit ``tests/data/golden.json`` with the
model): the golden test fails as soon as a shipped model transfers its fixed held-out phrases
differently from the values stored here, which is what it is for. One command per re-shipping::

    python scripts/golden.py --model four-genres-melody --model jazz-classical-melody

Without ``--model`` every shipped MIDI model is measured again. ``--judge`` first trains the fixed
small judge again (a :class:`midigenre.judges.FeatureJudge`, an MLP over musical statistics, seed
1) on the training songs of the four-genres-melody model's split (the same songs as the retired
four-genres', on which the stored judge was trained), read with that model's preparation rules,
into ``tests/data/golden_judge.safetensors``; every model's values are then measured again with it
(values measured by another judge mean nothing). The songs are found by name (and SHA-1) under
``--data`` (default ``../shared/data/midi``).

What is measured, and the tolerances, are in ``tests/test_golden.py``: this script calls its
functions, so the stored values are what the test measures.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import hashlib
import json
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def train_judge(data: Path, path: Path):
    """The fixed judge: trained on the phrases (as the caches store them) of the training songs of
    the four-genres-melody split; returns it and its accuracy on the phrases of the split's test
    songs."""
    import numpy as np

    from midigenre.dataset import SongSplit
    from midigenre.judges import FeatureJudge
    from midigenre.pianoroll import phrases_of_file
    from midigenre.song_quality import split_songs
    from midigenre.transfer import GenreTransfer
    from shared.errors import GenreError
    from tests.test_golden import JUDGE_SPLIT_MODEL, load_judge, save_judge

    model = GenreTransfer.load(JUDGE_SPLIT_MODEL)
    split = SongSplit.load(model.folder / "split.json")
    parts = {}
    for part in ("train", "test"):
        parts[part] = []
        for g in model.names:
            xs = []
            songs = split_songs(split, g, part, [data])
            for p in songs:
                try:
                    xs.append(phrases_of_file(p, model.settings_for(g))[0])
                except GenreError:
                    pass
            parts[part].append(np.concatenate(xs))
            print(f"  {part} {g}: {len(songs)} of {len(split.genres[g][part])} songs found, "
                  f"{len(parts[part][-1])} phrases", flush=True)
    judge = FeatureJudge.train(parts["train"], model.names, split.settings_hash, seed=1)
    save_judge(judge, path)
    judge = load_judge(path)  # as the test will read it
    accuracy = {g: float(np.mean(judge.predict(x) == k)) for k, (g, x) in enumerate(zip(model.names, parts["test"]))}
    return judge, accuracy


def main(argv=None) -> None:
    sys.path.insert(0, str(REPO))
    from tests import test_golden as golden

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", action="append", choices=golden.MODELS,
                   help="a shipped model whose golden values to rewrite; repeatable (default: all)")
    p.add_argument("--judge", action="store_true", help="train the judge again first (then every model is measured)")
    p.add_argument("--data", type=Path, default=golden.SHARED_MIDI, help="the folder holding the songs")
    args = p.parse_args(argv)
    if not args.data.is_dir():
        p.error(f"no data folder {args.data}")

    import torch

    from midigenre.transfer import GenreTransfer

    torch.set_num_threads(1)  # as the tests run
    stored = json.loads(golden.GOLDEN.read_text()) if golden.GOLDEN.is_file() else {"models": {}}
    if args.judge:
        t0 = time.time()
        print(f"training the judge on the training songs of {golden.JUDGE_SPLIT_MODEL}'s split …", flush=True)
        judge, accuracy = train_judge(args.data, golden.JUDGE)
        stored["judge"] = {"trained_on": f"the training songs of {golden.JUDGE_SPLIT_MODEL}'s split.json",
                           "heldout_accuracy": accuracy}
        print(f"  held-out accuracy {json.dumps({g: round(a, 3) for g, a in accuracy.items()})} "
              f"({time.time() - t0:.0f} s); wrote {golden.JUDGE} ({golden.JUDGE.stat().st_size} bytes)")
        names = list(golden.MODELS)
    else:
        if not golden.JUDGE.is_file():
            p.error(f"no judge at {golden.JUDGE}: run with --judge")
        judge = golden.load_judge()
        names = args.model or list(golden.MODELS)
    stored.setdefault("judge", {})["sha1"] = hashlib.sha1(golden.JUDGE.read_bytes()).hexdigest()
    for name in names:
        t0 = time.time()
        model = GenreTransfer.load(name)
        got = golden.measure(model, judge, args.data)
        got["measured"] = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
        old = stored["models"].get(name)
        changed = golden.differences(got, old) if old else ["new"]
        stored["models"][name] = got
        print(f"{name}: {len(got['directions'])} directions in {time.time() - t0:.1f} s; "
              + ("same behaviour as before" if not changed else f"{len(changed)} values changed"), flush=True)
        for line in changed[:20]:
            print("   ", line)
        for d, row in got["directions"].items():
            print(f"    {d}: " + ", ".join(f"{k} {v:.3f}" for k, v in row.items()))
    stored["models"] = {n: stored["models"][n] for n in golden.MODELS if n in stored["models"]}
    golden.GOLDEN.write_text(json.dumps(stored, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    print(f"wrote {golden.GOLDEN}")


if __name__ == "__main__":
    main()
