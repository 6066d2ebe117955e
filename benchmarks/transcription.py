"""Transcription and the audio → MIDI → genre → audio bridge, measured on rendered songs whose notes are known.

Songs: the **held-out** songs of ``--split`` (default: the shipped ``four-genres-melody`` model's
``split.json``, which holds pop, classical, jazz and folk; found by name and SHA-1 under
``--midi-root``), in a seeded order, ``--songs`` per genre, of which up to ``--rubato`` are songs
whose tempo changes within the clip (the piano-midi.de classical files and some POP909 songs carry
a tempo map of their performance) where the genre has such songs; the first ``--seconds`` of each
are rendered with FluidSynth (every instrument as written, drums too) at 22 050 Hz.

**Keeping the timing** (the first table): the notes put on the grid — the constant-tempo grid
(``--grid constant``) and the tempo-following one (the default) — are played back at their grid
times (the grid's own tempo map) and scored as onsets against the song's notes: mir_eval onset
F1, 50 ms, pitch within 50 cents, at the best constant shift within ±100 ms (a shift moves every
note alike, so it does not hide a grid that drifts). ``raw`` is the same score of the notes as
transcribed, before any grid: the ceiling. Per genre, for the songs whose tempo changes, and the
difference and ratio of the two grids.

Per genre, for the songs in 4/4 (the bar position needs bar lines):

* onset P / R / F1 (mir_eval, 50 ms, pitch within 50 cents) and F1 with offsets (mir_eval's
  default: offset within 20 % of the note or 50 ms), of the notes basic-pitch finds against the
  song's pitched notes (drums are not notes to find);
* tempo: median relative error of the estimate, and the share of songs within 4 % of the true
  tempo (acc1) or of its double, half, triple or third (acc2, MIREX);
* grid accuracy: the share of true notes found (onset matched) **and** put on their own 16th of
  the bar by the quantiser (``grid``), the same among found notes only (``grid|found``), and the
  16th within the beat only (``in beat|found``: right wherever the bar lines are put), and the
  bar position with the true tempo and bar lines given (``grid@true``: what the quantiser does
  when the tempo and downbeat are right).

Tempo and grid by tracker, on the same transcribed notes: the default (the beats followed from
the overall tempo of the comb), and the constant grids: the toolkit's own comb over the note
onsets then the onset fit, librosa's beat tracker then the onset fit, librosa's beats alone (a
line through them), and the comb alone.

End to end (``--bridge``), for the model's genres and its held-out songs, each clip goes through
``transfer_audio`` (what ``genre audio arrange`` runs) to the other genre:

* ``sym→tgt``: the share of 4-bar phrases that the symbolic classifier (``--classifier``, a
  ``genre midi train-classifier`` folder trained on the model's training songs; without it a
  :class:`midigenre.judges.FeatureJudge` is trained here on the training songs) assigns to the
  target genre, for the transcription (before) and the transfer (after);
* ``audio p(tgt)``: the shipped audio classifier's (``audio-rendered``) mean p(target) over 3 s
  segments, for the original rendering, the transcription rendered as piano (so the change of
  instruments is seen apart from the change of notes) and the transferred rendering.

Speed: seconds of computation per minute of audio, for transcription alone and the whole bridge.

    OMP_NUM_THREADS=1 nice -n 10 python benchmarks/transcription.py    # ~2 min on a busy core
    python benchmarks/transcription.py --bridge --songs 5 --seconds 60 --classifier clf/ --json out.json
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

RATE = 22_050

#: Ways to find the grid, compared on the same transcribed notes.
TRACKER_VARIANTS = {
    "follow (default)": {"tracker": "onsets", "grid": "follow"},
    "constant: onsets": {"tracker": "onsets", "grid": "constant"},
    "constant: librosa + onset fit": {"tracker": "librosa", "grid": "constant"},
    "constant: librosa beats alone": {"tracker": "librosa", "refine": False, "grid": "constant"},
    "constant: onsets, no fit": {"tracker": "onsets", "refine": False, "grid": "constant"},
}
#: The two grids of the timing table.
OLD, NEW = "constant: onsets", "follow (default)"
#: Constant shifts (s) tried when scoring the notes on the grid.
SHIFTS = np.arange(-0.10, 0.1001, 0.01)


def true_notes(path: Path, seconds: float):
    """``(notes, tempo, tempo_changes, four_four)`` of a song's first ``seconds``, or None (fewer than 20
    pitched notes, unreadable): ``notes`` (n, 4) start s, end s, pitch, step (the 16th of the
    onset counted from tick 0) of the pitched notes starting in the clip; ``tempo`` the median
    tempo of the clip; ``tempo_changes`` how many different tempos it has (1: steady);
    ``four_four`` whether the song is in 4/4 throughout."""
    import symusic

    score = symusic.Score(str(path))
    if score.tpq <= 0:
        return None
    ts = [(t.numerator, t.denominator) for t in score.time_signatures]
    four_four = bool(ts) and all(t == (4, 4) for t in ts)
    sec = score.to("second")
    sec_tempos = sec.tempos.numpy()
    inside = sec_tempos["time"] < seconds
    mspq = sec_tempos["mspq"][inside] if inside.any() else np.array([500000])
    if len(sec_tempos["time"]) and sec_tempos["time"].min() > 0 and inside.any():
        mspq = np.concatenate([[500000], mspq])  # MIDI's default before the first tempo event
    rows = []
    for t_tick, t_sec in zip(score.tracks, sec.tracks):
        if t_tick.is_drum or not len(t_tick.notes):
            continue
        a, b = t_tick.notes.numpy(), t_sec.notes.numpy()
        step = np.floor(a["time"].astype(np.float64) * 4 / score.tpq + 0.5)
        rows.append(np.stack([b["time"], b["time"] + b["duration"], b["pitch"], step], axis=1))
    if not rows:
        return None
    notes = np.concatenate(rows).astype(np.float64)
    notes = notes[notes[:, 0] < seconds]
    notes[:, 1] = np.minimum(notes[:, 1], seconds)
    notes = notes[notes[:, 1] > notes[:, 0]]
    if len(notes) < 20:
        return None
    return notes, 6e7 / float(np.median(mspq)), len(np.unique(mspq)), four_four


def pick_songs(split_path: Path, root: Path, n: int, rubato: int, seconds: float,
               seed: int) -> dict[str, list[tuple[Path, np.ndarray, float, int, bool]]]:
    """``{genre: [(file, true notes, tempo, tempo changes, 4/4)]}``: the split's held-out songs,
    seeded, up to ``rubato`` of them with tempo changes in the clip."""
    split = json.loads(split_path.read_text())
    by_name: dict[str, list[Path]] = {}
    for p in root.rglob("*"):
        if p.suffix.lower() in (".mid", ".midi") and p.is_file():
            by_name.setdefault(p.name, []).append(p)
    rng = np.random.default_rng(seed)
    picked = {}
    for genre, parts in split["genres"].items():
        files = []
        for entry in parts["test"]:
            for p in by_name.get(entry["name"], []):
                if hashlib.sha1(p.read_bytes()).hexdigest() == entry["sha1"]:
                    files.append(p)
                    break
        moving, steady = [], []
        for i in rng.permutation(len(files)):
            try:
                got = true_notes(files[i], seconds)
            except (RuntimeError, ValueError):  # symusic on an unreadable file: not a song to measure on
                got = None
            if got is not None:
                (moving if got[2] > 1 else steady).append((files[i], *got))
        take = moving[:rubato]
        picked[genre] = take + steady[: n - len(take)]
    return picked


def held_out(model) -> set[str]:
    """Names of the transfer model's held-out songs (for the end-to-end part)."""
    split = json.loads((Path(model.folder) / "split.json").read_text())
    return {e["name"] for parts in split["genres"].values() for e in parts["test"]}


def grid_f1(ref: np.ndarray, qnotes: np.ndarray, grid) -> float:
    """Onset F1 (50 ms, pitch) of notes on the grid played at their grid times, at the best constant
    shift of :data:`SHIFTS` (see the module docstring)."""
    import mir_eval

    if len(qnotes) == 0:
        return 0.0
    on = grid.times(qnotes[:, 0].astype(np.float64))
    off = np.maximum(grid.times(qnotes[:, 1].astype(np.float64)), on + 0.01)
    ri, rp = ref[:, :2] + 1.0, mir_eval.util.midi_to_hz(ref[:, 2])  # +1 s: a shifted note stays at t > 0
    ep = mir_eval.util.midi_to_hz(qnotes[:, 2].astype(np.float64))
    return max(mir_eval.transcription.precision_recall_f1_overlap(
        ri, rp, np.stack([on, off], axis=1) + 1.0 + shift, ep, onset_tolerance=0.05, offset_ratio=None)[2]
        for shift in SHIFTS)


def raw_f1(ref: np.ndarray, notes: np.ndarray) -> float:
    """The same score of the notes as transcribed (no grid): the ceiling of :func:`grid_f1`."""
    import mir_eval

    if len(notes) == 0:
        return 0.0
    ri, rp = ref[:, :2] + 1.0, mir_eval.util.midi_to_hz(ref[:, 2])
    return max(mir_eval.transcription.precision_recall_f1_overlap(
        ri, rp, notes[:, :2] + 1.0 + shift, mir_eval.util.midi_to_hz(notes[:, 2]), onset_tolerance=0.05,
        offset_ratio=None)[2] for shift in SHIFTS)


def note_scores(ref: np.ndarray, est: np.ndarray) -> dict:
    import mir_eval

    if len(est) == 0:
        return {"P": 0.0, "R": 0.0, "F1": 0.0, "F1_offset": 0.0, "matches": []}
    ri, rp = ref[:, :2], mir_eval.util.midi_to_hz(ref[:, 2])
    ei, ep = est[:, :2], mir_eval.util.midi_to_hz(est[:, 2])
    p, r, f, _ = mir_eval.transcription.precision_recall_f1_overlap(ri, rp, ei, ep, onset_tolerance=0.05, offset_ratio=None)
    _, _, fo, _ = mir_eval.transcription.precision_recall_f1_overlap(ri, rp, ei, ep, onset_tolerance=0.05)
    matches = mir_eval.transcription.match_notes(ri, rp, ei, ep, onset_tolerance=0.05, offset_ratio=None)
    return {"P": p, "R": r, "F1": f, "F1_offset": fo, "matches": matches}


def grid_scores(ref: np.ndarray, est: np.ndarray, matches, grid, true_tempo: float | None) -> dict:
    """Shares of true notes whose 16th within the bar the quantiser recovers on ``grid`` (see the
    module docstring); ``grid@true`` only for a steady song (``true_tempo``)."""
    if not matches:
        return {"grid": 0.0, "grid_found": float("nan"), "grid_beat": float("nan"), "grid_true": float("nan")}
    i_ref = np.array([m[0] for m in matches])
    i_est = np.array([m[1] for m in matches])
    true_pos = ref[i_ref, 3].astype(np.int64) % 16
    est_pos = np.floor(grid.steps(est[i_est, 0]) + 0.5).astype(np.int64) % 16
    hit = est_pos == true_pos
    at_true = float("nan")
    if true_tempo:
        at_true = float((np.floor(est[i_est, 0] / (60.0 / (true_tempo * 4)) + 0.5).astype(np.int64) % 16 == true_pos).mean())
    return {"grid": float(hit.sum() / len(ref)), "grid_found": float(hit.mean()),
            "grid_beat": float((est_pos % 4 == true_pos % 4).mean()), "grid_true": at_true}


def tempo_scores(est: float, true: float) -> dict:
    err = abs(est - true) / true
    acc2 = any(abs(est - true * k) / (true * k) <= 0.04 for k in (1, 2, 0.5, 3, 1 / 3))
    return {"tempo_err": err, "acc1": float(err <= 0.04), "acc2": float(acc2)}


def audio_probabilities(clf, wave: np.ndarray, rate: int, seconds: float = 3.0) -> np.ndarray:
    """Mean genre probabilities of the audio classifier over non-overlapping ``seconds`` segments."""
    import torch

    from audiogenre.audio import SAMPLE_RATE, resample, to_mono

    x = resample(to_mono(wave), rate, SAMPLE_RATE)
    n = int(seconds * SAMPLE_RATE)
    segs = [x[i:i + n] for i in range(0, len(x) - n + 1, n)] or [np.pad(x, (0, n - len(x)))]
    segs = [s for s in segs if np.abs(s).max() > 1e-3] or segs
    with torch.no_grad():
        p = torch.softmax(clf(torch.from_numpy(np.stack(segs).astype(np.float32))), dim=-1).numpy()
    return p.mean(axis=0)


def symbolic_judge(args, model):
    """The symbolic classifier: ``--classifier`` or a feature judge trained on the training songs."""
    if args.classifier:
        from midigenre.classifier import Classifier

        clf = Classifier.load(args.classifier)
        return clf, f"{args.classifier} (genre-classifier)"
    from midigenre.judges import FeatureJudge
    from midigenre.pianoroll import Unusable, phrases_of_file

    split = json.loads((Path(model.folder) / "split.json").read_text())
    root = Path(args.midi_root)
    by_name = {p.name: p for p in root.rglob("*") if p.suffix.lower() in (".mid", ".midi")}
    xs, genres = [], []
    rng = np.random.default_rng(args.seed)
    for genre, parts in split["genres"].items():
        train = parts["train"]
        rows = []
        for k in rng.permutation(len(train))[: args.judge_songs]:
            p = by_name.get(train[k]["name"])
            if p is None:
                continue
            try:
                rows.append(phrases_of_file(p, model.settings)[0])
            except Unusable:
                continue
        xs.append(np.concatenate(rows))
        genres.append(genre)
    judge = FeatureJudge.train(xs, genres, model.settings.hash())
    return judge, f"feature judge trained here on {args.judge_songs} training songs per genre"


def main(argv=None) -> int:
    root_dir = Path(__file__).resolve().parents[1]
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--midi-root", default=str(root_dir.parent / "shared" / "data" / "midi"))
    ap.add_argument("--split", default=str(root_dir / "data" / "models" / "four-genres-melody" / "split.json"),
                    help="split.json whose held-out songs are measured (default: the four-genres-melody model's).")
    ap.add_argument("--model", default="jazz-classical-melody", help="Transfer model of the end-to-end part (--bridge).")
    ap.add_argument("--songs", type=int, default=3, help="Songs per genre.")
    ap.add_argument("--rubato", type=int, default=2, help="Of those, at most this many with tempo changes in the clip.")
    ap.add_argument("--seconds", type=float, default=40.0, help="Seconds of each song (from its start).")
    ap.add_argument("--bridge", action="store_true",
                    help="Also run the whole audio → MIDI → genre → audio bridge (slower: loads the classifiers).")
    ap.add_argument("--classifier", help="Symbolic genre-classifier folder (default: a feature judge trained here).")
    ap.add_argument("--judge-songs", type=int, default=80, help="Training songs per genre for the feature judge.")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--json", help="Write every per-song number here.")
    args = ap.parse_args(argv)

    import torch

    torch.set_num_threads(args.threads)
    from audiogenre.audio import resample, to_mono, write_audio
    from audiogenre.render import render_file, renderer, tracks_of_pretty_midi
    from audiogenre.transcribe import BP_RATE, beat_grid, quantise, transcribe_audio

    songs = pick_songs(Path(args.split), Path(args.midi_root), args.songs, args.rubato, args.seconds, args.seed)
    judge_what = None
    if args.bridge:
        from audiogenre.arrange import transfer_audio
        from audiogenre.models import DEFAULT_AUDIO_MODEL, AudioClassifier
        from midigenre.pianoroll import read_song, split_phrases
        from midigenre.transfer import TransferModel

        model = TransferModel.load(args.model)
        bridge_songs = held_out(model)
        audio_clf, _ = AudioClassifier.load(DEFAULT_AUDIO_MODEL)
        audio_clf.eval()
        judge, judge_what = symbolic_judge(args, model)
        a, b = model.genres["a"], model.genres["b"]
    print(f"songs (held out in {args.split}): {', '.join(f'{g} {len(v)}' for g, v in songs.items())}; "
          f"first {args.seconds:g} s each" + (f"; symbolic judge: {judge_what}" if judge_what else ""), flush=True)
    rows = []
    tmp = Path(tempfile.mkdtemp(prefix="transcription-bench-"))
    for genre, items in songs.items():
        for path, ref, true_tempo, changes, four_four in items:
            wave = render_file(path, rate=RATE, seconds=args.seconds)
            wave_bp = resample(to_mono(wave), RATE, BP_RATE)
            steady = changes == 1
            row = {"genre": genre, "song": path.name, "true_tempo": true_tempo, "tempo_changes": changes,
                   "four_four": four_four, "minutes": len(wave) / RATE / 60}
            t, c = time.perf_counter(), time.process_time()
            tr = transcribe_audio(wave, RATE, threads=args.threads)
            row["transcribe_s"], row["transcribe_cpu"] = time.perf_counter() - t, time.process_time() - c
            if args.bridge and genre in (a, b) and path.name in bridge_songs:
                target = b if genre == a else a
                clip = tmp / f"{path.stem}.wav"
                write_audio(clip, wave, RATE)
                t, c = time.perf_counter(), time.process_time()
                res = transfer_audio(clip, target, tmp / f"{path.stem}.{target}.wav", model=model, threads=args.threads)
                row["bridge_s"], row["bridge_cpu"] = time.perf_counter() - t, time.process_time() - c
                tr = res.transcription
                src_roll = read_song(res.transcription_midi.read_bytes(), model.settings).roll
                before, _ = split_phrases(src_roll, model.settings)
                after, _ = split_phrases(res.song.transferred, model.settings)
                k = judge.index(target)
                row["sym_before"] = float((judge.predict(before) == k).mean()) if len(before) else float("nan")
                row["sym_after"] = float((judge.predict(after) == k).mean()) if len(after) else float("nan")
                import soundfile as sf

                out, out_rate = sf.read(str(res.output), dtype="float32")
                piano = renderer(None, RATE).render(tracks_of_pretty_midi(tr.midi()))
                kt = audio_clf.genre_index(target)
                row["audio_before"] = float(audio_probabilities(audio_clf, wave, RATE)[kt])
                row["audio_piano"] = float(audio_probabilities(audio_clf, piano, RATE)[kt])
                row["audio_after"] = float(audio_probabilities(audio_clf, out, out_rate)[kt])
                row["direction"] = f"{genre}→{target}"
            ns = note_scores(ref, tr.notes)
            row.update({k: v for k, v in ns.items() if k != "matches"})
            row["raw_f1"] = raw_f1(ref, tr.notes)
            row.update(tempo_scores(tr.tempo, true_tempo))
            if four_four:
                row.update(grid_scores(ref, tr.notes, ns["matches"], tr.grid, true_tempo if steady else None))
            row["est_tempo"] = tr.tempo
            # the grid by each tracker and grid (the default one is tr.grid), on the same notes
            for name, kw in TRACKER_VARIANTS.items():
                t = time.perf_counter()
                g = beat_grid(wave_bp, BP_RATE, tr.notes, **kw)
                row[f"grid_s[{name}]"] = time.perf_counter() - t
                q = quantise(tr.notes, g.tempo, g.origin, beats=g.beats if g.follows else None)
                row[f"qf1[{name}]"] = grid_f1(ref, q, g)
                ts = tempo_scores(g.tempo, true_tempo)
                for k in ("tempo_err", "acc1", "acc2"):
                    row[f"{k}[{name}]"] = ts[k]
                if four_four:
                    gs = grid_scores(ref, tr.notes, ns["matches"], g, None)
                    for k in ("grid", "grid_beat"):
                        row[f"{k}[{name}]"] = gs[k]
            rows.append(row)
            print(f"  {genre:<10} {path.name[:34]:<34} tempos {changes:3d}  F1 raw {row['raw_f1']:.2f}, on the grid: "
                  f"constant {row[f'qf1[{OLD}]']:.2f}, following {row[f'qf1[{NEW}]']:.2f}  "
                  f"tempo {tr.tempo:6.1f} (true {true_tempo:6.1f})", flush=True)

    def mean(rs, k, f=np.nanmean):
        v = [r[k] for r in rs if k in r and np.isfinite(r[k])]
        return f(v) if v else float("nan")

    groups = [(g, [r for r in rows if r["genre"] == g]) for g in songs]
    groups += [("tempo changes", [r for r in rows if r["tempo_changes"] > 1]),
               ("steady tempo", [r for r in rows if r["tempo_changes"] == 1]), ("all", rows)]
    print(f"\nKeeping the timing: onset F1 (50 ms, best constant shift) of the notes on the grid, held-out renders, "
          f"first {args.seconds:g} s")
    print("| genre | songs | of them with tempo changes | raw (no grid) | constant grid (old) | tempo-following (new) | "
          "new − old | new / old | lowest song old → new |")
    print("|---|---|---|---|---|---|---|---|---|")
    for g, rs in groups:
        if not rs:
            continue
        old, new = mean(rs, f"qf1[{OLD}]"), mean(rs, f"qf1[{NEW}]")
        worst = min(rs, key=lambda r: r[f"qf1[{OLD}]"])
        print(f"| {g} | {len(rs)} | {sum(r['tempo_changes'] > 1 for r in rs)} | {mean(rs, 'raw_f1'):.2f} | {old:.2f} | "
              f"{new:.2f} | {new - old:+.2f} | {new / old:.2f} | {worst[f'qf1[{OLD}]']:.2f} → {worst[f'qf1[{NEW}]']:.2f} |")
    print("\nSongs with tempo changes: " + ", ".join(
        f"{r['song']} ({r['tempo_changes']} tempos, {r[f'qf1[{OLD}]']:.2f} → {r[f'qf1[{NEW}]']:.2f})"
        for r in rows if r["tempo_changes"] > 1))
    four = [r for r in rows if r["four_four"]]
    print(f"\nTranscription (rendered songs, first {args.seconds:g} s; grid columns: {len(four)} songs in 4/4)")
    print("| genre | songs | onset P | onset R | onset F1 | F1 w/ offset | tempo err (median) | tempo acc1 / acc2 | grid | "
          "grid\\|found | in beat\\|found | grid@true (steady) |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for g, rs in groups:
        if not rs:
            continue
        print(f"| {g} | {len(rs)} | {mean(rs, 'P'):.2f} | {mean(rs, 'R'):.2f} | {mean(rs, 'F1'):.2f} | {mean(rs, 'F1_offset'):.2f} | "
              f"{100 * mean(rs, 'tempo_err', np.nanmedian):.1f} % | {mean(rs, 'acc1'):.2f} / {mean(rs, 'acc2'):.2f} | "
              f"{mean(rs, 'grid'):.2f} | {mean(rs, 'grid_found'):.2f} | {mean(rs, 'grid_beat'):.2f} | {mean(rs, 'grid_true'):.2f} |")
    print(f"\nTempo and grid by tracker (all {len(rows)} songs, the same transcribed notes; tempo: the median for a "
          "following grid, against the clip's median tempo)")
    print("| tracker | F1 on the grid | tempo err (median) | tempo acc1 | acc2 | grid (4/4) | in beat\\|found | s per call |")
    print("|---|---|---|---|---|---|---|---|")
    for name in TRACKER_VARIANTS:
        print(f"| {name} | {mean(rows, f'qf1[{name}]'):.2f} | {100 * mean(rows, f'tempo_err[{name}]', np.nanmedian):.1f} % | "
              f"{mean(rows, f'acc1[{name}]'):.2f} | {mean(rows, f'acc2[{name}]'):.2f} | {mean(rows, f'grid[{name}]'):.2f} | "
              f"{mean(rows, f'grid_beat[{name}]'):.2f} | {mean(rows, f'grid_s[{name}]', np.nanmedian):.2f} |")
    e2e = [r for r in rows if "direction" in r]
    if e2e:
        print(f"\nEnd to end ({args.model}; symbolic judge: {judge_what}; audio: shipped audio-rendered)")
        print("| direction | songs | sym→target before | after | audio p(target) original | transcription as piano | transferred |")
        print("|---|---|---|---|---|---|---|")
        for d in sorted({r["direction"] for r in e2e}):
            rs = [r for r in e2e if r["direction"] == d]
            print(f"| {d} | {len(rs)} | {mean(rs, 'sym_before'):.2f} | {mean(rs, 'sym_after'):.2f} | {mean(rs, 'audio_before'):.2f} | "
                  f"{mean(rs, 'audio_piano'):.2f} | {mean(rs, 'audio_after'):.2f} |")
    minutes = sum(r["minutes"] for r in rows)
    print(f"\nSpeed ({args.threads} thread(s); wall clock, and CPU time of this process, which other jobs on the machine "
          f"do not inflate), seconds per minute of audio:")
    print(f"  transcription  {sum(r['transcribe_s'] for r in rows) / minutes:5.1f} wall, "
          f"{sum(r['transcribe_cpu'] for r in rows) / minutes:5.1f} CPU  ({minutes:.1f} min in {len(rows)} clips)")
    if e2e:
        bm = sum(r["minutes"] for r in e2e)
        print(f"  whole bridge   {sum(r['bridge_s'] for r in e2e) / bm:5.1f} wall, {sum(r['bridge_cpu'] for r in e2e) / bm:5.1f} CPU"
              f"  (transcribe, transfer, render, write; {bm:.1f} min in {len(e2e)} clips)")
    if args.json:
        Path(args.json).write_text(json.dumps({"args": vars(args), "judge": judge_what, "rows": rows}, indent=1, default=float))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
