"""Aggregate scores over seeds the way rliable does: IQM with a stratified-bootstrap 95 % CI.

Reference: R. Agarwal, M. Schwarzer, P. S. Castro, A. Courville, M. G. Bellemare, "Deep
Reinforcement Learning at the Edge of the Statistical Precipice", NeurIPS 2021 (the `rliable`
library). Why IQM: the mean of the middle 50 % of runs is robust to one outlier seed (unlike the
mean) yet uses half the runs (unlike the median), so with 5 seeds it is both stable and
efficient; the bootstrap CI says how much the number would move with other seeds.

As rliable computes them (re-implemented in numpy; rliable itself pulls in arch and pandas):
- IQM = `scipy.stats.trim_mean(scores, 0.25, axis=None)`: sort all scores, drop
  floor(0.25 n) from each end, average the rest;
- the CI is the percentile interval (2.5th and 97.5th percentiles, numpy's linear
  interpolation) of the statistic over `reps` (rliable: 50,000) stratified bootstrap resamples:
  runs are resampled with replacement within each task (column), so every resample keeps the
  same number of runs per task.
"""
from __future__ import annotations

from collections.abc import Callable

import numpy as np

BOOTSTRAP_REPS = 50_000


def iqm(scores: np.ndarray) -> float:
    """Interquartile mean over all scores (runs x tasks, or a flat array of runs)."""
    flat = np.sort(np.asarray(scores, dtype=np.float64).ravel())
    if flat.size == 0:
        raise ValueError('iqm: no scores')
    cut = int(0.25 * flat.size)
    return float(np.mean(flat[cut:flat.size - cut]))


def _iqm_rows(samples: np.ndarray) -> np.ndarray:
    """IQM of each row of a (reps, n) array (vectorized `iqm`)."""
    n = samples.shape[1]
    cut = int(0.25 * n)
    return np.sort(samples, axis=1)[:, cut:n - cut].mean(axis=1)


def stratified_bootstrap_ci(scores: np.ndarray,
                            statistic: Callable[[np.ndarray], float] = iqm,
                            reps: int = BOOTSTRAP_REPS, size: float = 0.95,
                            seed: int = 0) -> tuple[float, float]:
    """Percentile CI of `statistic` over stratified bootstrap resamples of `scores`.

    `scores`: (runs,) or (runs, tasks); runs are resampled within each task. With the default
    statistic (IQM) the resamples are evaluated in one vectorized pass.
    """
    x = np.asarray(scores, dtype=np.float64)
    if x.ndim == 1:
        x = x[:, None]
    runs, tasks = x.shape
    if runs == 0:
        raise ValueError('stratified_bootstrap_ci: no scores')
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, runs, size=(reps, runs, tasks))
    samples = np.take_along_axis(np.broadcast_to(x, (reps, runs, tasks)), idx, axis=1)
    if statistic is iqm:
        stats = _iqm_rows(samples.reshape(reps, runs * tasks))
    else:
        stats = np.array([statistic(s) for s in samples])
    alpha = 1.0 - size
    low, high = np.percentile(stats, [100 * alpha / 2, 100 * (1 - alpha / 2)])
    return float(low), float(high)


def summarize(scores: np.ndarray, reps: int = BOOTSTRAP_REPS, seed: int = 0) -> dict[str, object]:
    """{'iqm', 'ci95': [low, high], 'n'} for one set of per-run scores."""
    x = np.asarray(scores, dtype=np.float64)
    low, high = stratified_bootstrap_ci(x, iqm, reps=reps, seed=seed)
    return {'iqm': iqm(x), 'ci95': [low, high], 'n': int(x.shape[0])}


def iqm_ratio_ci(a: np.ndarray, b: np.ndarray, reps: int = BOOTSTRAP_REPS, size: float = 0.95,
                 seed: int = 0) -> dict[str, object]:
    """IQM(a) / IQM(b) and its percentile bootstrap CI, a's and b's runs resampled apart.

    The two sets of runs are independent samples (two libraries, or two configs), so each is
    resampled with replacement on its own, as rliable stratifies by task. The ratio is only
    read as "a relative to b" when b's IQM is positive; `denominator_nonpositive` is the share
    of resamples where it was not (then the CI is not a ratio of two scores on one side of 0).
    """
    x, y = np.asarray(a, np.float64).ravel(), np.asarray(b, np.float64).ravel()
    if x.size == 0 or y.size == 0:
        raise ValueError('iqm_ratio_ci: no scores')
    rng = np.random.default_rng(seed)
    num = _iqm_rows(x[rng.integers(0, x.size, size=(reps, x.size))])
    den = _iqm_rows(y[rng.integers(0, y.size, size=(reps, y.size))])
    with np.errstate(divide='ignore', invalid='ignore'):
        ratios = num / den
    alpha = 1.0 - size
    low, high = np.nanpercentile(ratios, [100 * alpha / 2, 100 * (1 - alpha / 2)])
    return {'ratio': iqm(x) / iqm(y), 'ci95': [float(low), float(high)],
            'denominator_nonpositive': float(np.mean(den <= 0))}


def mann_whitney(a: np.ndarray, b: np.ndarray) -> dict[str, float]:
    """Two-sided Mann-Whitney U (Wilcoxon rank-sum) test of a against b, as scipy computes it.

    U = #{(i, j): a_i > b_j} + 1/2 #{a_i = b_j}. Without ties, the exact null distribution of U
    (every split of the pooled ranks equally likely; counted by the recursion
    N(n, m, u) = N(n - 1, m, u - m) + N(n, m - 1, u)), and p = min(1, 2 min(P(U <= u),
    P(U >= u))): `scipy.stats.mannwhitneyu(a, b, method='exact')`. With ties, the normal
    approximation with tie and continuity corrections (scipy's 'asymptotic'). Also returned:
    `prob_a_better` = U / (n m), the probability that a run of a beats a run of b (rliable's
    probability of improvement).
    """
    x, y = np.asarray(a, np.float64).ravel(), np.asarray(b, np.float64).ravel()
    n, m = x.size, y.size
    if n == 0 or m == 0:
        raise ValueError('mann_whitney: no scores')
    u = float((x[:, None] > y[None, :]).sum() + 0.5 * (x[:, None] == y[None, :]).sum())
    pooled = np.concatenate([x, y])
    _, counts = np.unique(pooled, return_counts=True)
    if np.all(counts == 1):
        dist = _u_distribution(n, m)
        cdf = np.cumsum(dist) / dist.sum()
        k = int(round(u))
        p_low, p_high = cdf[k], 1.0 - (cdf[k - 1] if k > 0 else 0.0)
        p = min(1.0, 2.0 * min(p_low, p_high))
    else:
        import math
        total = n + m
        sigma = math.sqrt(n * m / 12.0 * ((total + 1) - float((counts**3 - counts).sum())
                                          / (total * (total - 1))))
        z = (abs(u - n * m / 2.0) - 0.5) / sigma if sigma > 0 else 0.0
        p = min(1.0, math.erfc(max(z, 0.0) / math.sqrt(2.0)))
    return {'u': u, 'p': float(p), 'prob_a_better': u / (n * m)}


def holm(p_values: np.ndarray) -> np.ndarray:
    """Holm's step-down adjusted p-values (Holm 1979), as statsmodels' multipletests('holm').

    The k-th smallest of m is multiplied by (m - k + 1), made non-decreasing in that order and
    capped at 1; rejecting where the adjusted value is below alpha keeps the family-wise error
    rate at alpha.
    """
    p = np.asarray(p_values, np.float64).ravel()
    out, running = np.empty_like(p), 0.0
    for rank, i in enumerate(np.argsort(p, kind='stable')):
        running = max(running, min(1.0, (p.size - rank) * p[i]))
        out[i] = running
    return out


def _u_distribution(n: int, m: int) -> np.ndarray:
    """Counts of the n!m!/(n+m)!-scaled null distribution of U for sizes n, m (u = 0..n m)."""
    # table[i][j]: counts for sizes (i, j); exact integers (Python ints, no overflow).
    table = [[[1] for _ in range(m + 1)] for _ in range(n + 1)]
    for i in range(1, n + 1):
        for j in range(1, m + 1):
            out = [0] * (i * j + 1)
            for u, c in enumerate(table[i - 1][j]):  # the largest value is one of a: +j
                out[u + j] += c
            for u, c in enumerate(table[i][j - 1]):  # ... or one of b
                out[u] += c
            table[i][j] = out
    return np.array(table[n][m], dtype=np.float64)
