"""The settings of the audio training jobs, one frozen dataclass each: :class:`HeadConfig` (the
genre head on cached wav2vec2 embeddings) and :class:`BackendTrainConfig` (a trainable backend,
end to end).

Field defaults are the papers' values and each field's ``metadata["help"]`` its help text;
``genre audio train`` makes its options from them. This module imports neither torch nor
NumPy, so the command line answers ``--help`` at once.
"""

from __future__ import annotations

from dataclasses import dataclass

from shared.config import setting, to_dict
from shared.errors import GenreError


@dataclass(frozen=True)
class HeadConfig:
    """Training of the genre head on cached wav2vec2 embeddings (Armeniakos & Bistas's values)."""

    epochs: int = setting(20, "Epochs at most (early stopping may end sooner).", min=1)
    batch_size: int = setting(16, "Embeddings per step.", min=1)
    lr: float = setting(5e-4, "AdamW learning rate.", min=0, min_open=True)
    weight_decay: float = setting(1e-5, "AdamW weight decay.", min=0)
    step_size: int = setting(5, "Epochs between two learning-rate steps (StepLR).", min=1)
    gamma: float = setting(0.5, "Factor of each learning-rate step.", min=0, min_open=True)
    patience: int = setting(5, "Epochs without a better validation loss before training stops.", min=1)
    hidden: int = setting(512, "Hidden units of the head.", min=1)
    dropout: float = setting(0.4, "Dropout in the head.", min=0, max=1)
    seed: int = setting(24, "Seed of the head, the batch order and a split by song.")

    def to_dict(self) -> dict:
        return to_dict(self)


#: The paper's training settings of each trainable backend (Mongelli et al.: cnn, resnet18, fusion;
#: the style-encodings paper: autoencoder, mlp).
PAPER_SETTINGS = {
    "cnn": {"lr": 1e-3, "epochs": 20, "batch_size": 32, "segment": 5.0},
    "resnet18": {"lr": 1e-4, "epochs": 15, "batch_size": 32, "segment": 5.0},
    "fusion": {"lr": 5e-5, "epochs": 15, "batch_size": 16, "segment": 5.0},
    "autoencoder": {"lr": 1e-3, "epochs": 30, "batch_size": 64, "segment": 1.0},
    "mlp": {"lr": 1e-3, "epochs": 30, "batch_size": 64, "segment": 1.0},
}


@dataclass(frozen=True)
class BackendTrainConfig:
    """End-to-end training of a trainable audio backend (Adam, early stopping on the validation
    loss). ``segment``, ``epochs``, ``lr`` and ``batch_size`` left at None take the backend's
    paper values (:data:`PAPER_SETTINGS`)."""

    backend: str = setting("cnn", "Trainable backend.", choices=tuple(PAPER_SETTINGS), cli=False)
    segment: float | None = setting(None, "Segment length in seconds.", min=0.5)
    epochs: int | None = setting(None, "Epochs at most (early stopping may end sooner).", min=1)
    batch_size: int | None = setting(None, "Examples per step.", min=1)
    lr: float | None = setting(None, "Learning rate (Adam).", min=0, min_open=True)
    weight_decay: float = setting(0.0, "Weight decay (Adam).", min=0)
    patience: int = setting(5, "Epochs without a better validation loss before training stops.", min=1)
    seed: int = setting(24, "Seed of the weights, the batch order and a split by song.")
    imagenet: str | None = setting(None, "resnet18/fusion: torchvision ResNet-18 ImageNet weights "
                                         "(resnet18-f37072fd.pth) to start from.")
    image_size: int | None = setting(None, "cnn/resnet18/fusion: side of the spectrogram image (default 128, as "
                                           "Mongelli et al.; 64 makes the CNN 4x smaller).", min=32, max=512)

    def __post_init__(self):
        if self.backend not in PAPER_SETTINGS:
            raise GenreError(f"unknown backend {self.backend!r}: use wav2vec2 or one of {', '.join(PAPER_SETTINGS)}")
        for name, value in PAPER_SETTINGS[self.backend].items():
            if getattr(self, name) is None:
                object.__setattr__(self, name, value)
        if self.image_size and self.backend not in ("cnn", "resnet18", "fusion"):
            raise GenreError("image_size (--image-size) is for the spectrogram backends (cnn, resnet18, fusion)")
        if self.imagenet and self.backend not in ("resnet18", "fusion"):
            raise GenreError("imagenet (--imagenet) is for the resnet18 and fusion backends")

    def to_dict(self) -> dict:
        return to_dict(self)
