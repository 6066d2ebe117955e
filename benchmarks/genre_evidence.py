"""Where a genre classifier finds a genre, in real phrases and in a multi-genre model's transfers
into it: the share of the note cells and of the classifier's evidence (captum saliency,
:func:`midigenre.attribution.attribute`) per register band and per note length.

    python benchmarks/genre_evidence.py --model four-genres-melody --classifier runs/four-eval/judge-reference \
        --genre folk [--part valid] [--max-phrases 200]

A transfer that the classifier does not take for the genre shows, beside the real phrases, where
its notes lie where the genre's do not (e.g. real folk has half of its note cells below C3, in
notes a bar long or longer). Phrases come from the model's split (the validation songs by
default, so the held-out songs stay unread).
"""

from __future__ import annotations

import argparse

import numpy as np

BANDS = (("below C3", 0, 48), ("C3–C5", 48, 72), ("C5 and up", 72, 128))
LENGTHS = (("a bar or longer", 16, 10 ** 6), ("½–1 bar", 8, 16), ("under ½ bar", 1, 8))


def run_lengths(x: np.ndarray) -> np.ndarray:
    """Per note cell of (N, T, P) bool rolls, the length in steps of the note it belongs to (0 elsewhere)."""
    n, t, p = x.shape
    out = np.zeros(x.shape, np.int32)
    for i, k in zip(*np.nonzero(x.any(axis=1))):
        col = x[i, :, k]
        edges = np.flatnonzero(np.diff(np.concatenate([[0], col.astype(np.int8), [0]])))
        for start, end in zip(edges[::2], edges[1::2]):
            out[i, start:end, k] = end - start
    return out


def evidence(classifier, phrases: np.ndarray, genre: str, lowest_pitch: int) -> dict[str, float]:
    """Shares of note cells and of the classifier's evidence for ``genre`` per band and length."""
    from midigenre.attribution import attribute

    x = phrases > 0.5
    a = attribute(classifier, x.astype(np.float32), genre)
    lengths = run_lengths(x)
    pitch = np.arange(x.shape[2])[None, None, :] + lowest_pitch
    out = {"judged": float(np.mean(classifier.predict(x.astype(np.float32)) == classifier.index(genre)))}
    for label, lo, hi in BANDS:
        mask = x & (pitch >= lo) & (pitch < hi)
        out[f"cells {label}"], out[f"evidence {label}"] = x[mask].sum() / max(x.sum(), 1), a[mask].sum() / max(a.sum(), 1e-9)
    for label, lo, hi in LENGTHS:
        mask = (lengths >= lo) & (lengths < hi)
        out[f"cells {label}"], out[f"evidence {label}"] = x[mask].sum() / max(x.sum(), 1), a[mask].sum() / max(a.sum(), 1e-9)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", required=True, help="a multi-genre run or model folder, or a shipped model's name")
    ap.add_argument("--classifier", required=True, help="a K-class classifier trained on the model's training songs")
    ap.add_argument("--genre", required=True, help="the genre to look for")
    ap.add_argument("--part", choices=("valid", "test"), default="valid")
    ap.add_argument("--max-phrases", type=int, default=200)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()

    import torch

    from midigenre.classifier import Classifier
    from midigenre.dataset import PhraseCache, SongSplit, model_caches
    from midigenre.transfer import TransferModel
    from shared.registry import model_folder

    torch.set_num_threads(args.threads)
    model = TransferModel.load(args.model, kind="multi-genre")
    if args.genre not in model.names:
        raise SystemExit(f"error: the model knows {', '.join(model.names)}, not {args.genre}")
    classifier = Classifier.load(args.classifier)
    split = SongSplit.load(model_folder(args.model) / "split.json")
    caches = model_caches(model.meta, model.folder)

    def phrases(g: str) -> np.ndarray:
        with PhraseCache(caches[g]) as c:
            x = c.phrases(g, split.rows(c, g, args.part))
        x = x[x.reshape(len(x), -1).any(axis=1)]
        pick = np.random.default_rng(0).choice(len(x), min(args.max_phrases, len(x)), replace=False)
        return x[np.sort(pick)]

    rows = [(f"real {args.genre}", evidence(classifier, phrases(args.genre), args.genre, model.settings.lowest_pitch))]
    for s in model.names:
        if s != args.genre:
            y, _ = model.transfer_phrases(phrases(s), args.genre, source=s)
            rows.append((f"{s} → {args.genre}", evidence(classifier, y, args.genre, model.settings.lowest_pitch)))
    keys = [label for label, *_ in BANDS + LENGTHS]
    print(f"Share of note cells / of the classifier's evidence for {args.genre} ({args.part} songs):\n")
    print("| phrases | judged " + args.genre + " | " + " | ".join(keys) + " |")
    print("|---|---|" + "---|" * len(keys))
    for name, r in rows:
        print(f"| {name} | {r['judged']:.2f} | " + " | ".join(f"{r['cells ' + k]:.2f} / {r['evidence ' + k]:.2f}" for k in keys) + " |")


if __name__ == "__main__":
    main()
