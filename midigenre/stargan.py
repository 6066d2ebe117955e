"""One generator for every pair of K genres (StarGAN, Choi et al. 2018, on the CycleGAN
networks of Brunner et al. 2018): its networks, its named losses and its saved model.

G(x, t) is the CycleGAN generator conditioned on the target genre t (``Generator(n_genres=K)``:
conditional instance normalisation in the residual blocks, a per-genre scale and — with
``MultiGenreModelConfig.conditioning`` scale-shift — shift; one-hot input planes would be erased
by the first instance norm); D is the patch discriminator with 1 + K output maps from one body:
map 0 scores real/fake per patch (least squares), maps 1…K are genre logits per patch, averaged
over the patches (D's genre head). Losses (named, weighted by ``weighted`` with
``MultiGenreConfig.loss_weights``):

``g/adv``       LSGAN: D's patches of G(x, t) (σ_D noise) should read real
``g/genre``     cross-entropy of the genre classifier on G(x, t) binarised (straight-through) against t
``g/cycle``     |G(G(x, t), s) − x|, λ = 10 (s: x's own genre)
``g/identity``  |G(x, s) − x| (with ``identity`` > 0)
``g/content``   |G(x, t) − x| (with ``content`` > 0: the transfer stays near its source)
``g/keep``      the share of x's notes G(x, t) drops (with ``keep`` > 0; adding notes costs nothing)
``g/add``       the notes G(x, t) adds, as a share of x's notes (with ``add`` > 0)
``g/harmony``   1 − the per-beat pitch-class similarity of G(x, t) and x (with ``harmony`` > 0)

With ``keep_source_into`` (training setting) the transfers into the named genres keep every note
of their source: the transfer is max(G(x, t), x) in the transfer, identity and genre terms, so G
learns only what to add (the pair model's ``keep_source``, per target genre). The cycle's way
back is G itself, so that a transfer between two such genres can still take its additions away.
``d/adv``       LSGAN, real phrases 1, generated (history pool) 0, both with σ_D noise
``d/genre``     cross-entropy of the genre classifier on REAL phrases against their genres

Where the genre classifier lives is the ``critic`` setting: ``shared`` (StarGAN) — D's genre
head, one body with the real/fake maps; ``separate`` — its own network (the patch
discriminator's body with K maps, as the CycleGAN's ``--genre-loss`` critic), trained with D on
real phrases only and without σ_D noise; ``adversarial`` — that network with a (K+1)-th class,
"generated", learnt from the history pool's fakes seen as notes (the K+1-class discriminator of
Salimans et al. 2016), so that a pattern no real phrase has cannot pass for a genre. Measured
here (docs/experiments.md): G learns to satisfy the shared head, and the separate critic as well,
with input-independent patterns along the edges of the roll that no judge reads as the genre;
the generated class together with scale-only conditioning avoided them at genre loss 1.
Branch conditioning (residual blocks and decoder per target genre), one real/fake map per genre,
a genre-loss factor per target genre and the cycle back from the transfer's notes did not help
and are not offered.

The saved model's ``kind_version`` 2 has ``config`` as a
:class:`~midigenre.models.MultiGenreModelConfig` (``conditioning``: scale-shift or scale); a
version-1 model.json (``genre_shift``, ``genre_branches``, ``real_fake_per_genre``, also in
``per_target_generators``) is read as its equivalent, and one that asks for branches or
per-genre real/fake maps is refused in one line.

The saved model (registry kind ``"multi-genre"``, :func:`save_multi_genre`) is G, D and the
critic if any: the genre classifier predicts the genre of a song whose genre is not given
(:class:`midigenre.transfer.MultiGenreTransfer`). Training runs on the shared loop
(:mod:`midigenre.multitrain`).
"""

from __future__ import annotations

import os
from pathlib import Path

import torch
from torch import nn
from torch.nn import functional as F

from midigenre.cyclegan import _lsgan, _noisy, added_share, harmony_distance, removed_share, straight_through
from midigenre.config import CRITICS, REMOVED_AFTER
from midigenre.models import Discriminator, Generator, ModelConfig, MultiGenreModelConfig
from shared.errors import GenreError
from shared.registry import register, save_model

KIND = "multi-genre"


def route_by_genre(genre: torch.Tensor, n_genres: int, apply) -> torch.Tensor:
    """``apply(k, rows)`` for the rows of each genre k present in ``genre`` (B,), put back in the
    batch's order: the output of a network per genre over a batch of mixed genres."""
    index, parts = [], []
    for k in range(n_genres):
        rows = (genre == k).nonzero().squeeze(1)
        if len(rows):
            index.append(rows)
            parts.append(apply(k, rows))
    return torch.cat(parts)[torch.argsort(torch.cat(index))]


class TargetGenerators(nn.Module):
    """One conditioned generator per target genre, e.g. each from the epoch that suits its target
    best (:func:`combine_targets`): G(x, t) is generator t's G(x, t)."""

    def __init__(self, model: MultiGenreModelConfig | list[MultiGenreModelConfig], n_genres: int):
        super().__init__()
        models = model if isinstance(model, list) else [model] * n_genres  # one architecture, or one per target
        self.generators = nn.ModuleList(Generator(m, n_genres=n_genres) for m in models)

    def forward(self, x: torch.Tensor, genre: torch.Tensor, melody: torch.Tensor | None = None) -> torch.Tensor:
        genre = genre.long()
        return route_by_genre(genre, len(self.generators), lambda k, rows: self.generators[k](
            x[rows], genre[rows], None if melody is None else melody[rows]))


class MultiGenreGAN(nn.Module):
    """G(x, t) and D(x) → (real/fake patches, genre logits) for ``n_genres`` genres — what a
    ``multi-genre`` model file holds. ``per_target``: G is one generator per target genre
    (:class:`TargetGenerators`, a combined model; not trained as such), each of ``model``'s
    architecture or of its own (``target_models``). A plain ``ModelConfig`` is read as a
    :class:`~midigenre.models.MultiGenreModelConfig` of the default conditioning."""

    def __init__(self, model: ModelConfig, n_genres: int, critic: str = "shared", per_target: bool = False,
                 target_models: list[ModelConfig] | None = None):
        super().__init__()
        if n_genres < 2:
            raise ValueError("a multi-genre model needs at least two genres")
        if critic not in CRITICS:
            raise ValueError(f"critic must be one of {', '.join(CRITICS)}, not {critic!r}")
        model = MultiGenreModelConfig.of(model)
        self.config, self.n_genres, self.critic = model, n_genres, critic
        self.G = (TargetGenerators(target_models or model, n_genres) if per_target
                  else Generator(model, n_genres=n_genres))
        self.D = Discriminator(model, out_channels=1 + (n_genres if critic == "shared" else 0))
        self.C = (Discriminator(model, out_channels=n_genres + (critic == "adversarial")) if critic != "shared"
                  else None)

    def generate(self, x: torch.Tensor, target: torch.Tensor, melody: torch.Tensor | None = None) -> torch.Tensor:
        """x : (B, 1, T, P) rolls in [0, 1]; target : (B,) genre indices → (B, 1, T, P) probabilities;
        melody : the melody cells of a melody-locked generator (default: the skyline of x)."""
        return self.G(x, target, melody)

    def discriminate(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(real/fake patch scores (B, 1, h, w), genre logits (B, K) averaged over the patches)."""
        out = self.D(x)
        logits = out[:, 1:] if self.C is None else self.C(x)[:, :self.n_genres]
        return out[:, :1], logits.mean(dim=(2, 3))

    def real_fake(self, x: torch.Tensor) -> torch.Tensor:
        """D's real/fake patch scores (B, 1, h, w) alone."""
        return self.D(x)[:, :1]

    def critic_logits(self, x: torch.Tensor) -> torch.Tensor:
        """(B, K) logits of the genre loss's classifier; (B, K + 1) with ``critic="adversarial"``
        (the last: "generated")."""
        if self.C is not None:
            return self.C(x).mean(dim=(2, 3))
        return self.D(x)[:, 1:].mean(dim=(2, 3))

    def genre_logits(self, x: torch.Tensor) -> torch.Tensor:
        """(B, K) genre logits (D's head or the separate critic, without its "generated" class)."""
        return self.critic_logits(x)[:, :self.n_genres]

    def critic_parameters(self):
        """What the discriminator step trains: D, and the separate critic when there is one."""
        return list(self.D.parameters()) + (list(self.C.parameters()) if self.C is not None else [])

    def critics_requires_grad_(self, flag: bool) -> None:
        self.D.requires_grad_(flag)
        if self.C is not None:
            self.C.requires_grad_(flag)


def kept_transfer(m: MultiGenreGAN, x: torch.Tensor, target: torch.Tensor, keep: torch.Tensor | None) -> torch.Tensor:
    """G(x, t); where ``keep[t]`` ((K,) bool, or None for none), max(G(x, t), x): the transfer
    keeps every note of its source and G only adds."""
    y = m.generate(x, target)
    if keep is None:
        return y
    kept = keep[target.long()].view(-1, *([1] * (y.dim() - 1)))
    return torch.where(kept, torch.maximum(y, x.to(y.dtype)), y)


def generator_losses(m: MultiGenreGAN, real: torch.Tensor, source: torch.Tensor, target: torch.Tensor, sigma_d: float,
                     *, identity: bool = False, genre: bool = True, content: bool = False,
                     keep: bool = False, add: bool = False, keep_source: torch.Tensor | None = None,
                     harmony: bool = False) -> tuple[dict, torch.Tensor]:
    """Named generator losses and the fakes G(x, t): ``(losses, fake)``.

    real : (B, 1, T, P); source, target : (B,) genre indices (target ≠ source in training).
    keep_source : (K,) bool, the target genres whose transfers keep their source's notes
        (:func:`kept_transfer`; None: none). The cycle's way back is G itself.
    """
    fake = kept_transfer(m, real, target, keep_source)
    losses = {
        "g/adv": _lsgan(m.real_fake(_noisy(fake, sigma_d)), 1.0),
        "g/cycle": F.l1_loss(m.generate(fake, source), real),
    }
    if genre:  # judged as notes, so faint sub-threshold patterns cannot satisfy it
        losses["g/genre"] = F.cross_entropy(m.critic_logits(straight_through(fake)).float(), target.long(),
                                            reduction="none").mean()
    if identity:
        losses["g/identity"] = F.l1_loss(kept_transfer(m, real, source, keep_source), real)
    if content:
        losses["g/content"] = F.l1_loss(fake, real)
    if keep:
        losses["g/keep"] = removed_share(real, fake)
    if add:
        losses["g/add"] = added_share(real, fake)
    if harmony:
        losses["g/harmony"] = harmony_distance(real, fake)
    return losses, fake


def discriminator_losses(m: MultiGenreGAN, real: torch.Tensor, source: torch.Tensor, fake: torch.Tensor,
                         sigma_d: float) -> dict:
    """``d/adv`` = (real + fake) / 2 as in the reference; ``d/genre`` learns from real phrases only,
    or with ``critic="adversarial"`` (real as their genres + fakes as notes as "generated") / 2."""
    genre = F.cross_entropy(m.critic_logits(real).float(), source.long())
    if m.critic == "adversarial":
        generated = torch.full((len(fake),), m.n_genres, dtype=torch.long, device=fake.device)
        genre = (genre + F.cross_entropy(m.critic_logits((fake > 0.5).to(fake.dtype)).float(), generated)) / 2
    return {
        "d/adv": (_lsgan(m.real_fake(_noisy(real, sigma_d)), 1.0)
                  + _lsgan(m.real_fake(_noisy(fake, sigma_d)), 0.0)) / 2,
        "d/genre": genre,
    }


@torch.no_grad()
def density_thresholds(m: MultiGenreGAN, phrases: list[torch.Tensor], *, batch_size: int = 256,
                       keep_source: torch.Tensor | None = None) -> list[float]:
    """Per target genre t, the threshold on G(x, t) that gives the phrases of the other genres,
    transferred to t, the mean note density of t's real phrases; within [0.05, 0.95].

    ``phrases[k]``: (N_k, 1, T, P) real phrases of genre k (training songs); ``keep_source`` as
    in :func:`generator_losses` (a kept transfer's source notes count as notes).
    """
    m.eval()
    out = []
    for t, target in enumerate(phrases):
        probs = []
        for k, x in enumerate(phrases):
            if k == t:
                continue
            for i in range(0, len(x), batch_size):
                xb = x[i:i + batch_size]
                tb = torch.full((len(xb),), t, device=xb.device)
                probs.append(kept_transfer(m, xb, tb, keep_source).float().flatten().cpu())
        p = torch.cat(probs)
        density = float(target.float().mean())
        j = min(len(p) - 1, max(0, int(round((1.0 - density) * (len(p) - 1)))))
        out.append(float(min(0.95, max(0.05, float(torch.kthvalue(p, j + 1).values)))))
    return out


# ----------------------------------------------------------------------------- the saved model


def _architecture_v1(config: dict) -> dict:
    """A generator's architecture as a ``kind_version`` 1 model.json wrote it (the booleans
    ``genre_shift``, ``genre_branches``, ``real_fake_per_genre``) as a MultiGenreModelConfig's
    dict; GenreError (one line) for a removed architecture."""
    if not isinstance(config, dict):
        return config
    config = dict(config)
    shift = config.pop("genre_shift", True)  # before the setting existed, every generator shifted
    for name, what in (("genre_branches", "conditioning branch"), ("real_fake_per_genre", "real_fake per-genre")):
        if config.pop(name, False):
            raise GenreError(f"this multi-genre model has {name}: true ({what}), which was removed after "
                             f"{REMOVED_AFTER}; load it with that version")
    config.setdefault("conditioning", "scale-shift" if shift else "scale")
    return config


def _upgrade_v1(meta: dict) -> dict:
    """A ``kind_version`` 1 model.json read as version 2: its architecture and each per-target
    generator's in :func:`_architecture_v1`'s terms (the weights are the same)."""
    meta = {**meta, "kind_version": 2, "config": _architecture_v1(meta.get("config") or {})}
    per_target = meta.get("per_target_generators")
    if isinstance(per_target, list):
        meta["per_target_generators"] = [{**p, "config": _architecture_v1(p["config"])}
                                         if isinstance(p, dict) and p.get("config") else p for p in per_target]
    return meta


@register(KIND, MultiGenreModelConfig, version=2, upgrade=_upgrade_v1)
def _build(config: MultiGenreModelConfig, meta: dict, **options) -> MultiGenreGAN:
    from midigenre.pianoroll import RollSettings

    genres = meta["genres"]
    if not isinstance(genres, list) or len(genres) < 2 or not all(isinstance(g, str) for g in genres) \
            or len(set(genres)) != len(genres):
        raise ValueError("genres must be a list of two or more different names")
    if not isinstance(meta["settings"], dict) or not meta["settings"]:
        raise ValueError("no piano-roll settings")
    RollSettings.from_dict(meta["settings"])
    for g, s in (meta.get("genre_settings") or {}).items():
        RollSettings.from_dict(s)
    critic = meta.get("critic", "shared")
    if critic not in CRITICS:
        raise ValueError(f"critic must be one of {', '.join(CRITICS)}")
    per_target = meta.get("per_target_generators")
    if per_target is not None and (not isinstance(per_target, list) or len(per_target) != len(genres)):
        raise ValueError("per_target_generators must say where each target genre's generator came from")
    target_models = None
    if per_target is not None and any(isinstance(p, dict) and p.get("config") for p in per_target):
        from shared.config import from_dict

        target_models = [from_dict(MultiGenreModelConfig, (p.get("config") if isinstance(p, dict) else None)
                                   or config.to_dict(), what="settings") for p in per_target]
    return MultiGenreGAN(config, len(genres), critic=critic, per_target=per_target is not None,
                         target_models=target_models)


def save_multi_genre(folder: str | os.PathLike, m: MultiGenreGAN, *, genres: list[str], roll_settings: dict,
                     genre_settings: dict[str, dict], **extra) -> Path:
    """Save G, D and the genre classifier (D's head or the separate critic) as a transfer model of kind ``"multi-genre"``, atomically.

    ``genres``: names in the order of the one-hot channels; ``roll_settings``: the settings a
    song of unknown genre is read with; ``genre_settings``: each genre's cache settings (the
    meter rule may differ); ``extra``: JSON-ready keys, e.g. ``thresholds`` (one per genre),
    ``train``, ``data``, ``epochs_done``.
    """
    return save_model(folder, m, KIND, m.config, settings=dict(roll_settings), genres=list(genres), critic=m.critic,
                      genre_settings={g: dict(s) for g, s in genre_settings.items()}, **extra)


def combine_targets(sources: dict[str, str | os.PathLike], base: str | os.PathLike, dest: str | os.PathLike,
                    **changes) -> Path:
    """One multi-genre model whose generator into each genre t is the generator of
    ``sources[t]`` (run, epoch or model folders of one training, or of trainings that share the
    genres, piano-roll settings and song split), each with its own architecture, its threshold
    for t and its ``keep_source`` for t.

    One generator serves every target, but the best epoch for the transfers into one genre is
    rarely the best for another (measured: docs/experiments.md); this is the multi-genre form of the
    pair model's :func:`midigenre.models.combine_generators`. ``base`` gives the discriminator and
    genre critic (the genre of a song whose genre is not given) and the description, with
    ``changes`` applied (e.g. ``thresholds`` chosen for the combination); ``per_target_generators``
    says where each generator came from and ``epochs_done`` is the most any of them trained.
    Writes ``dest`` (model and ``split.json``).
    """
    import json
    import shutil

    from shared.config import from_dict
    from shared.registry import model_folder, read_meta, read_weights, resave_model

    base_folder = model_folder(base)
    base_meta = read_meta(base_folder, KIND)
    genres = base_meta["genres"]
    if sorted(sources) != sorted(genres):
        raise GenreError(f"give one source per genre of the model ({', '.join(genres)}), not {', '.join(sources)}")
    folders = {g: model_folder(sources[g]) for g in genres}
    metas = {g: read_meta(f, KIND) for g, f in folders.items()}

    split_path = base_folder / "split.json"
    if not split_path.is_file():
        raise GenreError(f"{base_folder} has no split.json, so the held-out songs cannot be known to be unseen")
    split = json.loads(split_path.read_text())
    for g, f in folders.items():
        m = metas[g]
        for key, ours, theirs in (("genres", m.get("genres"), genres), ("settings", m.get("settings"), base_meta.get("settings")),
                                  ("meter rules", m.get("genre_settings"), base_meta.get("genre_settings"))):
            if ours != theirs:
                raise GenreError(f"{f} and {base_folder} differ in their {key}; they cannot form one model")
        if not (f / "split.json").is_file() or json.loads((f / "split.json").read_text()) != split:
            raise GenreError(f"{f} was not trained on the song split of {base_folder}")
    tensors = {k: v for k, v in read_weights(base_folder).items() if not k.startswith("G.")}
    for k, g in enumerate(genres):
        weights = read_weights(folders[g])
        own = f"G.generators.{k}."  # a source that is itself combined gives its generator for g
        prefix = own if any(n.startswith(own) for n in weights) else "G."
        picked = {n[len(prefix):]: v for n, v in weights.items() if n.startswith(prefix)}
        if prefix == "G." and any(n.startswith("generators.") for n in picked):
            raise GenreError(f"{folders[g]} holds per-target generators without one for {g}")
        tensors |= {f"G.generators.{k}.{n}": v for n, v in picked.items()}
    provenance = []
    for k, g in enumerate(genres):
        earlier = metas[g].get("per_target_generators")  # a combined source: where its generator for g came from
        origin = earlier[k] if isinstance(earlier, list) and len(earlier) == len(genres) else {}
        # each generator keeps its own architecture (e.g. one trained with the pitch plane beside one without)
        config = from_dict(MultiGenreModelConfig, origin.get("config") or metas[g].get("config") or {},
                           what="settings").to_dict()
        provenance.append({"genre": g, "from": str(origin.get("from", folders[g])),
                           "epochs_done": origin.get("epochs_done", metas[g].get("epochs_done")),
                           "threshold": float((metas[g].get("thresholds") or {}).get(g, 0.5)), "config": config})
    thresholds = {p["genre"]: p["threshold"] for p in provenance}
    # a generator trained to keep its source's notes is used that way (keep_source of its own source)
    keep_source = {g: bool((metas[g].get("keep_source") or {}).get(g, False)) for g in genres}
    done = [p["epochs_done"] for p in provenance if isinstance(p["epochs_done"], int)]
    # the base's own per-direction thresholds and their calibration belong to its generators, not these
    described = {"per_target_generators": provenance, "thresholds": thresholds, "keep_source": keep_source,
                 "pair_thresholds": {}, "threshold_calibration": None, **({"epochs_done": max(done)} if done else {})}
    out = resave_model(base_folder, dest, tensors=tensors, **(described | changes))
    shutil.copyfile(split_path, Path(dest) / "split.json")
    return out
