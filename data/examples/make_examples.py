"""Write the two example songs shipped in data/examples (our own, MIT-licensed, made in code).

* ``jazz_example.mid``: 16 bars of a ii–V–I in C and F at 132 BPM: walking bass, shell
  voicings on the off-beats, a swung eighth-note melody.
* ``classical_example.mid``: 16 bars at 96 BPM: an Alberti-bass accompaniment under a
  stepwise melody (I–IV–V–I).

Run ``python data/examples/make_examples.py`` to rebuild them; the output is deterministic.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pretty_midi

HERE = Path(__file__).resolve().parent


def _song(tempo: float, notes: list[tuple[float, float, int, int, int]]) -> pretty_midi.PrettyMIDI:
    """notes: (start_beat, length_beats, pitch, velocity, track)."""
    pm = pretty_midi.PrettyMIDI(initial_tempo=tempo)
    pm.time_signature_changes.append(pretty_midi.TimeSignature(4, 4, 0))
    tracks = [pretty_midi.Instrument(0, name="Piano RH"), pretty_midi.Instrument(0, name="Piano LH"),
              pretty_midi.Instrument(32, name="Bass")]
    sec = 60.0 / tempo
    for start, length, pitch, vel, track in notes:
        tracks[track].notes.append(pretty_midi.Note(vel, pitch, start * sec, (start + length) * sec))
    pm.instruments.extend(t for t in tracks if t.notes)
    return pm


def jazz() -> pretty_midi.PrettyMIDI:
    rng = np.random.default_rng(1)
    # (root, third, seventh) per bar: Dm7 G7 Cmaj7 Cmaj7 | Gm7 C7 Fmaj7 Fmaj7, twice
    chords = [(50, 53, 60), (43, 47, 53), (48, 52, 59), (48, 52, 59), (43, 46, 53), (48, 52, 58), (41, 45, 52), (41, 45, 52)] * 2
    scale = [60, 62, 64, 65, 67, 69, 70, 72, 74, 76]
    notes = []
    for bar, (root, third, seventh) in enumerate(chords):
        b0 = bar * 4
        walk = [root, root + 4 if bar % 2 else root + 3, root + 7, root + 9 if bar % 2 else root + 10]
        notes += [(b0 + i, 1, p - 12, 90, 2) for i, p in enumerate(walk)]  # walking bass
        notes += [(b0 + 1.5, 0.5, third + 12, 70, 1), (b0 + 1.5, 0.5, seventh + 12, 70, 1),
                  (b0 + 3, 1, third + 12, 70, 1), (b0 + 3, 1, seventh + 12, 70, 1)]  # comping
        pos = b0
        while pos < b0 + 4:  # swung eighths: long-short
            p = int(rng.choice(scale))
            long = (pos - b0) % 1 == 0
            notes.append((pos, 0.75 if long else 0.25, p, 100, 0))
            pos += 0.75 if long else 0.25
    return _song(132.0, notes)


def classical() -> pretty_midi.PrettyMIDI:
    progression = [(48, 52, 55), (53, 57, 60), (55, 59, 62), (48, 52, 55)] * 4  # I IV V I
    melody = [72, 74, 76, 77, 79, 77, 76, 74, 72, 71, 72, 74, 76, 74, 72, 72]
    notes = []
    for bar, (r, t, f) in enumerate(progression):
        b0 = bar * 4
        for i, p in enumerate([r, f, t, f] * 2):  # Alberti bass in eighths
            notes.append((b0 + i * 0.5, 0.5, p, 70, 1))
        m = melody[bar]
        notes += [(b0, 1.5, m, 95, 0), (b0 + 1.5, 0.5, m + 2, 90, 0), (b0 + 2, 2, m - 1 if bar % 2 else m, 95, 0)]
    return _song(96.0, notes)


if __name__ == "__main__":
    for name, pm in (("jazz_example.mid", jazz()), ("classical_example.mid", classical())):
        pm.write(str(HERE / name))
        print(f"wrote {HERE / name}: {pm.get_end_time():.1f} s")
