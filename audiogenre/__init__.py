"""The audio path: genre classifiers behind one interface (frozen wav2vec2 + head, spectrogram
CNN / ResNet-18 / late fusion, deep softmax autoencoder), gradient-guided transformation of a
waveform toward a genre, Fréchet Audio Distance (also of rendered symbolic transfers), FluidSynth
rendering of MIDI, and the transcription bridge: a recording → its notes → a symbolic transfer →
audio (:mod:`audiogenre.transcribe`, :mod:`audiogenre.arrange`).

Main entry points::

    from audiogenre.audio import Preprocess, load_clip
    from audiogenre.models import AudioClassifier
    from audiogenre.transform import TransformConfig, transform_file
    from audiogenre.fad import fad, fad_infinity
    from audiogenre.render import render_file
"""
