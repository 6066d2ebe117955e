"""Which notes make the classifier call a phrase jazz (or classical)? Saliency maps with captum.

As in Brunner et al. (2019): the gradient of the class score with respect to the input piano
roll, positive gradients only, multiplied by the input (so only notes that are played light
up), normalised per phrase to [0, 1], and cells below ¼ of the maximum removed. Integrated
Gradients (all-silent baseline) is an option.
"""

from __future__ import annotations

import numpy as np

from midigenre.classifier import Classifier

METHODS = ("saliency", "integrated-gradients")


def attribute(classifier: Classifier, phrases: np.ndarray, genre: str, *, method: str = "saliency",
              threshold: float = 0.25, batch_size: int = 64) -> np.ndarray:
    """Attribution maps of (N, 64, 84) phrases for the class ``genre``: (N, 64, 84) floats in [0, 1].

    A phrase without notes gets an all-zero map.
    """
    import torch
    from captum.attr import IntegratedGradients, Saliency

    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}")
    target = classifier.index(genre)
    net = classifier.net
    algo = Saliency(net) if method == "saliency" else IntegratedGradients(net)
    maps = []
    for i in range(0, len(phrases), batch_size):
        x = torch.from_numpy(np.ascontiguousarray(phrases[i : i + batch_size], dtype=np.float32)).unsqueeze(1)
        x = x.to(classifier.device).requires_grad_(True)
        if method == "saliency":
            grad = algo.attribute(x, target=target, abs=False)
            attr = grad.clamp(min=0) * x  # positive gradients × input
        else:
            attr = algo.attribute(x, baselines=torch.zeros_like(x), target=target, n_steps=32).clamp(min=0)
        maps.append(attr.detach()[:, 0].cpu().numpy())
    out = np.concatenate(maps) if maps else np.zeros((0,) + phrases.shape[1:], dtype=np.float32)
    peak = out.max(axis=(1, 2), keepdims=True)
    out = np.where(peak > 0, out / np.where(peak > 0, peak, 1), 0.0)  # instance normalisation
    out[out < threshold] = 0.0
    return out.astype(np.float32)
