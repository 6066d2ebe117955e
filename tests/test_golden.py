"""Golden tests of the shipped MIDI models: what each one *does* to fixed music, not how it is wired.

For every shipped MIDI model (``genre model`` lists them) and every direction it transfers, a
fixed set of phrases — the first usable held-out songs of each genre in the model's own
``split.json`` ``test`` part, :data:`PHRASES_PER_SONG` phrases from each of
:data:`SONGS_PER_GENRE` songs, read from ``../shared/data/midi`` with the model's own
preparation rules (``model.settings_for(genre)``: pop as 4/4, the others lenient) — is
transferred as ``genre midi transfer`` does (the model's threshold and keep-source of the
direction; a melody-locked model reads the melody and what lies under it), and measured:

* the **share judged as the target** by a fixed small judge (a
  :class:`midigenre.judges.FeatureJudge` trained once on the training songs of the four-genre
  split, stored in ``tests/data/golden_judge.safetensors``);
* the **transposition-invariant content change** (:func:`midigenre.metrics.content_change_transposed`),
  the plain content change, and for a melody-locked model **melody kept** (still sounding / still
  on top) and **harmony kept** (:mod:`midigenre.metrics`).

Each is compared with the value stored in ``tests/data/golden.json`` within :data:`TOLERANCE`,
so a re-shipped model that behaves differently fails here. When a model is re-shipped *on
purpose*, rewrite its golden values with one command (and commit them with the model)::

    python scripts/golden.py --model four-genres-melody --model jazz-classical-melody

``scripts/golden.py`` (no ``--model``: every shipped MIDI model; ``--judge``: train the judge
again first) calls the functions of this module, so the stored values are exactly what this
test measures. The data folder is ``../shared/data/midi`` (``GENRE_SHARED_DATA`` moves it);
without it the tests skip, saying so (CI has it).
"""

from __future__ import annotations

import hashlib
import json
import math
import types
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import REPO, SHARED_MIDI

GOLDEN = REPO / "tests" / "data" / "golden.json"
JUDGE = REPO / "tests" / "data" / "golden_judge.safetensors"
#: The shipped MIDI models with golden values.
MODELS = ("four-genres-melody", "jazz-classical-melody")
#: The model whose split's training songs train the judge (its genres are the judge's).
JUDGE_SPLIT_MODEL = "four-genres-melody"
SONGS_PER_GENRE, PHRASES_PER_SONG = 4, 4
#: Held-out songs looked at per genre to find SONGS_PER_GENRE usable ones.
SONGS_LOOKED_AT = 8

#: How far a measured value may be from its golden value. A share is over 16 phrases (steps of
#: 1/16): two phrases may change their verdict (a float summed in another order on another CPU can
#: move a cell across a threshold, and a phrase near the judge's boundary with it). Content change,
#: melody and harmony are means over the 16 phrases' cells; 0.03 allows a few cells and no more.
TOLERANCE = {"share": 2 / 16 + 1e-9, "transposition_invariant": 0.03, "content_change": 0.03,
             "melody_sounding": 0.03, "melody_top": 0.03, "harmony": 0.03, "judge_accuracy": 2 / 16 + 1e-9}


# ----------------------------------------------------------------------------- the judge


def save_judge(judge, path: Path) -> None:
    """Write a :class:`~midigenre.judges.FeatureJudge` as safetensors (weights, feature mean and
    std; genres and settings hash in the metadata)."""
    from safetensors.numpy import save_file

    tensors = {f"net.{k}": v.detach().cpu().numpy().astype(np.float32) for k, v in judge.net.state_dict().items()}
    tensors["mean"], tensors["std"] = judge.mean.astype(np.float32), judge.std.astype(np.float32)
    save_file(tensors, str(path), metadata={"genres": json.dumps(judge.genres), "settings_hash": judge.settings_hash})


def load_judge(path: Path = JUDGE):
    """The fixed judge saved by :func:`save_judge`."""
    import torch
    from safetensors import safe_open
    from torch import nn

    from midigenre.judges import FeatureJudge

    with safe_open(str(path), framework="np") as f:
        meta = f.metadata()
        t = {k: f.get_tensor(k) for k in f.keys()}
    hidden, n_features = t["net.0.weight"].shape
    genres = json.loads(meta["genres"])
    net = nn.Sequential(nn.Linear(n_features, hidden), nn.ReLU(), nn.Dropout(0.2), nn.Linear(hidden, len(genres)))
    net.load_state_dict({k[len("net."):]: torch.from_numpy(v) for k, v in t.items() if k.startswith("net.")})
    net.eval()
    return FeatureJudge(net, t["mean"], t["std"], genres, meta["settings_hash"])


# ----------------------------------------------------------------------------- the fixed phrases


def heldout_songs(model, genre: str, data: Path) -> list[Path]:
    """The first :data:`SONGS_LOOKED_AT` held-out songs of ``genre`` in the model's split, found by
    name under ``data`` and checked by SHA-1 (:func:`midigenre.song_quality.split_songs`)."""
    from midigenre.dataset import SongSplit
    from midigenre.song_quality import split_songs

    split = SongSplit.load(model.folder / "split.json")
    first = types.SimpleNamespace(genres={genre: {"test": split.genres[genre]["test"][:SONGS_LOOKED_AT]}})
    return split_songs(first, genre, "test", [data])


def golden_phrases(model, genre: str, data: Path) -> dict:
    """The fixed phrases of ``genre`` for ``model``: PHRASES_PER_SONG phrases with notes, evenly
    spread, from each of the first SONGS_PER_GENRE held-out songs the model's settings can read.
    Returns ``{"source": full phrases, "input": what the generator reads, "melody": melody cells,
    "songs": names}``, each (N, 64, 84) bool, read as :func:`midigenre.transfer.transfer_midi`
    reads a song."""
    from midigenre.melody import locked_input
    from midigenre.pianoroll import Unusable, read_song, split_phrases
    from midigenre.transfer import song_melody

    settings = model.settings_for(genre)
    xs, ins, ms, names = [], [], [], []
    for path in heldout_songs(model, genre, data):
        try:
            song = read_song(path, settings, keep_notes=True)
        except Unusable:
            continue
        mel, _, _ = song_melody(song, settings, "auto")
        roll = locked_input(song.roll, mel) if model.melody_lock else song.roll
        full = split_phrases(song.roll, settings, keep_empty=True, pad_tail=True)[0]
        sounding = np.flatnonzero(full.any(axis=(1, 2)))
        if len(sounding) < PHRASES_PER_SONG:
            continue
        pick = sounding[np.round(np.linspace(0, len(sounding) - 1, PHRASES_PER_SONG)).astype(int)]
        xs.append(full[pick])
        ins.append(split_phrases(roll, settings, keep_empty=True, pad_tail=True)[0][pick])
        ms.append(split_phrases(mel, settings, keep_empty=True, pad_tail=True)[0][pick])
        names.append(path.name)
        if len(names) == SONGS_PER_GENRE:
            break
    if len(names) < SONGS_PER_GENRE:
        raise RuntimeError(f"only {len(names)} of the first {SONGS_LOOKED_AT} held-out {genre} songs of "
                           f"{model.folder.name} are usable under {data}")
    return {"source": np.concatenate(xs), "input": np.concatenate(ins), "melody": np.concatenate(ms), "songs": names}


# ----------------------------------------------------------------------------- measuring


def weights_sha1(model) -> str:
    return hashlib.sha1((model.folder / "model.safetensors").read_bytes()).hexdigest()


def _mean(v) -> float:
    v = np.asarray(v, dtype=float)
    v = v[np.isfinite(v)]
    return float(v.mean()) if v.size else float("nan")


def measure(model, judge, data: Path = SHARED_MIDI) -> dict:
    """Every direction of ``model`` (a loaded :class:`~midigenre.transfer.GenreTransfer`) on its
    fixed phrases: ``{"weights_sha1", "songs": {genre: names}, "judge_accuracy": {genre: share of
    the real phrases the judge calls their genre}, "directions": {"s→t": {measures}}}``."""
    from midigenre.metrics import content_change, content_change_transposed, harmony_kept, melody_kept

    phrases = {g: golden_phrases(model, g, data) for g in model.names}
    out = {"weights_sha1": weights_sha1(model), "melody_lock": bool(model.melody_lock),
           "songs": {g: p["songs"] for g, p in phrases.items()},
           "judge_accuracy": {g: float(np.mean(judge.predict(p["source"]) == judge.index(g)))
                              for g, p in phrases.items()},
           "directions": {}}
    for s in model.names:
        p = phrases[s]
        settings = model.settings_for(s)
        for t in model.names:
            if s == t:
                continue
            y, _ = model.transfer_phrases(p["input"], t, source=s, melody=p["melody"] if model.melody_lock else None)
            x = p["source"]
            row = {"share": float(np.mean(judge.predict(y) == judge.index(t))),
                   "transposition_invariant": _mean(content_change_transposed(x, y)),
                   "content_change": _mean(content_change(x, y))}
            if model.melody_lock:
                row["melody_sounding"], row["melody_top"] = melody_kept(p["melody"], y)
                row["harmony"] = harmony_kept(x, y, settings.steps_per_beat, settings.lowest_pitch)
            out["directions"][f"{s}→{t}"] = row
    return out


def differences(got: dict, want: dict) -> list[str]:
    """What in ``got`` is outside :data:`TOLERANCE` of ``want`` (empty: the same behaviour)."""
    bad = []
    if got["songs"] != want["songs"]:
        bad.append(f"other songs: {got['songs']} (golden {want['songs']})")
    for g, v in want["judge_accuracy"].items():
        if not abs(got["judge_accuracy"].get(g, math.nan) - v) <= TOLERANCE["judge_accuracy"]:
            bad.append(f"the judge on real {g} phrases: {got['judge_accuracy'].get(g)} (golden {v}): "
                       "the judge or the reading of songs changed, not only the model")
    if set(got["directions"]) != set(want["directions"]):
        bad.append(f"directions {sorted(got['directions'])} (golden {sorted(want['directions'])})")
    for d, row in want["directions"].items():
        for k, v in row.items():
            g = got["directions"].get(d, {}).get(k, math.nan)
            if not abs(g - v) <= TOLERANCE[k]:
                bad.append(f"{d} {k}: {g:.4f} (golden {v:.4f} ± {TOLERANCE[k]:.3f})")
    return bad


# ----------------------------------------------------------------------------- the tests


@pytest.fixture(scope="module")
def judge():
    return load_judge()


def test_the_judge_is_small_and_knows_the_four_genres(judge):
    from midigenre.judges import FeatureJudge

    assert isinstance(judge, FeatureJudge) and judge.genres == ["pop", "classical", "jazz", "folk"]
    assert JUDGE.stat().st_size < 100_000
    assert json.loads(GOLDEN.read_text())["judge"]["sha1"] == hashlib.sha1(JUDGE.read_bytes()).hexdigest(), \
        "the golden values were measured with another judge: run python scripts/golden.py"


def test_every_shipped_midi_model_has_golden_values():
    from shared.registry import read_meta, shipped_model_names

    midi = [n for n in shipped_model_names() if read_meta(n)["kind"] in ("cyclegan", "multi-genre")]
    assert sorted(midi) == sorted(MODELS), ("a shipped MIDI model without golden values: add it to MODELS in "
                                            "tests/test_golden.py and run python scripts/golden.py --model NAME")
    assert sorted(json.loads(GOLDEN.read_text())["models"]) == sorted(MODELS)


@pytest.mark.parametrize("name", MODELS)
def test_a_shipped_model_transfers_as_it_did(name, judge):
    """Each direction's share judged target, content change (and for a melody-locked model melody
    and harmony kept) on the model's fixed held-out phrases equal the golden values."""
    from midigenre.transfer import GenreTransfer

    if not SHARED_MIDI.is_dir():
        pytest.skip(f"the shared data folder {SHARED_MIDI} is absent (CI has it)")
    want = json.loads(GOLDEN.read_text())["models"].get(name)
    assert want is not None, f"no golden values for {name}: run python scripts/golden.py --model {name}"
    model = GenreTransfer.load(name)
    got = measure(model, judge)
    bad = differences(got, want)
    reshipped = got["weights_sha1"] != want["weights_sha1"]
    assert not bad, (f"{name} no longer transfers as it did" + (
        " (its weights changed since the golden values were written: if it was re-shipped on purpose, "
        f"run python scripts/golden.py --model {name} and commit tests/data/golden.json)" if reshipped else "")
        + ":\n  " + "\n  ".join(bad))
