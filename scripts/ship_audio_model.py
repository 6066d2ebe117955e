"""Copy a trained audio classifier into data/models/NAME with its model card.

    python scripts/ship_audio_model.py runs250/cnn-5s data/models/audio-rendered \
        --command "genre audio train audio/ --backend cnn -o runs/cnn" --render "genre audio render-dataset ..."

Weights are stored as float16 (half the size; loading casts them back to float32, and the
test accuracy is measured again after the cast and written into the card).
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
from pathlib import Path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("run", type=Path)
    ap.add_argument("dest", type=Path)
    ap.add_argument("--dataset", type=Path, required=True, help="the data set it was trained on (for the re-check)")
    ap.add_argument("--command", default="")
    ap.add_argument("--render", default="")
    ap.add_argument("--table", default="", help="markdown results table of the backends benchmark, for the card")
    args = ap.parse_args()

    from audiogenre.classify import evaluate_audio_classifier
    from audiogenre.datasets import open_dataset
    from shared.registry import read_meta, read_weights, resave_model

    meta = read_meta(args.run, "audio-classifier")
    report = json.loads((args.run / "report.json").read_text())
    with tempfile.TemporaryDirectory() as tmp:
        stage = Path(tmp) / "model"
        half = {k: (v.half() if v.is_floating_point() else v) for k, v in read_weights(args.run).items()}
        resave_model(args.run, stage, tensors=half)
        check = evaluate_audio_classifier(stage, open_dataset(args.dataset), progress=False)
        args.dest.mkdir(parents=True, exist_ok=True)
        for f in ("model.safetensors", "model.json"):
            shutil.copy(stage / f, args.dest / f)
    shutil.copy(args.run / "confusion.png", args.dest / "confusion.png")
    tr = meta["train"]
    rows = "\n".join(f"| {g} | {r['precision']:.3f} | {r['recall']:.3f} | {r['f1']:.3f} | {r['support']} |"
                     for g, r in check["per_class"].items())
    size = (args.dest / "model.safetensors").stat().st_size / 2**20
    card = f"""# audio-rendered: the default audio genre classifier

A `{tr['backend']}` classifier (Mongelli et al.'s spectrogram CNN family; see `audiogenre/backends.py`) for
**{', '.join(meta['genres'])}**, trained from scratch on audio **rendered with FluidSynth** from the
MIDI collections in `../shared/data` (General MIDI sound font TimGM6mb). `genre audio transform`
uses it when no `--classifier` is given.

**What it knows.** Rendered timbres: General MIDI instruments through one sound font, no
mixing, no vocals, no room. It has never heard a recording. On recorded music use a
wav2vec2 classifier (`genre audio train … --encoder facebook/wav2vec2-base`) or train this
backend on your own recordings.

## Data

- Rendered set: {tr['dataset']} ({tr['dataset_kind']}), {tr['segment']:g} s segments of 10 s clips, one random
  crop per song, split by song (80/10/10, seed {tr['seed']}): {', '.join(f"{k} {v}" for k, v in tr['segments'].items())} segments.
- Render command: `{args.render}`
- Train command: `{args.command}`

## Settings

Backend `{tr['backend']}` ({json.dumps(meta['backend']['config'])}), Adam lr {tr['lr']:g}, batch {tr['batch_size']},
≤ {tr['epochs']} epochs with early stopping on the validation loss (best epoch {tr['best_epoch']}), seed {tr['seed']}.
Input: 16 kHz mono, {tr['segment']:g} s; the spectrogram is computed inside the model from the waveform.
Weights stored as float16 ({size:.1f} MB).

## Held-out results (test split: songs never seen in training)

- Accuracy per {tr['segment']:g} s segment: **{check['accuracy']:.1%}** (n = {check['n']}) after the float16 cast
  (float32: {report['accuracy']:.1%}); per 10 s clip (segments averaged): {report['clip_accuracy']:.1%} (n = {report['n_clips']}).

| genre | precision | recall | F1 | n |
|---|---|---|---|---|
{rows}

![confusion matrix](confusion.png)

{args.table}
"""
    (args.dest / "README.md").write_text(card)
    print(f"{args.dest}: {size:.1f} MB, test accuracy {check['accuracy']:.1%} (float16) vs {report['accuracy']:.1%} (float32)")


if __name__ == "__main__":
    main()
