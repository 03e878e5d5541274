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
