"""The reach benchmark's episode measures and its fixed goal set (one definition everywhere).

Every project reports reach success its own way (skrl's real Franka counts 7.5 cm), so nobody
can compare. Here: an episode is a success at distance d when the end effector comes within d
of the goal at SOME moment of the episode (a policy that reaches and then drifts still reached),
measured on every control period; reported at 1, 2 and 5 cm with the time to goal, the final
distance and the end effector's path length. The goals are a fixed, versioned file
(`config/reach_goals.yaml`, base frame), so every engine and every robot sees the same 100.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import yaml

THRESHOLDS = {'success_1cm': 0.01, 'success_2cm': 0.02, 'success_5cm': 0.05}


class EpisodeTrace:
    """End-effector distance to the goal over one episode (one sample per control period)."""

    def __init__(self, goal: np.ndarray, success_distance: float = 0.02) -> None:
        self.goal = np.asarray(goal, np.float64)
        self.success_distance = float(success_distance)
        self.times: list[float] = []
        self.distances: list[float] = []
        self.path = 0.0
        self._last: np.ndarray | None = None

    def add(self, t: float, ee: np.ndarray) -> None:
        """One sample: time since the episode start [s] and the end-effector position [m]."""
        ee = np.asarray(ee, np.float64)
        if self._last is not None:
            self.path += float(np.linalg.norm(ee - self._last))
        self._last = ee
        self.times.append(float(t))
        self.distances.append(float(np.linalg.norm(ee - self.goal)))

    def result(self) -> dict[str, Any]:
        """Success at 1/2/5 cm and at `success_distance`, time to goal, final distance, path."""
        d = np.asarray(self.distances) if self.distances else np.array([np.inf])
        out: dict[str, Any] = {k: bool(d.min() <= v) for k, v in THRESHOLDS.items()}
        within = np.flatnonzero(d <= self.success_distance)
        out.update({
            'success': bool(within.size), 'success_distance': self.success_distance,
            'time_to_goal_s': float(self.times[within[0]]) if within.size else None,
            'final_distance': float(d[-1]), 'min_distance': float(d.min()),
            'path_length': self.path, 'goal': self.goal.tolist(), 'samples': len(self.distances),
        })
        return out


def summarize(results: list[dict[str, Any]]) -> dict[str, Any]:
    """Fractions in [0, 1] over episodes, time to goal and distances (median, worst)."""
    n = len(results)
    out: dict[str, Any] = {'episodes': n}
    for key in (*THRESHOLDS, 'success'):
        out[key] = sum(bool(r.get(key)) for r in results) / n if n else float('nan')
    times = [r['time_to_goal_s'] for r in results if r.get('time_to_goal_s') is not None]
    final = [r['final_distance'] for r in results]
    out['time_to_goal_s_median'] = float(np.median(times)) if times else None
    out['time_to_goal_s_max'] = float(np.max(times)) if times else None
    out['final_distance_median'] = float(np.median(final)) if final else None
    out['final_distance_max'] = float(np.max(final)) if final else None
    out['path_length_median'] = float(np.median([r['path_length'] for r in results])) \
        if results else None
    out['reflexes'] = sum(1 for r in results if r.get('reflex'))
    return out


def load_goals(path: str | Path) -> np.ndarray:
    """The goal set of a goals file: (N, 3) positions in the robot base frame."""
    path = Path(path)
    data = yaml.safe_load(path.read_text())
    if not isinstance(data, dict) or 'goals' not in data:
        raise ValueError(f'{path}: expected a mapping with `goals: [[x, y, z], ...]`')
    goals = np.asarray(data['goals'], np.float64)
    if goals.ndim != 2 or goals.shape[1] != 3 or not np.all(np.isfinite(goals)):
        raise ValueError(f'{path}: goals must be a list of [x, y, z], got shape {goals.shape}')
    return goals
