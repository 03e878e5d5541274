"""The reach benchmark's episode measures and its fixed goal set (one definition everywhere).

A reach is done when the arm has ARRIVED AND STOPPED. The words used everywhere:
- *at rest*: the fastest arm joint below `REST_JOINT_SPEED` (0.02 rad/s) and the end effector
  below `REST_EE_SPEED` (5 mm/s);
- *held* (at distance d): within d of the goal and at rest at every control period of the
  episode's last `HOLD_S` (1 s);
- *time to settle*: the first moment after which the arm stays within the success distance and
  at rest until the end of the episode (None when it never does);
- *reached* (at d): within d at SOME control period, the secondary figure (a policy that
  reaches and then drifts still reached).

Samples are taken every control period from the true (noise-free) state; the end-effector speed
is the distance it travelled since the previous sample over the time between them, so every
engine (and the ROS sim, which samples the same way) measures it alike. The goals are a fixed,
versioned file (`config/reach_goals.yaml`, base frame), so every engine and every robot sees
the same 100.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import yaml

THRESHOLDS = {'1cm': 0.01, '2cm': 0.02, '5cm': 0.05}
REST_JOINT_SPEED = 0.02  # rad/s, the fastest arm joint
REST_EE_SPEED = 0.005  # m/s
HOLD_S = 1.0


def at_rest(joint_speed: Any, ee_speed: Any) -> Any:
    """The rest condition (vectorized): fastest joint and end-effector speed below the limits."""
    return (np.asarray(joint_speed) < REST_JOINT_SPEED) & (np.asarray(ee_speed) < REST_EE_SPEED)


def settle_index(ok: np.ndarray) -> int:
    """The first index from which every entry of `ok` is true (len(ok) when the last is false)."""
    bad = np.flatnonzero(~np.asarray(ok, bool))
    return int(bad[-1]) + 1 if bad.size else 0


class EpisodeTrace:
    """End-effector distance and arm speeds over one episode (one sample per control period)."""

    def __init__(self, goal: np.ndarray, success_distance: float = 0.02,
                 start_ee: np.ndarray | None = None) -> None:
        self.goal = np.asarray(goal, np.float64)
        self.success_distance = float(success_distance)
        self.times: list[float] = []
        self.distances: list[float] = []
        self.joint_speeds: list[float] = []
        self.ee_speeds: list[float] = []
        self.positions: list[np.ndarray] = []
        self._start = None if start_ee is None else np.asarray(start_ee, np.float64)
        self._last, self._last_t = self._start, 0.0

    def add(self, t: float, ee: np.ndarray, qd: np.ndarray | None = None) -> None:
        """One sample: time since the episode start [s], end effector [m], arm joint speeds.

        Without `qd` the joints count as still (the end-effector speed alone then decides).
        """
        ee = np.asarray(ee, np.float64)
        dt = float(t) - self._last_t
        step = 0.0 if self._last is None else float(np.linalg.norm(ee - self._last))
        self.ee_speeds.append(step / dt if dt > 0 else 0.0)
        self.joint_speeds.append(0.0 if qd is None else float(np.max(np.abs(qd))))
        self._last, self._last_t = ee, float(t)
        if self._start is None:
            self._start = ee
        self.positions.append(ee)
        self.times.append(float(t))
        self.distances.append(float(np.linalg.norm(ee - self.goal)))

    def result(self) -> dict[str, Any]:
        """Held and reached at 1/2/5 cm and at `success_distance`, plus how the arm got there."""
        if not self.distances:
            return {'success': False, 'held': False, 'reached': False, 'samples': 0,
                    'goal': self.goal.tolist()}
        t, d = np.asarray(self.times), np.asarray(self.distances)
        js, es = np.asarray(self.joint_speeds), np.asarray(self.ee_speeds)
        rest = at_rest(js, es)
        last = t >= t[-1] - HOLD_S + 1e-6  # the control periods of the last second
        pos = np.asarray(self.positions)
        steps = np.linalg.norm(np.diff(np.vstack([self._start, pos]), axis=0), axis=1)
        out: dict[str, Any] = {}
        for name, thr in {**THRESHOLDS, '': self.success_distance}.items():
            key = f'_{name}' if name else ''
            out['reached' + key] = bool(d.min() <= thr)
            out['held' + key] = bool(np.all(((d <= thr) & rest)[last]))
        within = np.flatnonzero(d <= self.success_distance)
        settle = settle_index((d <= self.success_distance) & rest)
        straight = float(np.linalg.norm(self.goal - self._start))
        out.update({
            'success': out['held'], 'success_distance': self.success_distance,
            'time_to_goal_s': float(t[within[0]]) if within.size else None,
            'settle_time_s': float(t[settle]) if settle < len(t) else None,
            'final_distance': float(d[-1]), 'min_distance': float(d.min()),
            'last_second_distance_mean': float(d[last].mean()),
            'last_second_distance_max': float(d[last].max()),
            'last_second_path': float(steps[last].sum()),
            'final_joint_speed': float(js[-1]),
            'path_length': float(steps.sum()),
            'path_ratio': float(steps.sum() / straight) if straight > 1e-9 else None,
            'goal': self.goal.tolist(), 'samples': len(d),
            'distances': [round(float(v), 5) for v in d],
            'joint_speeds': [round(float(v), 5) for v in js],
        })
        return out


# summary key -> (episode key, statistics); None values (never settled) count as infinite.
_STATS = {
    'time_to_goal_s': ('time_to_goal_s', ('median', 'max')),
    'settle_time_s': ('settle_time_s', ('median', 'max')),
    'final_distance': ('final_distance', ('median', 'max')),
    'last_second_distance_mean': ('last_second_distance_mean', ('median', 'max')),
    'last_second_distance_max': ('last_second_distance_max', ('median', 'max')),
    'last_second_path': ('last_second_path', ('median', 'max')),
    'final_joint_speed': ('final_joint_speed', ('median', 'max')),
    'path_length': ('path_length', ('median',)),
    'path_ratio': ('path_ratio', ('median', 'max')),
}


def _stat(values: list[Any], how: str) -> float | None:
    x = np.asarray([np.inf if v is None else v for v in values], np.float64)
    if not x.size:
        return None
    v = float(np.median(x) if how == 'median' else np.max(x))
    return v if np.isfinite(v) else None


def summarize(results: list[dict[str, Any]]) -> dict[str, Any]:
    """Fractions in [0, 1] over episodes (held first), and median / worst of every measure.

    The time to goal is taken over the episodes that reached; every other measure over all
    episodes, an episode that never settled counting as infinitely slow (so a median of None
    means more than half never settled).
    """
    n = len(results)
    out: dict[str, Any] = {'episodes': n}
    keys = ['success', *(f'held_{k}' for k in THRESHOLDS), 'held',
            *(f'reached_{k}' for k in THRESHOLDS), 'reached']
    for key in keys:
        out[key] = sum(bool(r.get(key)) for r in results) / n if n else float('nan')
    for name, (key, stats) in _STATS.items():
        vals = [r.get(key) for r in results if 'samples' in r]
        if key == 'time_to_goal_s':
            vals = [v for v in vals if v is not None]
        for how in stats:
            out[f'{name}_{how}'] = _stat(vals, how)
    out['unsettled'] = sum(1 for r in results if r.get('settle_time_s') is None)
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


def _mm(v: float | None) -> str:
    return 'n/a' if v is None else f'{1000 * v:.1f}'


def _s(v: float | None) -> str:
    return 'never' if v is None else f'{v:.2f}'


def report_lines(s: dict[str, Any]) -> list[str]:
    """A person's reading of a `summarize` result: held first, then how the arm got there."""
    return [
        f"held (within and at rest over the last {HOLD_S:g} s): 1 cm {s['held_1cm']:.2f}, "
        f"2 cm {s['held_2cm']:.2f}, 5 cm {s['held_5cm']:.2f}; reached at some moment: 1 cm "
        f"{s['reached_1cm']:.2f}, 2 cm {s['reached_2cm']:.2f}, 5 cm {s['reached_5cm']:.2f}",
        f"time to settle median {_s(s['settle_time_s_median'])} s (worst "
        f"{_s(s['settle_time_s_max'])}, {s['unsettled']} never); final distance median "
        f"{_mm(s['final_distance_median'])} mm (max {_mm(s['final_distance_max'])}); last "
        f"second: mean distance {_mm(s['last_second_distance_mean_median'])} mm, path "
        f"{_mm(s['last_second_path_median'])} mm (medians)",
        f"path ratio median {s['path_ratio_median'] or float('nan'):.2f}; fastest joint at the "
        f"end median {s['final_joint_speed_median'] or 0.0:.4f} rad/s (max "
        f"{s['final_joint_speed_max'] or 0.0:.4f}); reflexes {s['reflexes']}/{s['episodes']}",
    ]
