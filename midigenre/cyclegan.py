"""The CycleGAN of Brunner et al. (2018): its networks as one container, its named losses and
the history pool of generated phrases. Training runs on the shared loop (midigenre/train.py).

Variants: ``base`` (D_A, D_B), ``partial`` and ``full`` (extra discriminators D_A,all and
D_B,all that see mixed real data — A∪B, or all three genres — as real and generated phrases as
fake). With ``genre_critic`` a :class:`GenreCritic` C learns P(B | x) on real phrases, and the
generators are asked to make C assign their outputs to the target genre (StarGAN's domain
classification loss, Choi et al. 2018, here for two genres). The losses are named dicts; each optimiser minimises ``weighted(losses, weights)`` (``TrainConfig.loss_weights``).
The saved model (kind ``"cyclegan"``) is the two generators: ``midigenre.models.save_generators``.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from midigenre.config import keep_source_directions
from midigenre.models import Discriminator, Generator, ModelConfig
from shared.training import weighted  # noqa: F401  (the losses' weighting, re-exported)


class CycleGAN(nn.Module):
    """Two generators and two (base) or four (partial/full) discriminators."""

    def __init__(self, model: ModelConfig, variant: str = "base", genre_critic: bool = False):
        super().__init__()
        self.config, self.variant = model, variant
        self.G_AB, self.G_BA = Generator(model), Generator(model)
        self.D_A, self.D_B = Discriminator(model), Discriminator(model)
        if variant != "base":
            self.D_A_all, self.D_B_all = Discriminator(model), Discriminator(model)
        self.C = GenreCritic(model) if genre_critic else None

    def generators(self) -> list[nn.Module]:
        return [self.G_AB, self.G_BA]

    def discriminators(self) -> list[nn.Module]:
        ds = [self.D_A, self.D_B]
        ds += [self.D_A_all, self.D_B_all] if self.variant != "base" else []
        return ds + ([self.C] if self.C is not None else [])

    @torch.no_grad()
    def translate(self, x: torch.Tensor, direction: str, thresholds: dict | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """(transferred, cycled back) binary rolls of a batch; ``direction`` is "ab" or "ba";
        ``thresholds`` per direction (default 0.5)."""
        self.eval()
        t = {"ab": 0.5, "ba": 0.5, **(thresholds or {})}
        back = "ba" if direction == "ab" else "ab"
        g1, g2 = (self.G_AB, self.G_BA) if direction == "ab" else (self.G_BA, self.G_AB)
        y = (g1(x) > t[direction]).float()
        return y, (g2(y) > t[back]).float()


class GenreCritic(nn.Module):
    """P(genre B | phrase) as a logit: the patch discriminator's body, averaged over the patches."""

    def __init__(self, model: ModelConfig):
        super().__init__()
        self.body = Discriminator(model)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x).mean(dim=(1, 2, 3))


def straight_through(p: torch.Tensor, threshold: float = 0.5) -> torch.Tensor:
    """Notes where ``p`` > threshold in the forward pass, the gradient of ``p`` in the backward pass."""
    return (p > threshold).to(p.dtype) + p - p.detach()


@torch.no_grad()
def density_thresholds(m: CycleGAN, x_a: torch.Tensor, x_b: torch.Tensor, *, batch_size: int = 256) -> dict[str, float]:
    """Per direction, the threshold on G's output that gives the transferred phrases the mean note
    density of the real phrases of the target genre (``binarize: density``).

    ``x_a``, ``x_b``: (N, 1, T, P) real phrases of A and B (training songs). Thresholds are the
    (1 − density) quantile of the generated probabilities, kept within [0.05, 0.95].
    """
    m.eval()
    out = {}
    for direction, g, x, target in (("ab", m.G_AB, x_a, x_b), ("ba", m.G_BA, x_b, x_a)):
        probs = torch.cat([g(x[i:i + batch_size]).float().flatten() for i in range(0, len(x), batch_size)])
        density = float(target.float().mean())
        k = min(len(probs) - 1, max(0, int(round((1.0 - density) * (len(probs) - 1)))))
        t = float(torch.kthvalue(probs.cpu(), k + 1).values)
        out[direction] = float(min(0.95, max(0.05, t)))
    return out


class ImagePool:
    """History of generated phrases (Shrivastava et al.): half the time D sees an older fake.

    Randomness comes from torch's generator, so a checkpoint that saves torch's RNG state
    resumes the pool exactly.
    """

    def __init__(self, size: int):
        self.size = size
        self.images: list[torch.Tensor] = []

    def __call__(self, batch: torch.Tensor) -> torch.Tensor:
        if self.size <= 0:
            return batch
        out = []
        for img in batch.detach():
            img = img.unsqueeze(0)
            if len(self.images) < self.size:
                self.images.append(img.clone())
                out.append(img)
            elif torch.rand(1).item() < 0.5:
                k = int(torch.randint(0, self.size, (1,)).item())
                out.append(self.images[k].clone())
                self.images[k] = img.clone()
            else:
                out.append(img)
        return torch.cat(out)

    def state(self) -> torch.Tensor | None:
        return torch.cat(self.images).cpu() if self.images else None

    def load(self, images: torch.Tensor | None, device) -> None:
        self.images = [] if images is None else [x.unsqueeze(0).to(device) for x in images]


def _noisy(x: torch.Tensor, sigma: float) -> torch.Tensor:
    # half-normal |N(0, σ_D)| on discriminator inputs (Brunner et al. 2018)
    return x + torch.randn_like(x).abs_() * sigma if sigma > 0 else x


def _lsgan(pred: torch.Tensor, target: float) -> torch.Tensor:
    return F.mse_loss(pred, torch.full_like(pred, target))


def generator_losses(m: CycleGAN, real_a, real_b, sigma_d: float, adv_all: bool = False, identity: bool = False,
                     genre: bool = False, content: bool = False, keep: bool = False, add: bool = False,
                     keep_source: str = "none", genre_ba_scale: float = 1.0, harmony: bool = False):
    """Named generator losses and the fakes they made: ``(losses, fake_a, fake_b)``.

    ``adv_all`` adds ``g/adv_all`` (fooling D_A,all and D_B,all); the reference leaves it out.
    ``identity`` adds ``g/identity`` = |G_AB(x_B) − x_B| + |G_BA(x_A) − x_A| (CycleGAN's identity
    loss: a phrase already in the target genre should pass unchanged); the papers leave it out.
    ``content`` adds ``g/content`` = |G_AB(x_A) − x_A| + |G_BA(x_B) − x_B| (the transfer itself stays
    near its source; not in the papers). ``keep`` adds ``g/keep``, the share of each source's notes
    its transfer removes (:func:`removed_share`; adding notes costs nothing); ``add`` adds ``g/add``, the
    notes it adds as a share of the source's notes (:func:`added_share`); ``harmony`` adds ``g/harmony``,
    how far each transfer's per-beat pitch classes are from its source's (:func:`harmony_distance`). ``keep_source`` (``ab``, ``ba``
    or ``both``) makes those directions' transfers max(G(x), x) everywhere (transfer, cycle, identity):
    they keep every source note and G learns only what to add. ``genre`` adds ``g/genre``: the genre critic's
    cross-entropy of the binarised (straight-through) fakes against their target genres, so that faint,
    sub-threshold patterns cannot satisfy it; ``genre_ba_scale`` multiplies its B → A term.
    """
    def kept(g, on):
        def with_source(x):
            y = g(x)
            return torch.maximum(y, x.to(y.dtype))

        return with_source if on else g

    keeps = keep_source_directions(keep_source)
    g_ab, g_ba = kept(m.G_AB, keeps["ab"]), kept(m.G_BA, keeps["ba"])
    fake_b = g_ab(real_a)
    fake_a = g_ba(real_b)
    cyc_a = g_ba(fake_b)
    cyc_b = g_ab(fake_a)
    losses = {
        "g/adv_ab": _lsgan(m.D_B(_noisy(fake_b, sigma_d)), 1.0),
        "g/adv_ba": _lsgan(m.D_A(_noisy(fake_a, sigma_d)), 1.0),
        "g/cycle": F.l1_loss(cyc_a, real_a) + F.l1_loss(cyc_b, real_b),
    }
    if content:
        losses["g/content"] = F.l1_loss(fake_b, real_a) + F.l1_loss(fake_a, real_b)
    if keep:
        losses["g/keep"] = removed_share(real_a, fake_b) + removed_share(real_b, fake_a)
    if add:
        losses["g/add"] = added_share(real_a, fake_b) + added_share(real_b, fake_a)
    if harmony:
        losses["g/harmony"] = harmony_distance(real_a, fake_b) + harmony_distance(real_b, fake_a)
    if identity:
        losses["g/identity"] = F.l1_loss(g_ab(real_b), real_b) + F.l1_loss(g_ba(real_a), real_a)
    if adv_all and m.variant != "base":
        losses["g/adv_all"] = _lsgan(m.D_A_all(_noisy(fake_a, sigma_d)), 1.0) + _lsgan(m.D_B_all(_noisy(fake_b, sigma_d)), 1.0)
    if genre and m.C is not None:
        losses["g/genre"] = (_genre_ce(m.C, straight_through(fake_b), 1.0)
                             + genre_ba_scale * _genre_ce(m.C, straight_through(fake_a), 0.0))
    return losses, fake_a, fake_b


def removed_share(source: torch.Tensor, out: torch.Tensor) -> torch.Tensor:
    """Σ x·(1 − y) / Σ x per phrase, averaged over the batch: the soft share of the source's notes that
    the output drops (``midigenre.metrics.content_removed`` on probabilities). Empty sources count 0."""
    dims = tuple(range(1, source.dim()))
    source, out = source.float(), out.float()
    return ((source * (1 - out)).sum(dims) / source.sum(dims).clamp(min=1.0)).mean()


def harmony_distance(source: torch.Tensor, out: torch.Tensor, steps_per_beat: int = 4, lowest_pitch: int = 24) -> torch.Tensor:
    """1 − the per-beat pitch-class (chroma) cosine similarity of source and output, over the beats in
    which the source sounds, averaged over the batch: ``midigenre.metrics.harmony_kept`` on
    probabilities, so a transfer learns to keep the song's chords while it rewrites their voicing."""
    x, y = source.float(), out.float()
    steps, pitches = x.shape[-2], x.shape[-1]
    beats = steps // steps_per_beat
    fold = torch.zeros(pitches, 12, device=x.device)
    fold[torch.arange(pitches), (torch.arange(pitches) + lowest_pitch) % 12] = 1.0

    def chroma(r):
        r = r[..., : beats * steps_per_beat, :].reshape(*r.shape[:-2], beats, steps_per_beat, pitches).sum(-2)
        return r @ fold  # (..., beats, 12)

    a, b = chroma(x), chroma(y)
    cos = F.cosine_similarity(a, b, dim=-1, eps=1e-6)
    voiced = (a.sum(-1) > 0).float()
    return 1 - (cos * voiced).sum() / voiced.sum().clamp(min=1.0)


def added_share(source: torch.Tensor, out: torch.Tensor) -> torch.Tensor:
    """Σ (1 − x)·y / Σ x per phrase, averaged over the batch: the soft notes the output adds, as a share
    of the source's notes (``midigenre.metrics.content_added`` on probabilities; an empty source
    counts its added notes as a share of one)."""
    dims = tuple(range(1, source.dim()))
    source, out = source.float(), out.float()
    return (((1 - source) * out).sum(dims) / source.sum(dims).clamp(min=1.0)).mean()


def _genre_ce(critic: nn.Module, x: torch.Tensor, target: float) -> torch.Tensor:
    logits = critic(x).float()
    return F.binary_cross_entropy_with_logits(logits, torch.full_like(logits, target))


def discriminator_losses(m: CycleGAN, real_a, real_b, fake_a, fake_b, mixed, sigma_d: float):
    """Named discriminator losses; each is (real + fake) / 2 as in the reference."""
    def pair(d, real, fake):
        return (_lsgan(d(_noisy(real, sigma_d)), 1.0) + _lsgan(d(_noisy(fake, sigma_d)), 0.0)) / 2

    losses = {"d/a": pair(m.D_A, real_a, fake_a), "d/b": pair(m.D_B, real_b, fake_b)}
    if m.variant != "base":
        losses["d/a_all"] = pair(m.D_A_all, mixed, fake_a)
        losses["d/b_all"] = pair(m.D_B_all, mixed, fake_b)
    if m.C is not None:  # the genre critic learns from real phrases only
        losses["d/genre"] = _genre_ce(m.C, real_a, 0.0) + _genre_ce(m.C, real_b, 1.0)
    return losses
