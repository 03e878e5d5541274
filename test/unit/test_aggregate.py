"""IQM and its stratified-bootstrap CI (train/aggregate.py) against hand-computed values."""
import itertools

import numpy as np
import pytest

from rl_control.train.aggregate import (
    holm,
    iqm,
    iqm_ratio_ci,
    mann_whitney,
    stratified_bootstrap_ci,
    summarize,
)


@pytest.mark.parametrize('scores, expected', [
    ([1, 2, 3, 4, 5, 6, 7, 8], 4.5),      # drop 2 each end: mean(3, 4, 5, 6)
    ([0, 1, 2, 3, 100], 2.0),             # n=5: floor(1.25) = 1 each end: mean(1, 2, 3)
    ([5.0, -1.0, 3.0], 7 / 3),            # n=3: floor(0.75) = 0: the plain mean
    ([[1, 10], [2, 20], [3, 30], [4, 40]], 9.25),  # runs x tasks, all 8: mean(3, 4, 10, 20)
])
def test_iqm_hand_computed(scores, expected):
    assert iqm(np.array(scores)) == pytest.approx(expected)


def test_iqm_is_scipys_trim_mean_as_rliable_calls_it():
    scipy_stats = pytest.importorskip('scipy.stats')
    rng = np.random.default_rng(3)
    for n in (1, 2, 4, 5, 7, 10, 33):
        x = rng.normal(size=n)
        assert iqm(x) == pytest.approx(scipy_stats.trim_mean(x, 0.25, axis=None))


def test_ci_of_two_runs_is_the_exact_bootstrap_distribution():
    # Resamples of [0, 1]: (0,0) 1/4, (0,1)/(1,0) 1/2, (1,1) 1/4 -> IQM (n=2: the mean) is
    # 0 w.p. 1/4, 0.5 w.p. 1/2, 1 w.p. 1/4: the 2.5th percentile is 0, the 97.5th is 1.
    assert stratified_bootstrap_ci(np.array([0.0, 1.0])) == (0.0, 1.0)


def test_constant_scores_give_a_point_interval():
    assert stratified_bootstrap_ci(np.full(5, -150.0)) == (-150.0, -150.0)


def test_resampling_is_stratified_by_task():
    # Tasks (columns) {0, 1} and {10, 11}: every stratified resample keeps two runs per task,
    # so the mean of 4 scores is 5 + k/4 with k ~ Binomial(4, 1/2): in [5, 6], P(5) = 1/16 >
    # 2.5 %, hence exactly [5, 6]. Unstratified resampling could reach 0 or 11.
    scores = np.array([[0.0, 10.0], [1.0, 11.0]])
    low, high = stratified_bootstrap_ci(scores, statistic=lambda s: float(np.mean(s)))
    assert (low, high) == (5.0, 6.0)


def test_bootstrap_matches_exhaustive_enumeration():
    # All 5^5 equally likely resamples of 5 runs, enumerated: the CI from 50,000 random
    # resamples must land within a small tolerance of the exact percentiles.
    x = np.array([-900.0, -300.0, -180.0, -160.0, -150.0])
    exact = np.array([iqm(x[list(idx)]) for idx in itertools.product(range(5), repeat=5)])
    lo, hi = np.percentile(exact, [2.5, 97.5])
    low, high = stratified_bootstrap_ci(x)
    spread = exact.max() - exact.min()
    assert abs(low - lo) < 0.02 * spread and abs(high - hi) < 0.02 * spread


def test_summarize_and_seed_reproducibility():
    x = np.array([1.0, 2.0, 3.0, 4.0, 5.0])
    s = summarize(x)
    assert s['iqm'] == 3.0 and s['n'] == 5
    assert s['ci95'][0] < 3.0 < s['ci95'][1]
    assert summarize(x)['ci95'] == s['ci95']  # seeded: the same interval every time


def test_mann_whitney_exact_p_by_hand():
    # a above every b (n = m = 3): U = 9, P(U = 9) = 1 / C(6, 3) = 1/20, two-sided p = 0.1.
    r = mann_whitney(np.array([4.0, 5.0, 6.0]), np.array([1.0, 2.0, 3.0]))
    assert r['u'] == 9 and r['p'] == pytest.approx(0.1) and r['prob_a_better'] == 1.0
    # a = (1, 4, 5), b = (2, 3, 6): U = 4 of 9; the null is symmetric around 4.5, so
    # P(U <= 4) = 10/20 and p = min(1, 2 * 1/2) = 1.
    assert mann_whitney(np.array([1.0, 4.0, 5.0]), np.array([2.0, 3.0, 6.0]))['p'] == 1.0


def test_mann_whitney_is_scipys():
    scipy_stats = pytest.importorskip('scipy.stats')
    rng = np.random.default_rng(5)
    for n, m in [(8, 8), (3, 7), (1, 4), (10, 9)]:
        a, b = rng.normal(size=n), rng.normal(0.7, size=m)
        ours, theirs = mann_whitney(a, b), scipy_stats.mannwhitneyu(a, b, method='exact')
        assert ours['u'] == theirs.statistic and ours['p'] == pytest.approx(theirs.pvalue,
                                                                            abs=1e-12)
        a, b = np.round(a), np.round(b)  # ties: the normal approximation, as scipy's
        theirs = scipy_stats.mannwhitneyu(a, b, method='asymptotic')
        assert mann_whitney(a, b)['p'] == pytest.approx(theirs.pvalue, abs=1e-9)


def test_iqm_ratio_ci_of_equal_and_scaled_samples():
    x = np.array([1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0])
    same = iqm_ratio_ci(x, x)
    assert same['ratio'] == 1.0 and same['ci95'][0] < 1.0 < same['ci95'][1]
    double = iqm_ratio_ci(2 * x, x, seed=3)
    assert double['ratio'] == 2.0 and double['ci95'][0] < 2.0 < double['ci95'][1]
    assert double['denominator_nonpositive'] == 0.0
    assert iqm_ratio_ci(x, x - 6.0)['denominator_nonpositive'] > 0.0


def test_holm_adjusts_step_down_and_keeps_the_order():
    # by hand, m = 4: 4 x 0.01 = 0.04, 3 x 0.03 = 0.09, max(0.09, 2 x 0.04), max(0.09, 1 x 0.5)
    p = [0.04, 0.01, 0.5, 0.03]
    np.testing.assert_allclose(holm(p), [0.09, 0.04, 0.5, 0.09])
    assert holm([0.3, 0.4])[1] == 0.6 and holm([0.6, 0.7])[0] == 1.0  # capped at 1
    assert holm([0.2])[0] == 0.2 and holm([]).size == 0
    # a smaller p never gets a larger adjusted value
    rng = np.random.default_rng(0)
    q = rng.uniform(0, 0.2, 20)
    adj = holm(q)
    assert np.all(np.diff(adj[np.argsort(q)]) >= 0) and np.all(adj >= q)
