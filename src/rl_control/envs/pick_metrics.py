"""The pick-and-place episode measures: grasped, lifted, dropped, held (one definition everywhere).

The words, in the reach task's sense (envs/reach_metrics.py) where they overlap:
- *grasped*: both finger pads touch the cube and the hand's width lies between the cube's size
  (less `GRASP_WIDTH_TOL`) and its diagonal (plus it): the cube is between the pads. The hand
  cannot turn to the cube's yaw (contract/cartesian.py), so a cube turned by psi is first held
  at its edges, at size * (cos psi + sin psi), until the squeeze turns it square; an open hand
  (8 cm) can touch it with one pad only;
- *lifted*: grasped with the cube's bottom more than `LIFT_Z` above the table;
- *dropped*: the cube left the hand while more than `DROP_Z` above the table (lost in the air,
  not put down), or fell off the table; an episode with a drop has failed, whatever happens
  after it (reported as `dropped`);
- *at rest*: the arm as in reach (fastest joint below 0.02 rad/s, end effector below 5 mm/s)
  and the cube below `REST_CUBE_SPEED` (5 mm/s);
- *held* (success): the cube within the success distance of the goal and everything at rest
  at every control period of the episode's last `HOLD_S` (1 s), and no drop;
- *placed at some moment*: within the distance at some period (the secondary figure).
Samples are one per control period from the true (noise-free) state, as in reach; each sample
also says whether the hand's external force or joint torques crossed the robot's collision
thresholds (robots/contact.py), so contact reflexes are counted as motion reflexes are.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from rl_control.envs.reach_metrics import HOLD_S, at_rest

CUBE_HALF = 0.02
"""Half the cube's size [m] (robots/assets/pick_place_cell.xml)."""
TABLE_TOP_Z = 0.0
"""The table top in the base frame (panda-gym: the robot stands on the table)."""
REST_CUBE_SPEED = 0.005
LIFT_Z = 0.01
DROP_Z = 0.02
GRASP_WIDTH_TOL = 0.005
OFF_TABLE_Z = TABLE_TOP_Z - 0.05


def grasped(pads: tuple[bool, bool], width: float, cube_size: float = 2 * CUBE_HALF) -> bool:
    """Both pads on the cube, the hand closed to between its size and diagonal (module doc)."""
    return bool(pads[0] and pads[1] and cube_size - GRASP_WIDTH_TOL <= width
                <= np.sqrt(2.0) * cube_size + GRASP_WIDTH_TOL)


class PickTrace:
    """One pick-and-place episode, sampled every control period."""

    def __init__(self, goal: np.ndarray, success_distance: float = 0.05,
                 start_ee: np.ndarray | None = None) -> None:
        self.goal = np.asarray(goal, np.float64)
        self.success_distance = float(success_distance)
        self.rows: list[tuple[float, ...]] = []
        self._last_ee = None if start_ee is None else np.asarray(start_ee, np.float64)
        self._last_t = 0.0
        self._was_lifted = False
        self.drop_time: float | None = None
        self.first_grasp: float | None = None
        self.contact_reflexes = 0

    def add(self, t: float, cube: np.ndarray, cube_speed: float, ee: np.ndarray,
            qd: np.ndarray, is_grasped: bool, contact_reflex: bool = False) -> None:
        """One sample: time [s], cube position and speed, end effector, arm joint speeds."""
        cube, ee = np.asarray(cube, np.float64), np.asarray(ee, np.float64)
        dt = float(t) - self._last_t
        ee_speed = 0.0 if self._last_ee is None or dt <= 0 else float(
            np.linalg.norm(ee - self._last_ee)) / dt
        self._last_ee, self._last_t = ee, float(t)
        bottom = float(cube[2]) - CUBE_HALF - TABLE_TOP_Z
        lifted = is_grasped and bottom > LIFT_Z
        if is_grasped and self.first_grasp is None:
            self.first_grasp = float(t)
        if self.drop_time is None and ((self._was_lifted and not is_grasped and bottom > DROP_Z)
                                       or cube[2] < OFF_TABLE_Z):
            self.drop_time = float(t)
        self._was_lifted = lifted or (self._was_lifted and not is_grasped and bottom > DROP_Z)
        self.contact_reflexes += bool(contact_reflex)
        d = float(np.linalg.norm(cube - self.goal))
        self.rows.append((float(t), d, float(np.max(np.abs(qd))), ee_speed, float(cube_speed),
                          float(is_grasped), float(lifted)))

    def result(self) -> dict[str, Any]:
        """Held (success), placed at some moment, grasped, lifted, dropped, times, distances."""
        if not self.rows:
            return {'success': False, 'held': False, 'samples': 0, 'goal': self.goal.tolist()}
        a = np.asarray(self.rows)
        t, d, js, es, cs, gr, li = a.T
        rest = at_rest(js, es) & (cs < REST_CUBE_SPEED)
        last = t >= t[-1] - HOLD_S + 1e-6
        inside = d <= self.success_distance
        dropped = self.drop_time is not None
        held = bool(np.all((inside & rest)[last])) and not dropped
        ok = inside & rest
        bad = np.flatnonzero(~ok)
        settle = int(bad[-1]) + 1 if bad.size else 0
        return {
            'success': held, 'held': held, 'placed': bool(inside.any()),
            'grasped': bool(gr.any()), 'lifted': bool(li.any()), 'dropped': dropped,
            'drop_time_s': self.drop_time, 'grasp_time_s': self.first_grasp,
            'settle_time_s': float(t[settle]) if settle < len(t) else None,
            'final_distance': float(d[-1]), 'min_distance': float(d.min()),
            'final_joint_speed': float(js[-1]), 'final_cube_speed': float(cs[-1]),
            'contact_reflexes': self.contact_reflexes,
            'success_distance': self.success_distance, 'goal': self.goal.tolist(),
            'samples': len(t), 'distances': [round(float(v), 5) for v in d],
        }


def summarize(results: list[dict[str, Any]]) -> dict[str, Any]:
    """Fractions over episodes (held first), medians of times and distances, the worst distance."""
    n = len(results)
    out: dict[str, Any] = {'episodes': n}
    for key in ('success', 'held', 'placed', 'grasped', 'lifted', 'dropped'):
        out[key] = sum(bool(r.get(key)) for r in results) / n if n else float('nan')
    for key in ('final_distance', 'settle_time_s', 'grasp_time_s'):
        vals = [np.inf if r.get(key) is None else r[key] for r in results if 'samples' in r]
        med = float(np.median(vals)) if vals else float('nan')
        out[f'{key}_median'] = med if np.isfinite(med) else None
    finals = [r['final_distance'] for r in results if 'final_distance' in r]
    out['final_distance_max'] = float(max(finals)) if finals else None
    out['contact_reflexes'] = sum(1 for r in results if r.get('contact_reflexes'))
    out['reflexes'] = sum(1 for r in results if r.get('reflex'))
    return out


def report_lines(s: dict[str, Any]) -> list[str]:
    """A person's reading of a `summarize` result."""
    def f(v: float | None, unit: str = '', k: float = 1.0) -> str:
        return 'n/a' if v is None else f'{k * v:.2f}{unit}'
    return [
        f"held (cube within {s.get('success_distance', 0.05) * 100:g} cm, cube and arm at "
        f"rest over the last {HOLD_S:g} s, no drop): {s['success']:.2f}; placed at some "
        f"moment {s['placed']:.2f}; grasped {s['grasped']:.2f}, lifted {s['lifted']:.2f}, "
        f"dropped {s['dropped']:.2f}",
        f"final distance median {f(s['final_distance_median'], ' mm', 1000)}, max "
        f"{f(s.get('final_distance_max'), ' mm', 1000)}; time to grasp "
        f"median {f(s['grasp_time_s_median'], ' s')}; time to place (settled to the end) median "
        f"{f(s['settle_time_s_median'], ' s')}; reflexes {s['reflexes']}/{s['episodes']} "
        f"(contact {s['contact_reflexes']})",
    ]
