"""Whole-song genre transfer with a trained CycleGAN or multi-genre model.

A song is read with the same pipeline as the cache (same grid, pitch window and meter rule as
the model's training data), cut into 4-bar phrases — the tail that does not fill a phrase is
padded with silence, not dropped — every phrase is transferred in one batch, and the phrases
are laid back in order and cut to the song's own length.

    >>> from midigenre.transfer import TransferModel, transfer_midi
    >>> model = TransferModel.load("jazz-classical-melody")  # a shipped model's name, or a model folder
    >>> result = transfer_midi("song.mid", model, "classical")
    >>> result.midi().write("song_classical.mid")

A multi-genre model (``genre midi train --genre …``) loads the same way and transfers to any
of its genres; without ``source_genre`` its discriminator's genre head tells the song's genre.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from midigenre.pianoroll import RollSettings, join_phrases, read_song, roll_to_midi, split_phrases
from shared.errors import GenreError
from shared.registry import shipped_model

#: The shipped default model (jazz ↔ classical, melody-locked); ``--model jazz-classical-melody`` names it too.
DEFAULT_MODEL = shipped_model("jazz-classical-melody")


class GenreTransfer:
    """What every transfer model offers, whatever its kind: a pair CycleGAN
    (:class:`TransferModel`) or one generator over several genres (:class:`MultiGenreTransfer`).

    Attributes
    ----------
    names : the genres it transfers between.
    settings : the piano-roll settings a song is read with (:meth:`settings_for` a genre's own).
    meta : the model's ``model.json``.
    folder : the model folder it was loaded from (where its ``split.json`` is).
    keep_source : per direction, whether a transfer keeps every note of its source and only adds
        (the output is G's notes OR the source's); saved with the model (``meta["keep_source"]``,
        chosen on validation songs by ``benchmarks/transfer_quality.py``), overridden by
        :meth:`set_keep_source`.
    """

    kind = ""
    names: list[str]
    settings: RollSettings
    meta: dict
    folder: Path | None

    @classmethod
    def load(cls, path: str | os.PathLike = DEFAULT_MODEL, device: str = "cpu", *,
             kind: str | tuple[str, ...] = ("cyclegan", "multi-genre")) -> "GenreTransfer":
        """Load a run folder, a model folder or a shipped model by name (``jazz-classical-melody``) as
        the class of its kind (``kind`` refuses others with a one-line error)."""
        from shared.registry import load_model, model_folder, read_meta
        from shared.runtime import pick_device

        folder = model_folder(path)
        found = read_meta(folder, kind)["kind"]
        model_cls = {"cyclegan": TransferModel, "multi-genre": MultiGenreTransfer}[found]
        module, meta = load_model(folder, found, device=device)  # checks genres and settings too
        _check_thresholds(meta, folder)
        module.requires_grad_(False)
        return model_cls._from_module(module, meta, pick_device(device), folder)

    @property
    def melody_lock(self) -> bool:
        """Whether the model keeps the song's melody and rewrites only its accompaniment
        (``ModelConfig.melody_lock``; a combined model: any of its generators)."""
        configs = [self.meta.get("config") or {}] + [p.get("config") or {} for p in self.meta.get("per_target_generators") or []]
        return any(bool(c.get("melody_lock")) for c in configs)

    def set_keep_source(self, keep: bool | None) -> None:
        """Keep the source's notes in every direction (True), in none (False), or as the model was
        saved (None)."""
        saved = self.meta.get("keep_source") or {}
        self.keep_source = {k: bool(saved.get(k, False)) if keep is None else bool(keep) for k in self._directions()}

    def _directions(self) -> list[str]:
        raise NotImplementedError

    def direction(self, target: str, source: str | None = None) -> tuple[str | None, str]:
        """(source genre, target genre); GenreError for a name the model does not know. The
        source is None where the model will predict it (:meth:`predict_genre`)."""
        raise NotImplementedError

    def settings_for(self, source: str | None) -> RollSettings:
        """The settings to read a song of genre ``source`` (None: unknown) with."""
        return self.settings

    def predict_genre(self, phrases: np.ndarray) -> tuple[str, dict[str, float]]:
        """The genre of a song from its (N, 64, 84) phrases: the majority of the per-phrase
        predictions over the phrases with notes, and each genre's share of the votes."""
        raise GenreError(f"this {self.kind} model cannot tell a song's genre; give the source genre")

    def genre_teller(self) -> str | None:
        """Who tells a song's genre for :meth:`predict_genre` (for messages), None where no one can."""
        return None

    def transfer_phrases(self, phrases: np.ndarray, target: str, *, source: str | None = None, cycle: bool = False,
                         batch_size: int = 64, melody: np.ndarray | None = None):
        """Transfer (N, 64, 84) phrases to ``target``; returns ``(transferred, cycled or None)`` as bool arrays.
        ``melody``: (N, 64, 84) melody cells for a melody-locked model (default: each phrase's skyline)."""
        raise NotImplementedError


class TransferModel(GenreTransfer):
    """The two generators of a trained CycleGAN and what they were trained on.

    ``TransferModel.load`` reads any transfer model (a multi-genre one too; see
    :meth:`GenreTransfer.load`).

    Attributes
    ----------
    genres : {"a": name, "b": name}
    settings : the piano-roll settings of the training caches.
    meta : the model's ``model.json`` (config, settings, genres, train, data, metrics).
    folder : the model folder it was loaded from (where its ``split.json`` is).
    """

    kind = "cyclegan"

    def __init__(self, g_ab, g_ba, genres: dict, settings: RollSettings, meta: dict, device="cpu", folder: Path | None = None):
        self.g_ab, self.g_ba, self.genres, self.settings, self.meta, self.device = g_ab, g_ba, genres, settings, meta, device
        self.folder = folder
        self.names = [genres["a"], genres["b"]]
        self.set_keep_source(None)

    def _directions(self) -> list[str]:
        return ["ab", "ba"]

    def genre_teller(self) -> str | None:
        judge = self._genre_judge()
        return judge[0] if judge else None

    def predict_genre(self, phrases: np.ndarray) -> tuple[str, dict[str, float]]:
        """The song's genre by the pair's judge (:func:`pair_judge`), among the judge's genres:
        it may be neither of the pair's."""
        judge = self._genre_judge()
        if judge is None:
            return super().predict_genre(phrases)
        return _vote(phrases, judge[1], judge[2])

    def _genre_judge(self):
        if not hasattr(self, "_judge"):
            self._judge = pair_judge(self)
        return self._judge

    @classmethod
    def _from_module(cls, gens, meta: dict, device, folder: Path) -> "TransferModel":
        return cls(gens.G_AB, gens.G_BA, dict(meta["genres"]), RollSettings.from_dict(meta["settings"]), meta, device, folder)

    def direction(self, target: str, source: str | None = None) -> tuple[str, str]:
        """(source genre, target genre) for a target name; raises GenreError for an unknown one."""
        a, b = self.genres["a"], self.genres["b"]
        if target == b:
            pair = a, b
        elif target == a:
            pair = b, a
        else:
            raise GenreError(f"this model transfers between {a} and {b}; --to must be one of them, not {target!r}")
        if source is not None and source != pair[0]:
            raise GenreError(f"this model turns {pair[0]} into {pair[1]}; --from must be {pair[0]}, not {source!r}")
        return pair

    @property
    def thresholds(self) -> dict[str, float]:
        """Binarisation threshold of each direction, ``{"ab": …, "ba": …}`` (0.5 unless the model has its own)."""
        saved = self.meta.get("thresholds") or {}
        return {"ab": float(saved.get("ab", 0.5)), "ba": float(saved.get("ba", 0.5))}

    def _way(self, target: str) -> str:
        return "ab" if target == self.genres["b"] else "ba"

    def threshold(self, target: str, source: str | None = None) -> float:
        """The binarisation threshold of the direction into ``target``."""
        self.direction(target, source)
        return self.thresholds[self._way(target)]

    def probabilities(self, phrases: np.ndarray, target: str, batch_size: int = 64, melody: np.ndarray | None = None,
                      source: str | None = None) -> np.ndarray:
        """The generator's output for (N, 64, 84) phrases into ``target``: (N, 64, 84) float32,
        before binarisation and before the source's notes are kept (:meth:`binarize`)."""
        import torch

        self.direction(target, source)
        g = self.g_ab if self._way(target) == "ab" else self.g_ba
        out = []
        with torch.inference_mode():
            for i in range(0, len(phrases), batch_size):
                x = _tensor(phrases[i:i + batch_size], self.device)
                m = _tensor(melody[i:i + batch_size], self.device) if melody is not None and self.melody_lock else None
                out.append(_call(g, x, m)[:, 0].float().cpu().numpy())
        return np.concatenate(out) if out else np.zeros(np.shape(phrases), np.float32)

    def binarize(self, phrases: np.ndarray, probabilities: np.ndarray, target: str, threshold: float,
                 source: str | None = None) -> np.ndarray:
        """The notes of a transfer into ``target`` from :meth:`probabilities` at ``threshold``."""
        out = probabilities > threshold
        return out | (np.asarray(phrases) > 0.5) if self.keep_source[self._way(target)] else out

    def transfer_phrases(self, phrases: np.ndarray, target: str, *, source: str | None = None, cycle: bool = False,
                         batch_size: int = 64, melody: np.ndarray | None = None):
        """Transfer (N, 64, 84) phrases to ``target``; returns ``(transferred, cycled or None)`` as bool arrays.

        Generator outputs are binarised at the model's threshold of each direction
        (:attr:`thresholds`: 0.5 as in the reference, or the density-matched ones it was saved with);
        where :attr:`keep_source` says so for a direction, its input's notes are kept too.
        """
        import torch

        self.direction(target, source)  # validates the names
        forward, backward = (self.g_ab, self.g_ba) if target == self.genres["b"] else (self.g_ba, self.g_ab)
        there, back_again = ("ab", "ba") if target == self.genres["b"] else ("ba", "ab")
        t_fwd, t_back = self.thresholds[there], self.thresholds[back_again]
        keep_fwd, keep_back = self.keep_source[there], self.keep_source[back_again]
        out, back = [], []
        with torch.inference_mode():
            for i in range(0, len(phrases), batch_size):
                x = _tensor(phrases[i : i + batch_size], self.device)
                m = _tensor(melody[i : i + batch_size], self.device) if melody is not None and self.melody_lock else None
                y = ((_call(forward, x, m) > t_fwd) | ((x > 0.5) & keep_fwd)).float()
                out.append(y[:, 0].bool().cpu().numpy())
                if cycle:
                    back.append(((_call(backward, y, m) > t_back) | ((y > 0.5) & keep_back))[:, 0].cpu().numpy())
        empty = np.zeros((0,) + phrases.shape[1:], dtype=bool)
        transferred = np.concatenate(out) if out else empty
        return transferred, (np.concatenate(back) if back else empty) if cycle else None


class MultiGenreTransfer(GenreTransfer):
    """One generator G(x, t) over several genres (:mod:`midigenre.stargan`) and its
    discriminator's genre head, which tells the genre of a song whose genre is not given.

    Attributes
    ----------
    names : the genres, in the order of the generator's one-hot channels.
    thresholds : binarisation threshold per target genre (0.5 unless saved with others).
    pair_thresholds : ``{source: {target: threshold}}`` for the directions calibrated on their own
        (:func:`midigenre.choose.choose_thresholds`); they take precedence when the source genre is known.
    """

    kind = "multi-genre"

    def __init__(self, net, meta: dict, device="cpu", folder: Path | None = None):
        self.net, self.meta, self.device, self.folder = net, meta, device, folder
        self.names = list(meta["genres"])
        self.settings = RollSettings.from_dict(meta["settings"])
        self.genre_settings = {g: RollSettings.from_dict(s) for g, s in (meta.get("genre_settings") or {}).items()}
        saved = meta.get("thresholds") or {}
        self.thresholds = {g: float(saved.get(g, 0.5)) for g in self.names}
        self.pair_thresholds = {s: {t: float(v) for t, v in row.items()}
                                for s, row in (meta.get("pair_thresholds") or {}).items()}
        self.set_keep_source(None)

    def threshold(self, target: str, source: str | None = None) -> float:
        """The binarisation threshold of source → target: the direction's own where it has one,
        else the target genre's."""
        return self.pair_thresholds.get(source, {}).get(target, self.thresholds[target]) if source else self.thresholds[target]

    def _directions(self) -> list[str]:
        return list(self.names)  # per target genre

    @classmethod
    def _from_module(cls, net, meta: dict, device, folder: Path) -> "MultiGenreTransfer":
        return cls(net, meta, device, folder)

    def _index(self, genre: str, option: str) -> int:
        if genre not in self.names:
            raise GenreError(f"this model knows {', '.join(self.names)}; {option} must be one of them, not {genre!r}")
        return self.names.index(genre)

    def direction(self, target: str, source: str | None = None) -> tuple[str | None, str]:
        self._index(target, "--to")
        if source is not None:
            self._index(source, "--from")
            if source == target:
                raise GenreError(f"--from and --to are both {target}: nothing to transfer; --to names another genre "
                                 f"({', '.join(g for g in self.names if g != target)})")
        return source, target

    def genre_teller(self) -> str | None:
        return "the model"

    def settings_for(self, source: str | None) -> RollSettings:
        return self.genre_settings.get(source, self.settings) if source else self.settings

    def _batches(self, phrases: np.ndarray, batch_size: int):
        for i in range(0, len(phrases), batch_size):
            yield _tensor(phrases[i:i + batch_size], self.device)

    def _melodies(self, melody: np.ndarray | None, n: int, batch_size: int):
        """The melody batches beside :meth:`_batches` (None for each batch without one)."""
        if melody is None or not self.melody_lock:
            return [None] * (-(-n // batch_size))
        return list(self._batches(melody, batch_size))

    def genre_probabilities(self, phrases: np.ndarray, batch_size: int = 256) -> np.ndarray:
        """(N, K) genre probabilities of (N, 64, 84) phrases by the discriminator's genre head."""
        import torch

        with torch.inference_mode():
            out = [torch.softmax(self.net.genre_logits(x).float(), dim=1).cpu().numpy() for x in self._batches(phrases, batch_size)]
        return np.concatenate(out) if out else np.zeros((0, len(self.names)), np.float32)

    def predict_genre(self, phrases: np.ndarray) -> tuple[str, dict[str, float]]:
        return _vote(phrases, self.names, self.genre_probabilities)

    def probabilities(self, phrases: np.ndarray, target: str, batch_size: int = 64,
                      melody: np.ndarray | None = None, source: str | None = None) -> np.ndarray:
        """G(x, target) of (N, 64, 84) phrases: (N, 64, 84) float32 note probabilities, before
        binarisation and before the source's notes are kept (:meth:`binarize`)."""
        import torch

        t = self._index(target, "--to")
        with torch.inference_mode():
            out = [self.net.generate(x, torch.full((len(x),), t, device=x.device), m)[:, 0].float().cpu().numpy()
                   for x, m in zip(self._batches(phrases, batch_size), self._melodies(melody, len(phrases), batch_size))]
        return np.concatenate(out) if out else np.zeros(np.shape(phrases), np.float32)

    def binarize(self, phrases: np.ndarray, probabilities: np.ndarray, target: str, threshold: float,
                 source: str | None = None) -> np.ndarray:
        """The notes of a transfer to ``target`` from :meth:`probabilities` at ``threshold``:
        what :meth:`transfer_phrases` returns at that threshold, for trying several cheaply."""
        out = probabilities > threshold
        return out | (np.asarray(phrases) > 0.5) if self.keep_source[target] else out

    def transfer_phrases(self, phrases: np.ndarray, target: str, *, source: str | None = None, cycle: bool = False,
                         batch_size: int = 64, melody: np.ndarray | None = None):
        """Transfer (N, 64, 84) phrases to ``target``: G(x, target) binarised at the direction's
        threshold (:meth:`threshold`); ``cycle`` also takes them back to ``source`` (predicted
        when not given)."""
        import torch

        t = self._index(target, "--to")
        there = self.threshold(target, source)  # the source as given: the transfer is the same with or without cycle
        if cycle and source is None:
            source = self.predict_genre(phrases)[0]
        s = self._index(source, "--from") if source is not None else None
        out, back = [], []
        with torch.inference_mode():
            for x, m in zip(self._batches(phrases, batch_size), self._melodies(melody, len(phrases), batch_size)):
                y = ((self.net.generate(x, torch.full((len(x),), t, device=x.device), m) > there)
                     | ((x > 0.5) & self.keep_source[target])).float()
                out.append(y[:, 0].bool().cpu().numpy())
                if cycle:
                    # the way back is G itself, as in training: it may take away what a kept transfer added
                    z = self.net.generate(y, torch.full((len(x),), s, device=x.device), m) > self.threshold(source, target)
                    back.append(z[:, 0].cpu().numpy())
        empty = np.zeros((0,) + phrases.shape[1:], dtype=bool)
        transferred = np.concatenate(out) if out else empty
        return transferred, (np.concatenate(back) if back else empty) if cycle else None


def _tensor(phrases: np.ndarray, device):
    """(N, T, P) phrases → a (N, 1, T, P) float32 tensor on ``device``."""
    import torch

    return torch.from_numpy(np.ascontiguousarray(phrases, dtype=np.float32)).unsqueeze(1).to(device)


def _call(generator, x, melody):
    """A pair generator on x, with the melody when there is one (a melody-locked generator)."""
    return generator(x) if melody is None else generator(x, melody=melody)


def _vote(phrases: np.ndarray, names: list[str], probabilities) -> tuple[str, dict[str, float]]:
    """The majority genre of the phrases with notes (``probabilities``: (N, 64, 84) → (N, K)) and
    each genre's share of the votes."""
    x = np.asarray(phrases)
    x = x[x.reshape(len(x), -1).any(axis=1)] if len(x) else x
    if len(x) == 0:
        raise GenreError("the song has no notes, so its genre cannot be told; give --from")
    votes = np.bincount(np.asarray(probabilities(x)).argmax(axis=1), minlength=len(names)) / len(x)
    return names[int(votes.argmax())], {g: float(v) for g, v in zip(names, votes)}


#: A pair model's own judge of a song's genre: a genre classifier (``genre midi train-classifier``)
#: saved in this subfolder of the model folder.
PAIR_JUDGE = "judge"

#: The shipped multi-genre model whose genre critic judges a pair trained on two of its caches.
JUDGE_MODEL = "four-genres-melody"


def pair_judge(model: "TransferModel"):
    """``(who, genre names, probabilities)`` of the judge that tells a song's genre for a pair
    model, or None where there is none.

    A pair's generators cannot tell a song's genre, and a judge of the two genres alone would
    call any song one of them; so the judge should know more genres than the pair. It is the
    genre classifier in the model folder's ``judge/`` when there is one (it must know both of the
    pair's genres and read its phrase grid), else the genre critic of the shipped multi-genre model
    ``four-genres-melody`` when the pair was trained on two of its caches — the same cache names,
    read with the same settings, as the model.json files say (the shipped jazz-classical-melody: its
    jazz and classical caches are two of four-genres-melody's pop, classical, jazz and folk). Other
    pairs have none.
    """
    from shared.registry import read_meta, shipped_model

    a, b = model.names
    grid = model.settings.grid()
    own = model.folder / PAIR_JUDGE if model.folder is not None else None
    if own is not None and (own / "model.json").is_file():
        from midigenre.classifier import Classifier

        clf = Classifier.load(own, device=str(model.device))
        if not {a, b} <= set(clf.genres) or RollSettings.from_dict(clf.meta["settings"]).grid() != grid:
            raise GenreError(f"{own} does not judge {a} and {b} songs (it knows {', '.join(clf.genres)}, on its own "
                             f"grid); train it on the pair's genres and more, or remove it")
        return f"the model's judge ({PAIR_JUDGE}/)", list(clf.genres), clf.probabilities
    four = shipped_model(JUDGE_MODEL)
    if not (four / "model.json").is_file():
        return None
    meta = read_meta(four)
    if not _same_caches(model.meta, meta, model.names):
        return None
    judge = GenreTransfer.load(four, device=str(model.device), kind="multi-genre")
    return f"the judge {JUDGE_MODEL}", list(judge.names), judge.genre_probabilities


def _same_caches(pair: dict, multi: dict, genres) -> bool:
    """Whether each of ``genres`` was trained from a cache of the same name and settings by the
    pair model and by the multi-genre model (their model.json ``data`` and settings)."""
    from midigenre.dataset import model_caches

    ours, theirs = model_caches(pair), model_caches(multi)
    per_genre = multi.get("genre_settings") or {}
    for g in genres:
        if g not in ours or g not in theirs or Path(ours[g]).name != Path(theirs[g]).name:
            return False
        if (per_genre.get(g) or multi.get("settings")) != pair.get("settings"):
            return False
    return True


class WrongGenre(GenreError):
    """A song that is told to be of the target genre already, or of none of the model's genres."""


def check_told_genre(model: GenreTransfer, told: str, target: str, votes: dict[str, float], teller: str) -> None:
    """Refuse a transfer whose song was told (not given) to be of ``target`` already, or of a
    genre the model does not transfer; ``--from`` overrides both."""
    shares = "its phrases: " + ", ".join(f"{g} {v:.0%}" for g, v in votes.items())
    if told == target:
        raise WrongGenre(f"{teller} takes the song for {target} already ({shares}): nothing to transfer; "
                         f"if it is another genre, say which with --from GENRE")
    if told not in model.names:
        from shared.registry import read_meta, shipped_model

        four = shipped_model(JUDGE_MODEL)
        known = (read_meta(four).get("genres") or []) if (four / "model.json").is_file() else []
        other = (f"use --model {JUDGE_MODEL} for any of {', '.join(known)}, or " if told in known and
                 set(model.names) != set(known) else "")
        raise WrongGenre(f"{teller} takes the song for {told} ({shares}), which this model does not "
                         f"transfer (only {' ↔ '.join(model.names)}): {other}give --from "
                         f"{' or '.join(model.names)} if the song is one of them")


def _check_thresholds(meta: dict, folder: Path) -> None:
    """Every binarisation threshold a model.json gives is a number in (0, 1): at 0 or below every
    cell is a note, at 1 or above none is."""
    def bad(v) -> bool:
        return isinstance(v, bool) or not isinstance(v, (int, float)) or not 0.0 < float(v) < 1.0  # NaN too

    where = f"{Path(folder) / 'model.json'}"
    for key in ("thresholds", "pair_thresholds"):
        table = meta.get(key)
        if table is None:
            continue
        rows = table.items() if isinstance(table, dict) else [(None, table)]
        for name, value in rows:
            cells = value.items() if key == "pair_thresholds" and isinstance(value, dict) else [(None, value)]
            for to, v in cells:
                if name is None or bad(v):
                    what = f"{key}[{name!r}]" + (f"[{to!r}]" if to is not None else "")
                    raise GenreError(f"{where}: {what} is {v!r}, not a threshold between 0 and 1 (a damaged or "
                                     "hand-edited model file)")


@dataclass
class SongTransfer:
    """A transferred song: rolls of shape (T, 84) on the song's own step grid.

    ``melody`` is the source's melody on that grid (empty with ``melody="none"``); a melody-locked
    model keeps it note for note in ``transferred``. ``notes``, ``melody_notes`` (which of them
    are the melody), ``drums`` and ``instruments`` make :meth:`midi` write the result as an
    arrangement (:mod:`midigenre.arrangement`).
    """

    source: np.ndarray
    transferred: np.ndarray
    cycled: np.ndarray | None
    tempo: float
    source_genre: str
    target_genre: str
    settings: RollSettings
    #: when the model told the source genre itself: each genre's share of the phrase votes
    predicted: dict[str, float] | None = None
    #: who told the source genre (:meth:`GenreTransfer.genre_teller`); "" when it was given, and
    #: "assumed" when no one could tell it and a pair model's other genre was taken
    told_by: str = ""
    #: pitched notes of the source, and those outside the pitch window (left out)
    n_notes: int = 0
    n_outside: int = 0
    melody: np.ndarray | None = None
    #: how the melody was found: "track 'MELODY'", "skyline" or "none"
    melody_found: str = "none"
    notes: object = None
    melody_notes: np.ndarray | None = None
    drums: str = "auto"
    instruments: dict | None = None
    melody_locked: bool = False

    def midi(self, which: str = "transferred", *, roll: bool = False):
        """``pretty_midi.PrettyMIDI`` of the source, the transferred or the cycled-back song.

        The transferred song is an arrangement (the source's tempo map, melody, kept notes with
        their instruments and velocities, added notes on the target genre's instruments, drums
        as asked); ``roll=True``, a source read without its notes, or the other versions: one
        piano track on the grid at velocity 100.
        """
        data = getattr(self, which)
        if data is None:
            raise GenreError("the cycled-back version was not computed (pass cycle=True)")
        if which == "transferred" and not roll and self.notes is not None:
            from midigenre.arrangement import score_to_pretty_midi

            return score_to_pretty_midi(self.arrangement())
        return roll_to_midi(data, self.tempo, self.settings, name=f"Piano ({which})")

    def arrangement(self):
        """The transferred song as a ``symusic.ScoreTick`` arrangement (:func:`midigenre.arrangement.arrange`)."""
        from midigenre.arrangement import arrange

        if self.notes is None:
            raise GenreError("the source's notes were not kept, so no arrangement can be written")
        # only a melody-locked transfer keeps the melody whatever G wrote; otherwise a melody note
        # stays where the transfer kept it, like any other note
        locked = self.melody_notes if self.melody_locked else np.zeros_like(self.melody_notes)
        return arrange(self.notes, locked, self.transferred, self.target_genre, self.settings,
                       drums=self.drums, table=self.instruments)

    def content_change(self) -> float:
        """Σ|x − x̂| / Σx over the whole song (NaN for a silent song); see :mod:`midigenre.metrics`."""
        from midigenre.metrics import content_change

        return content_change(self.source, self.transferred)

    def song_measures(self) -> dict[str, float]:
        """Melody kept (still sounding / still the top voice), harmony kept (per-beat pitch-class
        similarity) and the accompaniment's content change (:mod:`midigenre.metrics`)."""
        from midigenre.metrics import content_change, harmony_kept, melody_kept

        mel = self.melody if self.melody is not None else np.zeros_like(self.source)
        sounding, top = melody_kept(mel, self.transferred)
        return {"melody_sounding": sounding, "melody_top": top,
                "harmony": harmony_kept(self.source, self.transferred, self.settings.steps_per_beat,
                                        self.settings.lowest_pitch),
                "accompaniment_change": float(content_change(self.source & ~mel, self.transferred & ~mel))}


def song_melody(song, settings: RollSettings, mode: str = "auto") -> tuple[np.ndarray, np.ndarray, str]:
    """``(melody roll (T, P), which notes are the melody, how it was found)`` of a song read with
    ``keep_notes=True`` (:func:`midigenre.melody.melody_notes`)."""
    from midigenre.melody import melody_notes
    from midigenre.pianoroll import _fill

    n = song.notes
    names = [name for name, _ in n.tracks]
    mask, how = melody_notes(n.start, n.end, n.row, n.track, names, mode, total=len(song.roll))
    roll = _fill(n.start[mask], n.end[mask], n.row[mask], len(song.roll), settings.n_pitches)
    return roll, mask, how


def transfer_midi(source: str | os.PathLike | bytes, model: GenreTransfer | str | os.PathLike, target: str, *,
                  meter: str | None = None, cycle: bool = False, keep_silence: bool = True,
                  source_genre: str | None = None, melody: str = "auto", drums: str = "auto",
                  instruments: dict | None = None) -> SongTransfer:
    """Transfer a whole MIDI song to ``target``.

    Parameters
    ----------
    source : MIDI path or bytes.
    model : a loaded transfer model (:class:`GenreTransfer`) or the path of one.
    target : genre name, one of the model's.
    meter : meter rule for reading the song (default: the one the model's data — of the source
        genre, when it is known — was prepared with).
    cycle : also compute the cycled-back song (target → source again).
    keep_silence : leave phrases without notes silent instead of letting the generator invent notes.
    source_genre : the song's genre; None: the model tells it (:meth:`GenreTransfer.predict_genre`,
        the result's ``predicted``; a pair model through its judge, :func:`pair_judge`), and a song
        told to be of ``target`` already, or of a genre the model does not transfer, is refused
        (:class:`WrongGenre`). A pair model without a judge takes its other genre.
    melody : how to find the song's melody (:mod:`midigenre.melody`): ``auto`` (a track named as
        the melody, else the skyline), ``skyline``, ``track:NAME`` or ``none``. A melody-locked
        model keeps it note for note and nothing sounds above it where it sounds; for other
        models it is measured and written on its own track.
    drums, instruments : how the result is written (:func:`midigenre.arrangement.arrange`).

    Raises
    ------
    GenreError (``Unusable``) if the song cannot be read under the meter rule, with the reason.
    """
    from midigenre.arrangement import DRUMS
    from midigenre.melody import check_mode, locked_input

    check_mode(melody)
    if drums not in DRUMS:
        raise GenreError(f"unknown drums choice {drums!r}; choose {', '.join(DRUMS)}")
    if not isinstance(model, GenreTransfer):
        model = GenreTransfer.load(model)
    src_genre, dst_genre = model.direction(target, source_genre)
    settings = model.settings_for(src_genre)
    settings = dataclasses.replace(settings, meter=meter) if meter else settings
    song = read_song(source, settings, keep_notes=True)
    mel_roll, mel_notes, how = song_melody(song, settings, melody)
    roll = song.roll
    locked = model.melody_lock
    if locked:  # the generator's input: the melody and what lies under it
        roll = locked_input(song.roll, mel_roll)
    phrases, _ = split_phrases(roll, settings, keep_empty=True, pad_tail=True)
    mel_phrases = split_phrases(mel_roll, settings, keep_empty=True, pad_tail=True)[0] if locked else None
    predicted, told_by = None, ""
    if source_genre is None:
        told_by = model.genre_teller() or "assumed"
        if told_by != "assumed":
            src_genre, predicted = model.predict_genre(split_phrases(song.roll, settings, keep_empty=True, pad_tail=True)[0])
            check_told_genre(model, src_genre, dst_genre, predicted, told_by)
    out, back = model.transfer_phrases(phrases, target, source=src_genre, cycle=cycle, melody=mel_phrases)
    if keep_silence:
        silent = ~phrases.any(axis=(1, 2))
        out[silent] = False
        if back is not None:
            back[silent] = False
    n = len(song.roll)
    return SongTransfer(
        source=song.roll, transferred=join_phrases(out)[:n], cycled=join_phrases(back)[:n] if back is not None else None,
        tempo=song.tempo, source_genre=src_genre, target_genre=dst_genre, settings=settings, predicted=predicted,
        melody=mel_roll, melody_found=how, notes=song.notes, melody_notes=mel_notes, drums=drums,
        instruments=instruments, melody_locked=locked, told_by=told_by, n_notes=song.n_notes, n_outside=song.n_outside,
    )


# ----------------------------------------------------------------------------- files and folders

#: Reasons a song is unreadable that reading it as 4/4 anyway (``meter="assume-4/4"``) may cure.
METER_REASONS = ("not 4/4", "meter changes", "no time signature", "several time signatures", "first beat not at 0")


@dataclass
class FileTransfer:
    """One song of :func:`transfer_files`: where it came from and went, and what happened.

    ``result`` and ``written`` (the files written: the MIDI, then the cycled-back MIDI and the
    PNG when asked for) when it worked; ``error`` (one line) when it did not.
    """

    source: Path
    output: Path
    result: SongTransfer | None = None
    written: list[Path] = dataclasses.field(default_factory=list)
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


@dataclass
class TransferBatch:
    """Per-song outcomes of :func:`transfer_files`, in order."""

    songs: list[FileTransfer]
    #: files of the source folder left alone as results of an earlier transfer into the output folder
    earlier_outputs: list[Path] = dataclasses.field(default_factory=list)

    @property
    def done(self) -> list[FileTransfer]:
        return [s for s in self.songs if s.ok]

    @property
    def failed(self) -> list[FileTransfer]:
        return [s for s in self.songs if not s.ok]


def _written_paths(out: Path, *, cycle: bool, png: bool) -> list[Path]:
    paths = [out]
    if cycle:
        paths.append(out.with_name(out.stem + ".cycle.mid"))
    if png:
        paths.append(out.with_suffix(".png"))
    return paths


def _earlier_output(song: Path, src: Path, out_dir: Path, genres) -> bool:
    """Whether ``song``, found in the folder ``src``, is what a transfer of ``src`` into ``out_dir``
    writes for one of ``genres``: ``out_dir/<path>/<stem>.<genre>.mid`` (or its ``.cycle.mid``).
    Where ``out_dir`` is ``src`` itself, only beside a song ``<path>/<stem>.mid`` of the folder
    (otherwise it is the user's own file of that name)."""
    from midigenre.prepare import MIDI_SUFFIXES

    name = song.name
    for g in genres:
        for tail in (f".{g}.mid", f".{g}.cycle.mid"):
            if name.lower().endswith(tail.lower()) and len(name) > len(tail):
                try:
                    where = song.resolve().parent.relative_to(out_dir.resolve())
                except (OSError, RuntimeError, ValueError):
                    return False
                if not _same_folder(src, out_dir):
                    return True
                stem = name[: -len(tail)]
                if any((src / where / f"{stem}{suffix}").is_file() for suffix in MIDI_SUFFIXES):
                    return True
    return False


def _same_folder(a: Path, b: Path) -> bool:
    try:
        return a.resolve() == b.resolve()
    except (OSError, RuntimeError):
        return False


def transfer_jobs(source: str | os.PathLike, output: str | os.PathLike, target: str, *, cycle: bool = False,
                  png: bool = False, genres=(), skipped: list | None = None) -> list[tuple[Path, Path]]:
    """``(song, output MIDI)`` pairs for a file or a folder of songs.

    A folder's songs (found recursively) go to ``output/<relative path>/<stem>.<target>.mid``;
    a file goes to ``output``, or into it as ``<stem>.<target>.mid`` when it is a folder.
    Songs of the folder that are the results of an earlier transfer into ``output``
    (``<stem>.<genre>.mid`` there, for ``target`` or any of ``genres``) are left out (and
    appended to ``skipped`` when given). Raises GenreError before anything is read or written
    when the source is missing or holds no song, a file to be written (MIDI, cycled-back MIDI,
    PNG) is one of the songs, or two files to be written are one.
    """
    from midigenre.prepare import MIDI_SUFFIXES, find_midi_files
    from shared.atomic import refuse_overwriting_input, refuse_same_outputs

    src = Path(source)
    if not src.exists():
        raise GenreError(f"no such file or folder: {source}")
    if src.is_dir():
        out_dir = Path(output)
        if out_dir.suffix.lower() in MIDI_SUFFIXES:
            raise GenreError(f"SOURCE is a folder, so -o must be a folder, not {output}")
        found = find_midi_files([src])
        earlier = [p for p, _ in found if _earlier_output(p, src, out_dir, {target, *genres})]
        if skipped is not None:
            skipped.extend(earlier)
        jobs = [(p, out_dir / Path(name).with_name(f"{Path(name).stem}.{target}.mid")) for p, name in found
                if p not in earlier]
        if not jobs:
            raise GenreError(f"no song to transfer in {src}: its {len(earlier)} MIDI files are results of an earlier "
                             f"transfer into {out_dir} (e.g. {earlier[0].name})")
    elif Path(output).is_dir():
        jobs = [(src, Path(output) / f"{src.stem}.{target}.mid")]
    else:
        jobs = [(src, Path(output))]
    inputs: dict[Path, Path] = {}
    # an earlier result in a separate output folder may be written again; in the songs' own folder
    # it is a file of the user's folder like the songs, and kept
    keep = [song for song, _ in jobs] + (earlier if src.is_dir() and _same_folder(src, Path(output)) else [])
    for song in keep:
        try:
            inputs[song.resolve()] = song
        except (OSError, RuntimeError):
            pass
    for song, out in jobs:
        for path in _written_paths(out, cycle=cycle, png=png):
            try:
                other = inputs.get(path.resolve())
            except (OSError, RuntimeError):
                other = None
            if src.is_dir() and other is not None:
                raise GenreError(f"the result of {song.name} would overwrite the input {other} (a file of the folder "
                                 f"{src}); choose another -o folder")
            refuse_overwriting_input([song, other], path)
    kinds = [("-o", "result")] + [("--cycle", "cycled-back song")] * cycle + [("--png", "picture")] * png
    refuse_same_outputs((option if not src.is_dir() else f"the {thing} of {song}", path) for song, out in jobs
                        for (option, thing), path in zip(kinds, _written_paths(out, cycle=cycle, png=png)))
    return jobs


def transfer_files(source: str | os.PathLike, output: str | os.PathLike, target: str, *,
                   model: "GenreTransfer | str | os.PathLike | None" = None, device: str = "cpu",
                   meter: str | None = None, cycle: bool = False, png: bool = False,
                   on_song=None, source_genre: str | None = None, keep_source: bool | None = None,
                   melody: str = "auto", drums: str = "auto", instruments: str | os.PathLike | dict | None = None,
                   roll: bool = False) -> TransferBatch:
    """Transfer a MIDI file, or every MIDI file under a folder, to ``target`` and write the results.

    Parameters
    ----------
    source, output : see :func:`transfer_jobs` (checked before the model is loaded).
    model : a loaded :class:`GenreTransfer` or the folder of one (loaded on ``device``); default
        the shipped model.
    meter, cycle, source_genre : as for :func:`transfer_midi`; ``cycle`` also writes ``<out>.cycle.mid``.
    png : also draw source, result (and cycle) into ``<out>.png`` (:func:`midigenre.plots.plot_transfer`).
    on_song : called with each :class:`FileTransfer` as soon as its song is done (or failed).
    keep_source : keep every note of the source (True), let the model drop notes (False), or as
        the model was saved (None; :meth:`GenreTransfer.set_keep_source`).
    melody, drums : as for :func:`transfer_midi`; instruments : an instrument table (or the path of
        one, :func:`midigenre.arrangement.load_instruments`) for the added notes.
    roll : write one piano track on the grid instead of the arrangement.

    A song that cannot be read is recorded with its reason (and a hint to try
    ``meter="assume-4/4"`` or the genre whose data was read so, where that may help), and so is
    one told to be of the wrong genre (:class:`WrongGenre`); the others go on.
    """
    from midigenre.pianoroll import Unusable, write_midi

    from midigenre.arrangement import load_instruments
    from midigenre.melody import check_mode

    check_mode(melody)
    earlier: list[Path] = []
    jobs = transfer_jobs(source, output, target, cycle=cycle, png=png, genres=_model_genres(model), skipped=earlier)
    if isinstance(instruments, (str, os.PathLike)):
        instruments = load_instruments(instruments)
    if model is None:
        model = GenreTransfer.load(device=device)
    elif not isinstance(model, GenreTransfer):
        model = GenreTransfer.load(model, device=device)
    model.direction(target, source_genre)
    if keep_source is not None:
        model.set_keep_source(keep_source)
    songs = []
    for song, out in jobs:
        item = FileTransfer(song, out)
        try:
            res = transfer_midi(song, model, target, meter=meter, cycle=cycle, source_genre=source_genre,
                                melody=melody, drums=drums, instruments=instruments)
        except Unusable as err:
            item.error = f"{err}{_meter_hint(model, source_genre) if err.reason in METER_REASONS else ''}"
        except WrongGenre as err:
            item.error = str(err)
        else:
            item.result = res
            paths = _written_paths(out, cycle=cycle, png=png)
            item.written.append(write_midi(res.midi(roll=roll), paths[0]))
            if cycle:
                item.written.append(write_midi(res.midi("cycled"), paths[1]))
            if png:
                from midigenre.plots import plot_transfer

                item.written.append(plot_transfer(res, paths[-1], song.name))
        songs.append(item)
        if on_song is not None:
            on_song(item)
    return TransferBatch(songs, earlier)


def _model_genres(model) -> list[str]:
    """The genres of a model (loaded, or named: read from its model.json only); [] if unknown."""
    if isinstance(model, GenreTransfer):
        return list(model.names)
    from shared.registry import model_folder, read_meta

    try:
        genres = read_meta(model_folder(DEFAULT_MODEL if model is None else model)).get("genres")
    except GenreError:
        return []  # the load says why
    genres = list(genres.values()) if isinstance(genres, dict) else genres
    return [g for g in genres or [] if isinstance(g, str)]


def _meter_hint(model: GenreTransfer, source_genre: str | None) -> str:
    """What to try for a song refused for its meter: the genre whose data was read as 4/4 whatever
    it says (POP909's pop writes 1/4), or --meter assume-4/4."""
    assumed = [g for g in model.names if model.settings_for(g).meter == "assume-4/4" and g != source_genre]
    if source_genre is None and assumed:
        return (f" (a {' or '.join(assumed)} song? say so with --from {assumed[0]}: it is then read as the model's "
                f"{assumed[0]} data was, with --meter assume-4/4; or try --meter assume-4/4 if the song is really in 4/4)")
    if "pop" not in model.names:
        return (" (try --meter assume-4/4 if the song is really in 4/4; a pop song such as POP909's, whose files "
                "say 1/4 or 2/4: --model four-genres-melody --from pop)")
    return " (try --meter assume-4/4 if the song is really in 4/4)"
