"""Audio genre classification and gradient-guided transformation (wav2vec2 and spectrogram backends).

Not built yet: this package is where the audio path lands (see the README road map).
"""
