"""The Fréchet Audio Distance of symbolic transfers: render piano-roll phrases with FluidSynth
and score them with FAD (``genre midi evaluate --fad``).

Each 64×84 phrase becomes an 8-second piano part (4 bars of 4/4 at 120 bpm, the roll's own
grid), rendered at 16 kHz and embedded one vector per second by an audio backend. For a
transfer A→B, FAD(transferred, real B) is compared with the baseline FAD(source A, real B):
a transfer that moves toward B lowers it. All three sets are rendered the same way (same
instrument and sound font), so FAD sees differences in the notes, not in the timbre.
"""

from __future__ import annotations

import numpy as np

from audiogenre.audio import SAMPLE_RATE
from shared.errors import GenreError


def render_phrases(phrases: np.ndarray, *, tempo: float = 120.0, soundfont=None, program: int = 0,
                   rate: int = SAMPLE_RATE) -> list[np.ndarray]:
    """Mono float32 audio of each (64, 84) phrase (silent phrases give silence)."""
    from audiogenre.render import renderer, tracks_of_pretty_midi
    from midigenre.pianoroll import roll_to_midi

    rend = renderer(soundfont, rate)
    seconds = phrases.shape[1] * 60.0 / (tempo * 4)  # 16th-note steps
    out = []
    for ph in phrases:
        pm = roll_to_midi(ph, tempo=tempo, program=program)
        wave = rend.render(tracks_of_pretty_midi(pm), start=0.0, seconds=seconds)
        out.append(wave.mean(axis=1).astype(np.float32))
    return out


def phrase_embeddings(backend, phrases: np.ndarray, *, soundfont=None, segment: float = 1.0) -> np.ndarray:
    """Per-second embeddings of all rendered phrases, stacked ``(n, D)`` (silent phrases skipped)."""
    from audiogenre.fad_embed import wave_embeddings

    rows = []
    for wave in render_phrases(phrases, soundfont=soundfont):
        if np.abs(wave).max() < 1e-4:
            continue
        rows.append(wave_embeddings(backend, wave, segment=segment))
    if not rows:
        raise GenreError("every phrase rendered to silence; nothing to embed")
    return np.concatenate(rows)


def transfer_fad(model, x_a: np.ndarray, x_b: np.ndarray, backend, *, max_phrases: int = 200, seed: int = 0,
                 soundfont=None, segment: float = 1.0, progress=None) -> dict:
    """FAD per direction: transferred vs real target, and source vs real target (the baseline).

    FAD depends strongly on the number of embeddings, so the transferred and the source set
    are subsampled (seeded) to the same n before they are compared with the target set.
    ``progress(stage, done, total)`` (:mod:`shared.progress`) counts the four sets rendered and embedded.
    """
    from shared.progress import progress_callback

    report_progress = progress_callback(progress)
    rng = np.random.default_rng(seed)

    def pick(x):
        return x if len(x) <= max_phrases else x[np.sort(rng.choice(len(x), max_phrases, replace=False))]

    from audiogenre.fad import fad

    a, b = model.genres["a"], model.genres["b"]
    xa, xb = pick(x_a), pick(x_b)
    out = {}
    steps = [("real " + a, xa), ("real " + b, xb)]
    emb = {}
    stage = "FAD: render + embed"
    report_progress(stage, 0, 4)
    for name, x in steps:
        emb[name] = phrase_embeddings(backend, x, soundfont=soundfont, segment=segment)
        report_progress(stage, len(emb), 4)
    for x, src, dst in ((xa, a, b), (xb, b, a)):
        y, _ = model.transfer_phrases(x, dst)
        emb[f"{src}→{dst}"] = phrase_embeddings(backend, y, soundfont=soundfont, segment=segment)
        report_progress(stage, len(emb), 4)
    for src, dst in ((a, b), (b, a)):
        moved, source = emb[f"{src}→{dst}"], emb[f"real {src}"]
        n = min(len(moved), len(source))
        moved = moved[np.sort(rng.choice(len(moved), n, replace=False))]
        source = source[np.sort(rng.choice(len(source), n, replace=False))]
        t = fad(emb[f"real {dst}"], moved)
        base = fad(emb[f"real {dst}"], source)
        out[f"{src}→{dst}"] = {"fad_transferred_vs_target": t.value, "fad_source_vs_target": base.value,
                               "n_target": t.n_reference, "n_transferred": t.n_test, "n_source": base.n_test}
    out["phrases"] = {a: int(len(xa)), b: int(len(xb))}
    return out
