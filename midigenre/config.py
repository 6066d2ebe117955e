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
WEIGHTS = {"g/adv_ab": 1.0, "g/adv_ba": 1.0, "g/cycle": 10.0, "g/adv_all": 0.0,
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


#: The last version with the training settings removed since (options whose experiments did not
#: improve the transfers); a saved file may still name them, at the value that is now the only behaviour.
REMOVED_AFTER = "genre-transfer 0.1.0, commit 0780a9e"


def _check_training(cfg, table: dict[str, float]) -> None:
    """The checks the GAN trainers' settings share; ``cfg.weights`` becomes ``table`` updated
    with the given weights."""
    if cfg.binarize not in BINARIZE:
        raise GenreError(f"unknown binarize {cfg.binarize!r}; choose one of {', '.join(BINARIZE)}")
    cfg.model  # noqa: B018 - validates the preset name
    if cfg.epochs < 1 or cfg.batch_size < 1:
        raise GenreError("epochs and batch_size must be at least 1")
    if not isinstance(cfg.weights, dict):
        raise GenreError("weights must be a mapping of loss names to weights")
    unknown = set(cfg.weights) - set(table)
    if unknown:
        raise GenreError(f"unknown loss names in weights: {sorted(unknown)} (known: {', '.join(table)})")
    try:
        weights = {**table, **{k: float(v) for k, v in cfg.weights.items()}}
    except (TypeError, ValueError):
        raise GenreError(f"weights must map loss names to numbers, not {cfg.weights!r}") from None
    object.__setattr__(cfg, "weights", weights)


def _loss_weights(cfg) -> dict[str, float]:
    """Every named loss's weight: the ``weights`` table and the losses that have a setting of their own."""
    return {**cfg.weights, "g/genre": cfg.genre_loss, "g/identity": cfg.identity, "g/content": cfg.content,
            "g/keep": cfg.keep, "g/add": cfg.add, "g/harmony": cfg.harmony}


def _saved_names(d: dict, removed: dict[str, tuple]) -> dict:
    """``d`` (settings as a file holds them) in today's names: ``lambdas`` (the loss weights'
    name before) becomes ``weights``; each ``removed`` setting (name → (its only value now, how
    it was asked for)) is dropped where it holds that value and refused in one line otherwise."""
    if not isinstance(d, dict):
        return d
    d = dict(d)
    if "lambdas" in d:
        if "weights" in d:
            raise GenreError("give the loss weights once, as weights (lambdas is their earlier name)")
        d["weights"] = d.pop("lambdas")
    for name, (neutral, asked) in removed.items():
        if name in d and not neutral(d.pop(name)):
            raise GenreError(f"setting {name} ({asked}) was removed after {REMOVED_AFTER}; its results are in "
                             "docs/experiments.md")
    return d


@dataclass(frozen=True)
class TrainConfig:
    """Everything a CycleGAN training run depends on; the reference's values are the defaults.

    ``weights`` weights each named loss of ``midigenre.cyclegan``; names left out keep the
    reference's weights (:attr:`loss_weights`: every loss's weight).
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
    weights: dict = setting(WEIGHTS, "Weight of each named loss (config file only; called lambdas before).", cli=False)
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
        _check_training(self, WEIGHTS)

    @property
    def model(self):
        """The architecture (``midigenre.models.ModelConfig``) of the preset with SN / SA."""
        from midigenre.models import preset

        return preset(self.preset, spectral_norm=self.spectral_norm, self_attention=self.self_attention,
                      residual=self.residual, pitch_plane=self.pitch_plane, melody_lock=self.melody_lock)

    @property
    def loss_weights(self) -> dict[str, float]:
        """Every named loss's weight (``weights`` with ``identity``, ``genre_loss``, ``content``, …)."""
        return _loss_weights(self)

    def to_dict(self) -> dict:
        return to_dict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "TrainConfig":
        """Settings from a dict, a config file's or a saved run's (``lambdas``, the earlier name of
        ``weights``, is read as ``weights``)."""
        return from_dict(cls, _saved_names(d, {}), what="training settings")

    @classmethod
    def from_saved(cls, d: dict) -> "TrainConfig":
        """The settings a run folder or checkpoint saved (:meth:`from_dict`: the defaults have not changed)."""
        return cls.from_dict(d)


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
MULTI_WEIGHTS = {"g/adv": 1.0, "g/cycle": 10.0, "d/adv": 1.0, "d/genre": 1.0}


#: How a multi-genre generator takes its target genre (``MultiGenreConfig.conditioning``, and the
#: architecture's, ``midigenre.models.MultiGenreModelConfig.conditioning``).
CONDITIONINGS = ("scale-shift", "scale")
#: The genre classifiers of the multi-genre model's genre loss (``MultiGenreConfig.critic``).
CRITICS = ("shared", "separate", "adversarial")

#: The multi-genre settings removed after :data:`REMOVED_AFTER` (their results are in
#: docs/experiments.md): name → (whether a saved value is the behaviour that is left, how it was
#: asked for). ``conditioning: branch`` is refused by :class:`MultiGenreConfig` itself.
REMOVED_MULTI = {
    "real_fake": (lambda v: v == "shared", "--real-fake per-genre, a real/fake map per genre"),
    "genre_scale": (lambda v: isinstance(v, dict) and all(w == 1 for w in v.values()),
                    "--genre-scale NAME=W, a factor on the genre loss per target genre"),
    "cycle_notes": (lambda v: v is False, "--cycle-notes, the cycle back from the transfer's notes"),
}

#: :class:`MultiGenreConfig`'s defaults until :data:`REMOVED_AFTER`, where they differ from today's
#: (which are the shipped four-genres-melody's recipe). A saved config.json or checkpoint is
#: complete when it is written, so a key it lacks is a setting added after it: the default of
#: then, which these are.
DEFAULTS_BEFORE = {"critic": "shared", "conditioning": "scale-shift", "spectral_norm": False, "pitch_plane": False,
                   "melody_lock": False, "identity": 0.0, "keep": 0.0, "harmony": 0.0, "sigma_d": 1.0, "epochs": 20,
                   "decay_after": 10}


@dataclass(frozen=True)
class MultiGenreConfig:
    """Everything a multi-genre (StarGAN-style) training run depends on. The defaults are the
    recipe of the shipped ``four-genres-melody`` model (docs/training.md), where it has one.

    The field names are those of :class:`TrainConfig` where they mean the same, so one set of
    command-line options serves both models.
    """

    preset: str = setting("small", "Architecture: paper (Brunner et al.), medium, or small (trains on a CPU).")
    spectral_norm: bool = setting(True, "Spectral normalisation on every G and D convolution.", option="--sn/--no-sn")
    self_attention: bool = setting(False, "Self-attention blocks (SAGAN) in G and D.", option="--sa/--no-sa")
    residual: bool = setting(False, "The generator starts from its input: output = sigmoid(net(x, t) + s·(2x − 1)).",
                             option="--residual/--no-residual")
    pitch_plane: bool = setting(True, "G and D also see each cell's pitch as an input plane, so they know the register "
                                      "(CoordConv).", option="--pitch-plane/--no-pitch-plane")
    melody_lock: bool = setting(True, "Keep the song's melody note for note: G sees the melody as an input plane and "
                                      "rewrites only the accompaniment below it.", option="--melody-lock/--no-melody-lock")
    identity: float = setting(2.0, "Weight of the identity loss |G(x, s) − x| (a phrase 'transferred' to its own "
                                   "genre s should stay as it is).", min=0)
    content: float = setting(0.0, "Weight of the content loss |G(x, t) − x|: a transfer stays near its source.", min=0)
    keep: float = setting(1.0, "Weight of the keep loss: the share of the source's notes G(x, t) removes, "
                               "Σ x·(1 − G(x, t)) / Σ x per phrase (adding notes costs nothing).", min=0)
    add: float = setting(0.0, "Weight of the add loss: the notes G(x, t) adds, as a share of x's notes, "
                              "Σ (1 − x)·G(x, t) / Σ x per phrase.", min=0)
    harmony: float = setting(5.0, "Weight of the harmony loss: 1 − the per-beat pitch-class similarity of G(x, t) and "
                                  "x (the harmony-kept measure), so the new accompaniment keeps the song's chords.", min=0)
    genre_loss: float = setting(1.0, "Weight of the genre loss: D's genre head must classify G(x, t), seen as notes "
                                     "(binarised at 0.5, straight-through gradients), as t (StarGAN's domain loss).",
                                min=0)
    keep_source_into: list = setting([], "Target genres whose transfers keep every note of their source, in training "
                                         "too: the transfer is max(G(x, t), x), so G learns only what to add; the saved "
                                         "model keeps the source in them (--keep-source-into NAME).", cli=False)
    critic: str = setting("adversarial", "The genre classifier of the genre loss: shared = D's genre head (StarGAN); "
                                         "separate = its own network trained on real phrases (as the CycleGAN's "
                                         "critic); adversarial = that network with a K+1-th class for generated "
                                         "phrases.", choices=CRITICS, cli=False)
    conditioning: str = setting("scale", "How G takes the target genre after each instance norm of its residual "
                                         "blocks: scale-shift (conditional instance norm) or scale (no constant "
                                         "shift, which can turn into edge patterns).", choices=CONDITIONINGS, cli=False)
    binarize: str = setting("fixed", "fixed: notes where G's output > 0.5. density: a threshold per target genre that "
                                     "matches its note density.", choices=BINARIZE)
    epochs: int = setting(3, "Epochs; an epoch is K × (the smallest genre's training phrases) / batch size steps.",
                          min=1)
    decay_after: int = setting(3, "Epochs at the full learning rate; then it decays linearly to 0 at the last epoch.",
                               min=0)
    batch_size: int = setting(32, "Phrases per step, their source genres drawn evenly.", min=1)
    lr: float = setting(2e-4, "Adam learning rate.", min=0, min_open=True)
    beta1: float = setting(0.5, "Adam β1.", min=0, max=1)
    beta2: float = setting(0.999, "Adam β2.", min=0, max=1)
    sigma_d: float = setting(0.1, "σ_D of the half-normal noise |N(0, σ_D)| on the discriminator's real/fake inputs.",
                             min=0)
    pool_size: int = setting(50, "Generated phrases kept in the history pool (0: none).", min=0)
    weights: dict = setting(MULTI_WEIGHTS, "Weight of each named loss (config file only; called lambdas before).",
                            cli=False)
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
        if self.conditioning == "branch":
            raise GenreError(f"conditioning 'branch' (residual blocks and decoder of their own per target genre) was "
                             f"removed after {REMOVED_AFTER}; its results are in docs/experiments.md; choose "
                             f"{' or '.join(CONDITIONINGS)}")
        if self.conditioning not in CONDITIONINGS:
            raise GenreError(f"unknown conditioning {self.conditioning!r}; choose {', '.join(CONDITIONINGS)}")
        if self.critic not in CRITICS:
            raise GenreError(f"unknown critic {self.critic!r}; choose shared, separate or adversarial")
        _check_training(self, MULTI_WEIGHTS)
        if not isinstance(self.keep_source_into, (list, tuple)) or not all(isinstance(g, str) for g in self.keep_source_into):
            raise GenreError(f"keep_source_into must be a list of genre names, not {self.keep_source_into!r}")
        object.__setattr__(self, "keep_source_into", sorted(set(self.keep_source_into)))

    @property
    def model(self):
        """The architecture (``midigenre.models.MultiGenreModelConfig``) of the preset with SN / SA / residual."""
        from midigenre.models import MultiGenreModelConfig, preset

        return MultiGenreModelConfig.of(preset(self.preset, spectral_norm=self.spectral_norm,
                                               self_attention=self.self_attention, residual=self.residual,
                                               pitch_plane=self.pitch_plane, melody_lock=self.melody_lock),
                                        conditioning=self.conditioning)

    @property
    def loss_weights(self) -> dict[str, float]:
        """Every named loss's weight (``weights`` with ``genre_loss``, ``identity``, ``content``, …)."""
        return _loss_weights(self)

    def to_dict(self) -> dict:
        return to_dict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "MultiGenreConfig":
        """Settings from a dict, a config file's or a saved run's: ``lambdas`` is read as
        ``weights``, and a removed setting (:data:`REMOVED_MULTI`) is accepted at the value that
        is now the only behaviour and refused otherwise."""
        return from_dict(cls, _saved_names(d, REMOVED_MULTI), what="training settings")

    @classmethod
    def from_saved(cls, d: dict) -> "MultiGenreConfig":
        """The settings a run folder's config.json or checkpoint saved; a setting it lacks was
        added later and takes the default of then (:data:`DEFAULTS_BEFORE`), not today's."""
        return cls.from_dict({**DEFAULTS_BEFORE, **d} if isinstance(d, dict) else d)
