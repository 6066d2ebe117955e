"""The settings of the MIDI training jobs, one frozen dataclass each: :class:`TrainConfig` (the
CycleGAN), :class:`MultiGenreConfig` (the multi-genre generator) and :class:`ClassifierConfig`
(the genre classifier).

Field defaults are the reference values and each field's ``metadata["help"]`` its help text;
``genre midi train`` and ``genre midi train-classifier`` make their options from them. This
module imports no torch, so the command line answers ``--help`` at once.
"""

from __future__ import annotations

from dataclasses import dataclass

from shared.config import from_dict, setting, to_dict
from shared.errors import GenreError

VARIANTS = ("base", "partial", "full")

#: The reference's loss weights: adversarial 1, cycle λ = 10, D_all γ = 1, and 0 for ``g/adv_all``
#: (the reference's generators never see the D_all discriminators).
LAMBDAS = {"g/adv_ab": 1.0, "g/adv_ba": 1.0, "g/cycle": 10.0, "g/adv_all": 0.0,
           "d/a": 1.0, "d/b": 1.0, "d/a_all": 1.0, "d/b_all": 1.0}
#: How generated probabilities become notes: ``fixed`` at 0.5 (the reference), or ``density``:
#: per direction, the threshold that gives the transferred phrases of the training songs the
#: mean note density of the target genre's training phrases (computed when the model is saved).
BINARIZE = ("fixed", "density")
#: Which directions of a pair keep their source's notes (``keep_source``).
KEEP_SOURCE = ("none", "ab", "ba", "both")


def keep_source_directions(which: str) -> dict[str, bool]:
    """``{"ab": …, "ba": …}``, what a pair model saves as ``keep_source``, from one of :data:`KEEP_SOURCE`."""
    return {d: which in (d, "both") for d in ("ab", "ba")}


def _check_training(cfg, table: dict[str, float]) -> None:
    """The checks the GAN trainers' settings share; ``cfg.lambdas`` becomes ``table`` updated
    with the given weights."""
    if cfg.binarize not in BINARIZE:
        raise GenreError(f"unknown binarize {cfg.binarize!r}; choose one of {', '.join(BINARIZE)}")
    cfg.model  # noqa: B018 - validates the preset name
    if cfg.epochs < 1 or cfg.batch_size < 1:
        raise GenreError("epochs and batch_size must be at least 1")
    if not isinstance(cfg.lambdas, dict):
        raise GenreError("lambdas must be a mapping of loss names to weights")
    unknown = set(cfg.lambdas) - set(table)
    if unknown:
        raise GenreError(f"unknown loss names in lambdas: {sorted(unknown)} (known: {', '.join(table)})")
    try:
        lambdas = {**table, **{k: float(v) for k, v in cfg.lambdas.items()}}
    except (TypeError, ValueError):
        raise GenreError(f"lambdas must map loss names to numbers, not {cfg.lambdas!r}") from None
    object.__setattr__(cfg, "lambdas", lambdas)


@dataclass(frozen=True)
class TrainConfig:
    """Everything a CycleGAN training run depends on; the reference's values are the defaults.

    ``lambdas`` weights each named loss of ``midigenre.cyclegan``; names left out keep the
    reference's weights.
    """

    preset: str = setting("small", "Architecture: paper (Brunner et al.), medium, or small (trains on a CPU).")
    variant: str = setting("base", "base: D_A and D_B. partial: also D_A,all and D_B,all, which see A and B as "
                                   "real. full: they also see a third genre (--mixed).", choices=VARIANTS)
    spectral_norm: bool = setting(False, "Spectral normalisation on every G and D convolution.", option="--sn/--no-sn")
    self_attention: bool = setting(False, "Self-attention blocks (SAGAN) in G and D.", option="--sa/--no-sa")
    residual: bool = setting(False, "Generators start from their input: output = sigmoid(net(x) + s·(2x − 1)) with a "
                                    "learned s (not in the papers).", option="--residual/--no-residual")
    pitch_plane: bool = setting(False, "G and D also see each cell's pitch as an input plane, so they know the register "
                                       "(CoordConv; not in the papers).", option="--pitch-plane/--no-pitch-plane")
    melody_lock: bool = setting(False, "Keep the song's melody note for note: G sees the melody (the phrase's skyline in "
                                       "training; the melody track or skyline of a song in transfer) as an input plane "
                                       "and rewrites only the accompaniment below it (not in the papers).",
                                option="--melody-lock/--no-melody-lock")
    identity: float = setting(0.0, "Weight of the identity loss |G_AB(x_B) − x_B| + |G_BA(x_A) − x_A| (0 in the "
                                   "reference; CycleGAN's own recipe uses half the cycle weight).", min=0)
    content: float = setting(0.0, "Weight of the content loss |G_AB(x_A) − x_A| + |G_BA(x_B) − x_B|: a transfer stays "
                                  "near its own source, so it keeps the song (not in the papers).", min=0)
    keep: float = setting(0.0, "Weight of the keep loss: the share of the source's notes a transfer removes, "
                               "Σ x·(1 − G(x)) / Σ x per phrase in each direction (the soft 'removed' of the "
                               "content-change metric; adding notes costs nothing). Not in the papers.", min=0)
    add: float = setting(0.0, "Weight of the add loss: the notes a transfer adds, as a share of the source's notes, "
                              "Σ (1 − x)·G(x) / Σ x per phrase in each direction (the soft 'added'; with --keep "
                              "at the same weight it is the content-change metric itself). Not in the papers.", min=0)
    harmony: float = setting(0.0, "Weight of the harmony loss: 1 − the per-beat pitch-class similarity of a transfer and "
                                  "its source (the harmony-kept measure), so the new accompaniment keeps the song's "
                                  "chords. Not in the papers.", min=0)
    keep_source: str = setting("none", "Directions (ab, ba, both) whose transfers keep every note of their source in "
                                       "training too: the generator's output is max(G(x), x), so it learns only what to "
                                       "add; the saved model keeps the source in them (genre midi transfer "
                                       "--keep-source). Not in the papers.", choices=KEEP_SOURCE)
    binarize: str = setting("fixed", "fixed: notes where G's output > 0.5 (the reference). density: a threshold per "
                                     "direction that matches the target genre's note density.", choices=BINARIZE)
    genre_loss: float = setting(0.0, "Weight of the genre loss: a genre critic, trained with the discriminators to tell "
                                     "real A from real B, must classify G_AB(x_A) as B and G_BA(x_B) as A, seen as "
                                     "notes (binarised at 0.5, straight-through gradients). StarGAN's domain loss; 0 "
                                     "in the papers.", min=0)
    genre_ba_scale: float = setting(1.0, "Multiplies the genre loss of B → A alone (with --genre-loss): more "
                                         "push for the direction that moves less (classical → jazz in jazz ↔ "
                                         "classical). Not in the papers.", min=0)
    epochs: int = setting(30, "Epochs.", min=1)
    decay_after: int = setting(10, "Epochs at the full learning rate; then it decays linearly to 0 at the last "
                                   "epoch.", min=0)
    batch_size: int = setting(16, "Phrases of each genre per step.", min=1)
    lr: float = setting(2e-4, "Adam learning rate.", min=0, min_open=True)
    beta1: float = setting(0.5, "Adam β1.", min=0, max=1)
    beta2: float = setting(0.999, "Adam β2.", min=0, max=1)
    sigma_d: float = setting(1.0, "σ_D of the half-normal noise |N(0, σ_D)| on every discriminator input.", min=0)
    pool_size: int = setting(50, "Generated phrases kept in each history pool (0: none).", min=0)
    lambdas: dict = setting(LAMBDAS, "Weight of each named loss (config file only).", cli=False)
    seed: int = setting(0, "Seed of the weights, the batch order and the song split.")
    test_fraction: float = setting(0.1, "Share of each genre's songs held out from training.", min=0, max=1,
                                   min_open=True, max_open=True)
    valid_fraction: float = setting(0.0, "Share of each genre's training songs set aside for choosing settings "
                                         "(the split's 'valid' part; not trained on).", min=0, max=1, max_open=True)
    sample_phrases: int = setting(4, "Test phrases per direction in the per-epoch picture.", min=1)
    keep_epochs: bool = setting(False, "Keep every epoch's model in OUT/epochs/epoch_NNN/ (to choose the epoch on the "
                                       "validation songs).", option="--keep-epochs/--no-keep-epochs")

    def __post_init__(self):
        if self.variant not in VARIANTS:
            raise GenreError(f"unknown variant {self.variant!r}; choose one of {', '.join(VARIANTS)}")
        _check_training(self, LAMBDAS)

    @property
    def model(self):
        """The architecture (``midigenre.models.ModelConfig``) of the preset with SN / SA."""
        from midigenre.models import preset

        return preset(self.preset, spectral_norm=self.spectral_norm, self_attention=self.self_attention,
                      residual=self.residual, pitch_plane=self.pitch_plane, melody_lock=self.melody_lock)

    def to_dict(self) -> dict:
        return to_dict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "TrainConfig":
        return from_dict(cls, d, what="training settings")


@dataclass(frozen=True)
class ClassifierConfig:
    """Architecture and training of the genre classifier; the reference's values are the
    defaults where it had them (Adam 2e-4, β1 0.5, LeakyReLU 0.2, instance norm)."""

    channels: tuple = setting((64, 128, 256, 512), "Channels of the four convolutions (config only).", cli=False)
    epochs: int = setting(20, "Epochs.", min=1)
    batch_size: int = setting(64, "Phrases per step.", min=1)
    lr: float = setting(2e-4, "Adam learning rate.", min=0, min_open=True)
    beta1: float = setting(0.5, "Adam β1.", min=0, max=1)
    seed: int = setting(0, "Seed of the weights, the batch order and the song split.")
    test_fraction: float = setting(0.1, "Share of each genre's songs held out for the report.", min=0, max=1,
                                   min_open=True, max_open=True)
    balance: bool = setting(True, "Downsample the training phrases of larger genres to the smallest, as the "
                                  "reference does.")

    def __post_init__(self):
        object.__setattr__(self, "channels", tuple(int(c) for c in self.channels))
        if len(self.channels) != 4:
            raise GenreError(f"channels must be four numbers, not {list(self.channels)}")

    def to_dict(self) -> dict:
        return to_dict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "ClassifierConfig":
        return from_dict(cls, d, what="classifier settings")


#: The multi-genre model's loss weights (StarGAN: adversarial 1, domain classification 1,
#: reconstruction λ = 10); ``g/genre``, ``g/identity``, ``g/content``, ``g/keep``, ``g/add`` and ``g/harmony``
#: take ``genre_loss``, ``identity``, ``content``, ``keep``, ``add`` and ``harmony``.
MULTI_LAMBDAS = {"g/adv": 1.0, "g/cycle": 10.0, "d/adv": 1.0, "d/genre": 1.0}


#: How a multi-genre generator takes its target genre (``MultiGenreConfig.conditioning``).
CONDITIONINGS = ("scale-shift", "scale", "branch")
#: D's real/fake maps of a multi-genre model (``MultiGenreConfig.real_fake``).
REAL_FAKE = ("shared", "per-genre")


@dataclass(frozen=True)
class MultiGenreConfig:
    """Everything a multi-genre (StarGAN-style) training run depends on.

    The field names are those of :class:`TrainConfig` where they mean the same, so one set of
    command-line options serves both models.
    """

    preset: str = setting("small", "Architecture: paper (Brunner et al.), medium, or small (trains on a CPU).")
    spectral_norm: bool = setting(False, "Spectral normalisation on every G and D convolution.", option="--sn/--no-sn")
    self_attention: bool = setting(False, "Self-attention blocks (SAGAN) in G and D.", option="--sa/--no-sa")
    residual: bool = setting(False, "The generator starts from its input: output = sigmoid(net(x, t) + s·(2x − 1)).",
                             option="--residual/--no-residual")
    pitch_plane: bool = setting(False, "G and D also see each cell's pitch as an input plane, so they know the register "
                                       "(CoordConv).", option="--pitch-plane/--no-pitch-plane")
    melody_lock: bool = setting(False, "Keep the song's melody note for note: G sees the melody as an input plane and "
                                       "rewrites only the accompaniment below it.", option="--melody-lock/--no-melody-lock")
    identity: float = setting(0.0, "Weight of the identity loss |G(x, s) − x| (a phrase 'transferred' to its own "
                                   "genre s should stay as it is).", min=0)
    content: float = setting(0.0, "Weight of the content loss |G(x, t) − x|: a transfer stays near its source.", min=0)
    keep: float = setting(0.0, "Weight of the keep loss: the share of the source's notes G(x, t) removes, "
                               "Σ x·(1 − G(x, t)) / Σ x per phrase (adding notes costs nothing).", min=0)
    add: float = setting(0.0, "Weight of the add loss: the notes G(x, t) adds, as a share of x's notes, "
                              "Σ (1 − x)·G(x, t) / Σ x per phrase.", min=0)
    harmony: float = setting(0.0, "Weight of the harmony loss: 1 − the per-beat pitch-class similarity of G(x, t) and "
                                  "x (the harmony-kept measure), so the new accompaniment keeps the song's chords.", min=0)
    genre_loss: float = setting(1.0, "Weight of the genre loss: D's genre head must classify G(x, t), seen as notes "
                                     "(binarised at 0.5, straight-through gradients), as t (StarGAN's domain loss).",
                                min=0)
    genre_scale: dict = setting({}, "Per target genre, a factor on the genre loss of the transfers into it "
                                    "({NAME: W}; the others 1): more push into the genres that move less "
                                    "(--genre-scale NAME=W).", cli=False)
    cycle_notes: bool = setting(False, "The cycle's way back starts from the transfer's notes (binarised at 0.5, "
                                       "straight-through gradients), not its probabilities, so G cannot hide its input "
                                       "in faint values and must keep it in the notes (--cycle-notes).", cli=False)
    keep_source_into: list = setting([], "Target genres whose transfers keep every note of their source, in training "
                                         "too: the transfer is max(G(x, t), x), so G learns only what to add; the saved "
                                         "model keeps the source in them (--keep-source-into NAME).", cli=False)
    critic: str = setting("shared", "The genre classifier of the genre loss: shared = D's genre head (StarGAN); "
                                    "separate = its own network trained on real phrases (as the CycleGAN's critic); "
                                    "adversarial = that network with a K+1-th class for generated phrases.",
                          choices=("shared", "separate", "adversarial"), cli=False)
    conditioning: str = setting("scale-shift", "How G takes the target genre: after each instance norm of its residual "
                                               "blocks, scale-shift (conditional instance norm) or scale (no constant "
                                               "shift, which can turn into edge patterns); or branch (residual blocks "
                                               "and decoder of its own per target genre, behind a shared encoder).",
                                choices=CONDITIONINGS, cli=False)
    real_fake: str = setting("shared", "D's real/fake maps: shared = one for every genre (StarGAN); per-genre = one per "
                                       "genre (StarGAN v2): a transfer must look like a real phrase of its target "
                                       "genre.", choices=REAL_FAKE, cli=False)
    binarize: str = setting("fixed", "fixed: notes where G's output > 0.5. density: a threshold per target genre that "
                                     "matches its note density.", choices=BINARIZE)
    epochs: int = setting(20, "Epochs; an epoch is K × (the smallest genre's training phrases) / batch size steps.",
                          min=1)
    decay_after: int = setting(10, "Epochs at the full learning rate; then it decays linearly to 0 at the last epoch.",
                               min=0)
    batch_size: int = setting(32, "Phrases per step, their source genres drawn evenly.", min=1)
    lr: float = setting(2e-4, "Adam learning rate.", min=0, min_open=True)
    beta1: float = setting(0.5, "Adam β1.", min=0, max=1)
    beta2: float = setting(0.999, "Adam β2.", min=0, max=1)
    sigma_d: float = setting(1.0, "σ_D of the half-normal noise |N(0, σ_D)| on the discriminator's real/fake inputs.",
                             min=0)
    pool_size: int = setting(50, "Generated phrases kept in the history pool (0: none).", min=0)
    lambdas: dict = setting(MULTI_LAMBDAS, "Weight of each named loss (config file only).", cli=False)
    seed: int = setting(0, "Seed of the weights, the batch order and the song split.")
    test_fraction: float = setting(0.1, "Share of each genre's songs held out from training.", min=0, max=1,
                                   min_open=True, max_open=True)
    valid_fraction: float = setting(0.0, "Share of each genre's training songs set aside for choosing settings.",
                                    min=0, max=1, max_open=True)
    sample_phrases: int = setting(2, "Test phrases per source genre in the per-epoch picture (each to every genre).",
                                  min=1)
    keep_epochs: bool = setting(False, "Keep every epoch's model in OUT/epochs/epoch_NNN/ (to choose the epoch on the "
                                       "validation songs).", option="--keep-epochs/--no-keep-epochs")

    def __post_init__(self):
        _check_training(self, MULTI_LAMBDAS)
        if self.critic not in ("shared", "separate", "adversarial"):
            raise GenreError(f"unknown critic {self.critic!r}; choose shared, separate or adversarial")
        if self.conditioning not in CONDITIONINGS:
            raise GenreError(f"unknown conditioning {self.conditioning!r}; choose {', '.join(CONDITIONINGS)}")
        if self.real_fake not in REAL_FAKE:
            raise GenreError(f"unknown real_fake {self.real_fake!r}; choose {', '.join(REAL_FAKE)}")
        if not isinstance(self.genre_scale, dict):
            raise GenreError(f"genre_scale must map genre names to factors, not {self.genre_scale!r}")
        try:
            scales = {str(k): float(v) for k, v in self.genre_scale.items()}
        except (TypeError, ValueError):
            raise GenreError(f"genre_scale must map genre names to numbers, not {self.genre_scale!r}") from None
        if any(not v >= 0 for v in scales.values()):
            raise GenreError(f"genre_scale factors must be 0 or more, not {scales}")
        object.__setattr__(self, "genre_scale", scales)
        if not isinstance(self.keep_source_into, (list, tuple)) or not all(isinstance(g, str) for g in self.keep_source_into):
            raise GenreError(f"keep_source_into must be a list of genre names, not {self.keep_source_into!r}")
        object.__setattr__(self, "keep_source_into", sorted(set(self.keep_source_into)))

    @property
    def model(self):
        """The architecture (``midigenre.models.ModelConfig``) of the preset with SN / SA / residual."""
        from midigenre.models import preset

        return preset(self.preset, spectral_norm=self.spectral_norm, self_attention=self.self_attention,
                      residual=self.residual, pitch_plane=self.pitch_plane, melody_lock=self.melody_lock, genre_shift=self.conditioning == "scale-shift",
                      genre_branches=self.conditioning == "branch", real_fake_per_genre=self.real_fake == "per-genre")

    @property
    def weights(self) -> dict[str, float]:
        """Every named loss's weight."""
        return {**self.lambdas, "g/genre": self.genre_loss, "g/identity": self.identity, "g/content": self.content,
                "g/keep": self.keep, "g/add": self.add, "g/harmony": self.harmony}

    def to_dict(self) -> dict:
        return to_dict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "MultiGenreConfig":
        return from_dict(cls, d, what="training settings")
