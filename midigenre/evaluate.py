"""Evaluate a transfer model: transfer strength S_tot (with a genre classifier) and content change.

For genres A and B, the held-out phrases x_A and x_B are transferred (x̂_B = G_AB(x_A),
x̂_A = G_BA(x_B)) and taken back (x̃_A = G_BA(x̂_B), x̃_B = G_AB(x̂_A)); the classifier gives
the P values of S_A→B and S_B→A (see :mod:`midigenre.metrics`); content change compares each
x with its transfer. Everything runs batched on whole sets.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from midigenre.classifier import Classifier
from midigenre.dataset import PhraseCache, SongSplit, model_caches
from midigenre.metrics import content_added, content_change, content_change_transposed, content_removed
from midigenre.metrics import genre_fraction, s_tot, transfer_strength
from midigenre.transfer import TransferModel
from shared.errors import GenreError


def _stats(v: np.ndarray) -> dict:
    v = v[np.isfinite(v)]
    return {"mean": float(v.mean()) if v.size else float("nan"), "std": float(v.std()) if v.size else float("nan")}


def evaluate_transfer(model: TransferModel, classifier: Classifier, x_a: np.ndarray, x_b: np.ndarray, *,
                      sigma_c: float = 0.0) -> dict:
    """Transfer strength and content change of ``model`` on phrases of its genres A and B.

    Parameters
    ----------
    x_a, x_b : (N, 64, 84) bool phrases of genre A and genre B (the model's names).
    sigma_c : σ_C noise on the classifier's input.

    Returns
    -------
    dict with, per direction "A→B" and "B→A": n, P_src(x_src), P_src(x̂), P_src(x̃), S, content
    change (total, added, removed, transposition-invariant: mean and std over phrases), and
    ``song``: whether the transfer keeps the song, beside its matched baselines
    (:func:`midigenre.song_quality.measure_direction`; the melody is each phrase's skyline, the
    random accompaniments come from the other genre's phrases, the judge is ``classifier``); and S_tot.
    """
    from midigenre.melody import skyline
    from midigenre.song_quality import DirectionPhrases, measure_direction

    a, b = model.genres["a"], model.genres["b"]
    ia, ib = classifier.index(a), classifier.index(b)
    if classifier.settings_hash != _model_settings_hash(model):
        raise GenreError("the classifier was trained on caches with other piano-roll settings than the transfer model")
    out = {"genres": {"a": a, "b": b}}
    strengths, changes = [], []
    for x, src in ((x_a, a), (x_b, b)):
        if len(x) == 0:
            raise GenreError(f"no phrases of '{src}' to evaluate")
    for x, src, dst, i_src, other in ((x_a, a, b, ia, x_b), (x_b, b, a, ib, x_a)):
        melody = skyline(x)
        y, z = model.transfer_phrases(x, dst, cycle=True, melody=melody)
        pred = lambda v: classifier.predict(v, sigma_c=sigma_c)  # noqa: E731
        p_x, p_y, p_z = genre_fraction(pred(x), i_src), genre_fraction(pred(y), i_src), genre_fraction(pred(z), i_src)
        s = transfer_strength(p_x, p_y, p_z)
        strengths.append(s)
        changes.append(content_change(x, y))
        out[f"{src}→{dst}"] = {
            "n": int(len(x)), "P_src(x)": p_x, "P_src(transferred)": p_y, "P_src(cycled)": p_z, "S": s,
            "content_change": _stats(changes[-1]), "added": _stats(content_added(x, y)),
            "removed": _stats(content_removed(x, y)), "transposition_invariant": _stats(content_change_transposed(x, y)),
            "cycle_content_change": _stats(content_change(x, z)),
        }
        judge = _Noisy(classifier, sigma_c)
        song = measure_direction(DirectionPhrases(src, dst, x, melody, y, 0), {"classifier": judge}, target_real=other,
                                 locked=model.melody_lock, settings=model.settings)
        out[f"{src}→{dst}"]["song"] = {k: v for k, v in song.items() if k not in ("source", "target", "songs")}
    out["S_tot"] = s_tot(*strengths)
    out["content_change"] = _stats(np.concatenate(changes))
    out["sigma_c"] = sigma_c
    return out


class _Noisy:
    """A classifier that judges with σ_C noise on its input."""

    def __init__(self, classifier: Classifier, sigma_c: float):
        self.classifier, self.sigma_c = classifier, sigma_c

    def predict(self, x):
        return self.classifier.predict(x, sigma_c=self.sigma_c)

    def index(self, genre: str) -> int:
        return self.classifier.index(genre)


def _model_settings_hash(model: TransferModel) -> str:
    from midigenre.pianoroll import RollSettings

    return RollSettings.from_dict(model.meta["settings"]).hash()


def heldout_phrases(model_path: str | os.PathLike, model: TransferModel, cache_a=None, cache_b=None,
                    *, all_phrases: bool = False) -> tuple[np.ndarray, np.ndarray, str]:
    """Phrases of genres A and B to evaluate on, and a description of where they come from.

    With the model's ``split.json`` (every run and shipped model has one) the held-out songs are
    taken, found by content hash in ``cache_a``/``cache_b`` or, by default, in the caches the
    model was trained from. ``all_phrases`` (or a model without a split) takes every phrase.
    """
    from shared.registry import model_folder

    folder = model_folder(model_path)
    trained = model_caches(model.meta, folder)
    caches = []
    for key, given in (("a", cache_a), ("b", cache_b)):
        genre = model.genres[key]
        if given:
            path, named = Path(given), genre
            if ":" in str(given) and not path.exists():  # FILE.h5:GENRE, as train takes it
                where, _, named = str(given).rpartition(":")
                path = Path(where)
            if not path.is_file():
                raise GenreError(f"no such cache file: {path} (--{key})")
            caches.append((path, named or genre))
            continue
        path = Path(trained.get(genre, ""))
        if not trained.get(genre) or not path.is_file():
            was = f" ({trained[genre]}, as its training named it)" if trained.get(genre) else ""
            raise GenreError(f"the model's {genre} cache{was} is not here: pass --{key} FILE.h5 (or FILE.h5:GENRE) "
                             f"prepared with the model's settings (meter {model.settings.meter})")
        caches.append((path, genre))
    split_path = folder / "split.json"
    if not all_phrases and not split_path.exists():
        raise GenreError(f"{folder} has no split.json, so its held-out songs are unknown; pass --all-phrases "
                         "to evaluate on every phrase of caches the model did not train on")
    split = None if all_phrases else SongSplit.load(split_path)
    want_hash = _model_settings_hash(model)
    xs = []
    for path, genre in caches:
        with PhraseCache(path) as c:
            if c.header.settings_hash != want_hash:
                raise GenreError(f"{path} was prepared with other piano-roll settings than the model's data "
                                 f"({c.settings.meter} meter etc.); prepare it with the model's settings")
            c.n_phrases(genre)  # a clear error if the cache lacks the model's genre
            if split is not None:
                rows = split.rows(c, genre, "test")
                if len(rows) == 0:
                    raise GenreError(f"none of the model's held-out {genre} songs is in {path}; pass --all-phrases to use every phrase")
            else:
                rows = np.arange(c.n_phrases(genre))
            xs.append(c.phrases(genre, rows))
    what = "the held-out songs of the model's split" if split is not None else "every phrase of the caches"
    return xs[0], xs[1], what
