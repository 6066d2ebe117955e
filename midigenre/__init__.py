"""Symbolic genre transfer: MIDI ⇄ 64×84 piano-roll phrases, the phrase cache, CycleGAN
training and whole-song transfer, the genre classifier and its transfer metrics.

Main entry points::

    from midigenre.pianoroll import RollSettings, read_song, split_phrases, roll_to_midi
    from midigenre.prepare import prepare
    from midigenre.dataset import PhraseCache, SongSplit, PhraseDataset, balance
    from midigenre.transfer import TransferModel, transfer_midi
    from midigenre.classifier import Classifier
    from midigenre.evaluate import evaluate_transfer
"""
