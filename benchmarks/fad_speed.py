"""How fast is ``audiogenre.fad.fad`` compared with the usual scipy ``sqrtm`` way of computing FAD?

Two sets of ``--n`` random embedding frames of ``--dim`` dimensions (10,000 x 768 float32 by
default, the size of a wav2vec2/MERT evaluation set) with a realistic, correlated and
anisotropic covariance: standard normal frames times a fixed random mixing matrix whose
singular values decay, the test set with a small mean shift and a different mixing matrix.
Each way is timed end to end from the float32 frames to the number (statistics included),
best of ``--repeat`` runs:

* ``baseline``  the google-research FAD / gudgud96 ``frechet_audio_distance`` / pytorch-fid
                way: ``np.mean`` and ``np.cov(rowvar=False)``, then
                ``scipy.linalg.sqrtm(sigma1 @ sigma2)`` of the non-symmetric product (retried
                with 1e-6 added to both diagonals if it is not finite), real part, trace.
* ``fad``       ``audiogenre.fad.fad``: float64 centred ``Xᵀ X`` covariances, Σ1^½ by ``eigh``,
                eigenvalues of the symmetric Σ1^½ Σ2 Σ1^½ by ``eigvalsh``.

Also shown: the split of ``fad`` into statistics and distance, the two values and their
absolute difference (they should agree to about 1e-6 relative on well-conditioned data; the
baseline's size of the imaginary part it drops is printed too), the ratio of the times, and
PASS/FAIL against the 2 s target. Set ``OMP_NUM_THREADS`` to choose the BLAS threads.

Run from the repo root:  python benchmarks/fad_speed.py [--n 10000] [--dim 768] [--repeat 3]
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np
import scipy
import scipy.linalg

from audiogenre.fad import embedding_stats, fad, frechet_distance

TARGET_S = 2.0


def make_sets(n: int, dim: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Two (n, dim) float32 sets with correlated covariances M1ᵀM1 and M2ᵀM2 (decaying spectra)."""
    rng = np.random.default_rng(seed)
    decay = (1.0 + np.arange(dim)) ** -0.5  # singular values 1, 0.71, 0.58, ... like real embeddings

    def mixing() -> np.ndarray:
        q1, _ = np.linalg.qr(rng.standard_normal((dim, dim)))
        q2, _ = np.linalg.qr(rng.standard_normal((dim, dim)))
        return (q1 * decay) @ q2

    m1 = mixing()
    m2 = 0.8 * m1 + 0.2 * mixing()  # related but not equal covariances, as for two genres
    a = (rng.standard_normal((n, dim)) @ m1).astype(np.float32)
    b = (rng.standard_normal((n, dim)) @ m2 + 0.02 * rng.standard_normal(dim)).astype(np.float32)
    return a, b


def baseline_fad(a: np.ndarray, b: np.ndarray) -> tuple[float, float]:
    """(FAD, largest |imaginary part| dropped from sqrtm) the np.cov + scipy sqrtm way."""
    mu1, mu2 = np.mean(a, axis=0), np.mean(b, axis=0)
    sigma1, sigma2 = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    covmean = scipy.linalg.sqrtm(sigma1 @ sigma2)
    if not np.isfinite(covmean).all():
        offset = np.eye(sigma1.shape[0]) * 1e-6
        covmean = scipy.linalg.sqrtm((sigma1 + offset) @ (sigma2 + offset))
    imag = float(np.abs(np.imag(covmean)).max()) if np.iscomplexobj(covmean) else 0.0
    covmean = np.real(covmean)
    diff = mu1.astype(np.float64) - mu2
    return float(diff @ diff + np.trace(sigma1) + np.trace(sigma2) - 2 * np.trace(covmean)), imag


def best_of(repeat: int, fn):
    times, out = [], None
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return min(times), out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=10_000, help="frames per set (10000)")
    ap.add_argument("--dim", type=int, default=768, help="embedding dimensions (768)")
    ap.add_argument("--repeat", type=int, default=3, help="runs per way; the best is reported (3)")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()

    a, b = make_sets(args.n, args.dim, args.seed)
    print(f"two sets of {args.n} x {args.dim} float32 frames; numpy {np.__version__}, scipy {scipy.__version__}, "
          f"OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset')}; best of {args.repeat} runs\n")

    t_base, (v_base, imag) = best_of(args.repeat, lambda: baseline_fad(a, b))
    t_ours, res = best_of(args.repeat, lambda: fad(a, b))
    t_stats, (s1, s2) = best_of(args.repeat, lambda: (embedding_stats(a), embedding_stats(b)))
    t_dist, _ = best_of(args.repeat, lambda: frechet_distance(*s1, *s2))

    print(f"{'way':<44}{'seconds':>9}{'FAD':>16}")
    print(f"{'baseline (np.cov + scipy sqrtm, real part)':<44}{t_base:>9.3f}{v_base:>16.6f}")
    print(f"{'audiogenre.fad.fad':<44}{t_ours:>9.3f}{res.value:>16.6f}")
    print(f"{'  of which statistics (both sets)':<44}{t_stats:>9.3f}")
    print(f"{'  of which frechet_distance':<44}{t_dist:>9.3f}")

    diff = abs(res.value - v_base)
    print(f"\n|fad - baseline| = {diff:.3g} ({diff / abs(v_base):.2g} relative); "
          f"largest imaginary part the baseline dropped: {imag:.3g}")
    print(f"speedup: fad is {t_base / t_ours:.1f}x faster than the baseline ({t_ours:.3f} s vs {t_base:.3f} s)")
    verdict = "PASS" if t_ours < TARGET_S else "FAIL"
    print(f"{verdict}: {t_ours:.3f} s against the {TARGET_S:.0f} s target ({TARGET_S / t_ours:.1f}x under it)"
          if t_ours < TARGET_S else f"{verdict}: {t_ours:.3f} s is over the {TARGET_S:.0f} s target")


if __name__ == "__main__":
    main()
