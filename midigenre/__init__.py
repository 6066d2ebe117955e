"""Symbolic genre transfer: MIDI ⇄ 64×84 piano-roll phrases, the phrase cache, and (next) CycleGAN.

Main entry points::

    from midigenre.pianoroll import RollSettings, read_song, split_phrases, roll_to_midi
    from midigenre.prepare import prepare
    from midigenre.dataset import PhraseCache, SongSplit, PhraseDataset, balance
"""
