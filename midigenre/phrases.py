"""Picking phrases to draw, explain or export: rows of a cache, one cached song, or phrases of a MIDI file
(not to be confused with midigenre.choose, which chooses models).

    >>> from midigenre.phrases import select_phrases
    >>> sel = select_phrases("jazz.h5", index=["0:4"])          # cache rows 0..3
    >>> sel = select_phrases("jazz.h5", song="Anthropology")    # every phrase of one cached song
    >>> sel = select_phrases("song.mid")                       # the first four phrases of a MIDI file
    >>> [p.title for p in sel.items]
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

import numpy as np

from shared.errors import GenreError


@dataclass
class Phrase:
    """One selected phrase: a title for people, the (64, 84) roll and its phrase number in its song."""

    title: str
    roll: np.ndarray
    number: int


@dataclass
class Selection:
    """Selected phrases and what they were read with.

    Attributes
    ----------
    items : the phrases, in the order asked for.
    settings : the piano-roll settings (the cache's, or those the MIDI file was read with).
    tempo : the song's tempo in BPM (of the first selected phrase's song for cache rows).
    song : the name of the one song the phrases come from (a MIDI file or ``--song``), else None:
        cache rows may come from different songs.
    """

    items: list[Phrase]
    settings: object
    tempo: float | None
    song: str | None = None

    @property
    def phrases(self) -> np.ndarray:
        """``(N, 64, 84)`` rolls."""
        return np.stack([p.roll for p in self.items])

    @property
    def numbers(self) -> np.ndarray:
        """Phrase numbers in their songs, ``(N,)``."""
        return np.array([p.number for p in self.items], dtype=np.int64)

    @property
    def bpm(self) -> float:
        """The tempo the phrases are written out at: the song's, else 120."""
        return self.tempo or 120.0

    def to_midi(self, tempo: float | None = None):
        """``pretty_midi.PrettyMIDI`` of the phrases: a song's at their places (silent gaps where
        phrases were dropped), cache rows back to back; at ``tempo`` BPM (default: :attr:`bpm`)."""
        from midigenre.pianoroll import join_phrases, roll_to_midi

        roll = join_phrases(self.phrases, self.numbers) if self.song is not None else join_phrases(self.phrases)
        return roll_to_midi(roll, tempo or self.bpm, self.settings)


def is_midi_path(path: str | os.PathLike) -> bool:
    """Whether ``path`` names a MIDI file (by its suffix), as opposed to a cache."""
    from midigenre.prepare import MIDI_SUFFIXES

    return Path(path).suffix.lower() in MIDI_SUFFIXES


def parse_indices(values: Iterable[str]) -> list[int]:
    """Phrase numbers from option values such as ``"3"``, ``"0:8"`` (START:STOP, STOP excluded) or ``"1,4,9"``."""
    out: list[int] = []
    for v in values:
        for part in str(v).split(","):
            part = part.strip()
            if ":" in part:
                a, b = part.split(":", 1)
                try:
                    out += list(range(int(a or 0), int(b)))
                except ValueError:
                    raise GenreError(f"bad index range {part!r}: write START:STOP, e.g. 0:8") from None
            elif part:
                try:
                    out.append(int(part))
                except ValueError:
                    raise GenreError(f"bad index {part!r}: give numbers such as 3, 0:8 or 1,4,9") from None
    return out


def select_phrases(source: str | os.PathLike, *, genre: str | None = None, index: Iterable[str] = (),
                   song: str | int | None = None, meter: str = "assume-4/4", whole_midi: bool = False) -> Selection:
    """Phrases of a cache or of a MIDI file, as chosen on the command line.

    Parameters
    ----------
    source : a cache (.h5) or a MIDI file.
    genre : the genre group of a cache (needed when it holds several).
    index : cache rows, or phrase numbers of a MIDI file (see :func:`parse_indices`).
        Default: the first row of a cache; the first four phrases of a MIDI file (all of them
        with ``whole_midi``).
    song : one cached song (its number or name): every phrase of it, at its places.
    meter : the meter rule a MIDI file is read with.

    Raises GenreError for a conflicting, empty or out-of-range choice.
    """
    sel = _select(source, genre, tuple(index or ()), song, meter, whole_midi)
    if not sel.items:
        raise GenreError("no phrases selected (check --index: START:STOP needs START < STOP)")
    return sel


def _select(source, genre, index, song, meter, whole_midi) -> Selection:
    if song is not None and index:
        raise GenreError("give --index or --song, not both")
    from midigenre.pianoroll import RollSettings, read_song, split_phrases

    if is_midi_path(source):
        if song is not None:
            raise GenreError("--song picks a song of a cache; for a MIDI file use --index")
        settings = RollSettings(meter=meter)
        s = read_song(source, settings)
        phrases, _ = split_phrases(s.roll, settings, keep_empty=True, pad_tail=True)
        name = Path(source).name
        chosen = parse_indices(index) if index else list(range(len(phrases) if whole_midi else min(4, len(phrases))))
        for i in chosen:
            if not 0 <= i < len(phrases):
                raise GenreError(f"phrase {i} is out of range: {name} has {len(phrases)} phrases (0..{len(phrases) - 1})")
        return Selection([Phrase(f"{name}, phrase {i}", phrases[i], i) for i in chosen], settings, s.tempo, song=name)

    from midigenre.dataset import PhraseCache

    with PhraseCache(source) as c:
        if genre is None:
            if len(c.genres) != 1:
                raise GenreError(f"{source} holds several genres ({', '.join(c.genres)}): choose one with --genre")
            genre = c.genres[0]
        if song is not None:
            phrases, pos, tempo, name = c.song(genre, song)
            return Selection([Phrase(f"{genre}: {name}, phrase {p}", ph, int(p)) for ph, p in zip(phrases, pos)],
                             c.settings, tempo, song=f"{genre}: {name}")
        chosen = parse_indices(index) if index else [0]
        n = c.n_phrases(genre)
        for i in chosen:
            if not 0 <= i < n:
                raise GenreError(f"phrase row {i} is out of range: genre '{genre}' of {Path(source).name} has {n} phrases"
                                 + (f" (0..{n - 1})" if n else ""))
        files = c.files(genre)
        pf, pi = c.phrase_file(genre), c.phrase_index(genre)
        out, tempo = [], None
        for i in chosen:
            ph = c.phrases(genre, i)
            f = int(pf[i])
            tempo = tempo or float(files["tempo"][f])
            out.append(Phrase(f"{genre} #{i}: {files['name'][f]}, phrase {int(pi[i])}", ph, int(pi[i])))
        return Selection(out, c.settings, tempo)


__all__ = ["Phrase", "Selection", "is_midi_path", "parse_indices", "select_phrases"]
