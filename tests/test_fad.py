import itertools

import numpy as np
import pytest
import scipy.linalg

from audiogenre.fad import FADInfinity, FADResult, embedding_stats, fad, fad_infinity, frechet_distance, per_song_fad
from shared.errors import GenreError


def correlated(rng, n, d, scale=1.0, mean=0.0):
    """n frames from N(mean, MᵀM) for a fixed random mixing matrix M (correlated, anisotropic)."""
    mix = np.random.default_rng(1234 + d).standard_normal((d, d)) / np.sqrt(d) + np.eye(d)
    return rng.standard_normal((n, d)) @ (scale * mix) + mean


def scipy_fad(a, b):
    """Independent computation: np.cov and scipy.linalg.sqrtm of the non-symmetric product."""
    mu1, mu2 = a.mean(axis=0), b.mean(axis=0)
    s1, s2 = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    covmean = scipy.linalg.sqrtm(s1 @ s2)
    assert np.abs(np.imag(covmean)).max() < 1e-8  # well-conditioned data: sqrtm is reliable here
    return float(((mu1 - mu2) ** 2).sum() + np.trace(s1) + np.trace(s2) - 2 * np.trace(np.real(covmean)))


@pytest.fixture
def pair():
    rng = np.random.default_rng(0)
    return correlated(rng, 400, 16), correlated(rng, 300, 16, scale=1.7, mean=np.linspace(-1, 1, 16))


def test_matches_scipy_sqrtm_on_well_conditioned_data(pair):
    a, b = pair
    expected = scipy_fad(a, b)
    got = fad(a, b)
    assert got.value == pytest.approx(expected, rel=1e-6)
    assert expected > 1.0  # the sets differ: a real comparison, not 0 vs 0
    assert got == FADResult(got.value, 400, 300, 16)
    # and through the statistics-level API
    assert frechet_distance(*embedding_stats(a), *embedding_stats(b)) == pytest.approx(expected, rel=1e-6)


def test_stats_are_float64_with_ddof_1(pair):
    a = pair[0].astype(np.float32)
    mu, sigma = embedding_stats(a)
    assert mu.dtype == sigma.dtype == np.float64
    np.testing.assert_allclose(mu, a.astype(np.float64).mean(axis=0), rtol=1e-12)
    np.testing.assert_allclose(sigma, np.cov(a.astype(np.float64), rowvar=False), rtol=1e-10, atol=1e-12)
    assert not np.allclose(sigma, np.cov(a.astype(np.float64), rowvar=False, ddof=0), rtol=1e-4)
    np.testing.assert_array_equal(a, pair[0].astype(np.float32))  # input left untouched
    b = pair[1].copy()
    embedding_stats(b)
    fad(b, b)
    np.testing.assert_array_equal(b, pair[1])  # float64 input too (no in-place centring)
    ints = np.arange(24).reshape(6, 4) % 5
    np.testing.assert_allclose(embedding_stats(ints)[1], np.cov(ints, rowvar=False), rtol=1e-12)


def test_identical_sets_give_zero_never_negative(pair):
    for x in (pair[0], pair[1], np.random.default_rng(3).standard_normal((20, 64))):
        v = fad(x, x).value
        assert 0.0 <= v < 1e-8 * np.trace(np.cov(x, rowvar=False))
    # rounding alone makes about a third of these slightly negative before the final clip
    rng = np.random.default_rng(0)
    for _ in range(30):
        x = rng.standard_normal((40, 12)) @ rng.standard_normal((12, 12))
        assert 0.0 <= fad(x, x).value < 1e-10 * np.trace(np.cov(x, rowvar=False))


def test_symmetric_in_its_arguments(pair):
    a, b = pair
    assert fad(a, b).value == pytest.approx(fad(b, a).value, rel=1e-10)


def test_translation_adds_squared_norm(pair):
    a, b = pair
    v = np.random.default_rng(5).standard_normal(16) * 3
    assert fad(a, a + v).value == pytest.approx(float(v @ v), rel=1e-9)
    assert fad(a + v, b + v).value == pytest.approx(fad(a, b).value, rel=1e-9)
    # in general the mean term changes from ‖Δμ‖² to ‖Δμ + v‖²; the covariance terms stay put
    dmu = b.mean(axis=0) - a.mean(axis=0)
    added = float((dmu + v) @ (dmu + v) - dmu @ dmu)
    assert fad(a, b + v).value - fad(a, b).value == pytest.approx(added, rel=1e-9)


def test_rank_deficient_covariances_stay_real_and_non_negative():
    # n < dim: both covariances have rank 19 of 64, so Σ1 Σ2 is singular and scipy's sqrtm of
    # it comes back complex; the eigenvalue route still gives a finite real value ≥ 0.
    rng = np.random.default_rng(7)
    a, b = rng.standard_normal((20, 64)), rng.standard_normal((20, 64))
    mu1, s1 = embedding_stats(a)
    mu2, s2 = embedding_stats(b)
    assert np.linalg.matrix_rank(s1) == 19
    v = frechet_distance(mu1, s1, mu2, s2)
    assert isinstance(v, float) and np.isfinite(v) and v > 0
    assert v == pytest.approx(frechet_distance(mu2, s2, mu1, s1), rel=1e-9)
    # close to scipy's real part, which carries a spurious imaginary part
    assert v == pytest.approx(scipy_fad_loose(a, b), rel=1e-6)
    # a product that is exactly zero (orthogonal supports): W2² = Tr Σ1 + Tr Σ2
    s1, s2 = np.diag([1.0, 2.0, 0.0, 0.0]), np.diag([0.0, 0.0, 3.0, 4.0])
    assert frechet_distance(np.zeros(4), s1, np.zeros(4), s2) == pytest.approx(10.0, rel=1e-12)


def test_rank_deficient_exact_value_without_rounding_noise():
    # b = k·a: Σ2 = k²Σ1, μ2 = kμ1, so FAD = (k − 1)²(‖μ1‖² + Tr Σ1) exactly. Σ1 has rank 19 of
    # 64 here; if rounding-level eigenvalues were kept, each of the 45 null directions would add
    # √(eps·λ_max) to the trace term and the result would be off by ~1e-7 relative.
    a = np.random.default_rng(8).standard_normal((20, 64)) * np.linspace(0.1, 3.0, 64) + 0.2
    mu, sigma = embedding_stats(a)
    for k in (0.5, 2.0, 3.0):
        expected = (k - 1) ** 2 * (float(mu @ mu) + float(np.trace(sigma)))
        assert fad(a, k * a).value == pytest.approx(expected, rel=1e-11)
        assert fad(k * a, a).value == pytest.approx(expected, rel=1e-11)


def scipy_fad_loose(a, b):
    s1, s2 = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    tr = np.trace(scipy.linalg.sqrtm(s1 @ s2))
    return float(((a.mean(0) - b.mean(0)) ** 2).sum() + np.trace(s1) + np.trace(s2) - 2 * np.real(tr))


def test_known_closed_form():
    # commuting diagonal covariances: W2² = ‖Δμ‖² + Σ (√a_i − √b_i)²
    a, b = np.array([1.0, 4.0, 9.0]), np.array([4.0, 4.0, 1.0])
    mu1, mu2 = np.array([0.0, 1.0, 2.0]), np.array([1.0, 1.0, 0.0])
    expected = 5.0 + (1 - 2) ** 2 + 0 + (3 - 1) ** 2
    assert frechet_distance(mu1, np.diag(a), mu2, np.diag(b)) == pytest.approx(expected, rel=1e-12)


def test_fad_infinity_removes_small_sample_bias():
    rng = np.random.default_rng(11)
    ref = correlated(rng, 50_000, 16)
    test = correlated(rng, 2_000, 16)
    r = fad_infinity(ref, test, min_n=100, seed=3)
    assert isinstance(r, FADInfinity) and (r.n_reference, r.n_test) == (50_000, 2_000)
    assert len(r.ns) == len(r.fads) == 15 and r.ns[0] == 100 and r.ns[-1] == 2_000
    assert r.fads[-1] == pytest.approx(fad(ref, test).value, rel=1e-9)  # largest subset = the whole set
    assert r.fads[0] > 0.5 and r.slope > 0 and r.r2 > 0.9  # FAD at n=100 is pure bias
    assert abs(r.value) < 0.2 * r.fads[0]
    assert abs(r.value) < r.fads[-1]  # better than plain FAD even at the full n
    # same seed, same answer
    assert fad_infinity(ref, test, min_n=100, seed=3) == r

    shift = np.full(16, 0.5)  # ‖shift‖² = 4
    s = fad_infinity(ref, test + shift, min_n=100, seed=3)
    assert s.value == pytest.approx(4.0, abs=0.3)
    assert abs(s.value - 4.0) < abs(s.fads[0] - 4.0)


def test_fad_infinity_samples_without_replacement():
    # 5 distinct test frames, subsets of 3: each must be 3 distinct frames (10 possible subsets);
    # drawing with replacement would repeat a frame most of the time.
    rng = np.random.default_rng(9)
    ref, test = rng.standard_normal((200, 3)), rng.standard_normal((5, 3))
    subsets = [fad(ref, test[list(rows)]).value for rows in itertools.combinations(range(5), 3)]
    for seed in range(8):
        r = fad_infinity(ref, test, min_n=3, n_points=3, seed=seed)
        assert r.ns == (3, 4, 5)
        assert min(abs(r.fads[0] - v) for v in subsets) < 1e-9 * r.fads[0]


def test_fad_infinity_default_min_n_and_errors():
    rng = np.random.default_rng(2)
    ref, test = rng.standard_normal((500, 4)), rng.standard_normal((60, 4))
    r = fad_infinity(ref, test, n_points=5)
    assert r.ns[0] == 30 and r.ns[-1] == 60 and len(r.ns) == 5
    with pytest.raises(GenreError, match="min_n"):
        fad_infinity(ref, test, min_n=60)
    with pytest.raises(GenreError, match="n_points"):
        fad_infinity(ref, test, n_points=1)
    with pytest.raises(GenreError, match="3 different subset sizes"):
        fad_infinity(ref, test[:5], min_n=4)  # sizes 4 and 5 only: a line through two points fits anything
    with pytest.raises(GenreError, match="dimensions"):
        fad_infinity(ref, test[:, :3])


def test_per_song_fad():
    rng = np.random.default_rng(4)
    ref = correlated(rng, 5_000, 8)
    songs = {
        "in_style": correlated(rng, 300, 8),
        "shifted": correlated(rng, 300, 8, mean=1.0),
        "short": correlated(rng, 5, 8),
    }
    out = per_song_fad(ref, songs)
    assert list(out) == list(songs)
    assert all(np.isfinite(v) and v >= 0 for v in out.values())
    assert out["in_style"] < out["shifted"]
    mu, sigma = embedding_stats(ref)
    assert out["shifted"] == pytest.approx(frechet_distance(mu, sigma, *embedding_stats(songs["shifted"])), rel=1e-10)


@pytest.mark.parametrize(
    "bad, match",
    [
        (np.ones((1, 8)), "1 frame"),
        (np.where(np.eye(10, 8) > 0, np.nan, 0.0), "NaN"),
        (np.where(np.arange(80).reshape(10, 8) == 77, np.inf, 1.0), "infinite"),
        (np.where(np.arange(80).reshape(10, 8) == 77, 1e300, 1.0), "too large"),
        (np.ones(8), "2-D"),
    ],
)
def test_bad_embeddings_raise_genre_error(bad, match):
    rng = np.random.default_rng(0)
    ref = rng.standard_normal((50, 8))
    with pytest.raises(GenreError, match=match):
        embedding_stats(bad)
    with pytest.raises(GenreError, match=match):
        fad(ref, bad)
    with pytest.raises(GenreError, match=match):
        fad(bad, ref)
    with pytest.raises(GenreError, match=f"song 'bad'.*{match}"):
        per_song_fad(ref, {"good": ref, "bad": bad})
    if bad.ndim == 2 and len(bad) > 2:
        with pytest.raises(GenreError, match=match):
            fad_infinity(ref, bad, min_n=2)


def test_mismatched_or_invalid_statistics_raise_genre_error():
    with pytest.raises(GenreError, match="dimensions"):
        fad(np.ones((5, 3)), np.ones((5, 4)))
    with pytest.raises(GenreError, match="one size"):
        frechet_distance(np.zeros(3), np.eye(3), np.zeros(4), np.eye(4))
    with pytest.raises(GenreError, match="positive semi-definite"):
        frechet_distance(np.zeros(2), -np.eye(2), np.zeros(2), np.eye(2))
    with pytest.raises(GenreError, match="positive semi-definite"):
        frechet_distance(np.zeros(2), np.eye(2), np.zeros(2), -5 * np.eye(2))
