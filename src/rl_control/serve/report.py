"""What a `ServingLoop` reports: the log summary, `~/status` and the /diagnostics values.

A mixin of `ServingLoop` (loop.py), so the loop itself reads as inputs -> tick -> outputs.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from rl_control.serve import goals, safety


class LoopReport:
    """Reporting methods of `ServingLoop`."""

    def take_rate(self, wall: float) -> float:
        """Policy ticks per second (steady clock) since the last call."""
        n0, w0 = self._rate_window
        self._rate_window = (self.ticks, wall)
        return float('nan') if w0 is None else (self.ticks - n0) / max(wall - w0, 1e-9)

    def summary(self) -> str:
        """One line for the log: what is served how."""
        s = self.settings
        return (f'{self.spec.get("algorithm")} policy on the {self.profile.name} profile, '
                f'{s.command_type} commands for {self.cmd_joints} at {1 / self.tick_s:g} Hz '
                f'(trigger {s.trigger}), lead {self.shaper_cfg.lead_s * 1e3:g} ms, goals in '
                f'{self.base_frame}')

    def goal_status(self) -> dict[str, Any]:
        """~/status: the goal, moving | reached | holding | refused, and the distance to it."""
        g = self.goals.goal
        out: dict[str, Any] = {'goal': None if g is None else [float(v) for v in g],
                               'state': 'holding', 'distance': None, 'reason': self.reason}
        if g is None:
            if self.goals.reason != goals.NO_GOAL:
                out['state'], out['reason'] = 'refused', self.goals.last_refused
            return out
        obj = self.task_io.object
        if self.task.achieved_term == 'object_pose' and obj is not None:
            if obj.pose is not None:  # pick and place: the object is what reaches the goal
                out['distance'] = d = float(np.linalg.norm(obj.pose[:3] - g))
                out['state'] = ('reached' if d <= self.success_distance else
                                'moving' if self.reason == safety.OK else 'holding')
        elif self.cache.received and not np.isinf(self.cache.arrival).any():
            q = self.profile.home.copy()
            q[self.profile_idx] = self.cache.q
            d = float(np.linalg.norm(self.task.achieved(self.profile, q) - g))
            out['distance'] = d
            if d <= self.success_distance:
                out['state'] = 'reached'
            elif self.reason == safety.OK:
                out['state'] = 'moving'
        return out

    def values(self, now: float) -> dict[str, Any]:
        """Counters and settings for /diagnostics."""
        c, g, sc = self.safety.counts, self.goals.counts, self.cache.counts
        return {
            'last_reason': self.reason, 'estop': self.safety.estopped,
            'robot': self.profile.name, 'command_type': self.settings.command_type,
            'target_rate_hz': 1.0 / self.tick_s, 'trigger': self.settings.trigger,
            'state_age_ms': self.cache.age(now) * 1e3, 'commands_ok': c[safety.OK],
            'clamped': c['clamped'], 'dropped_state': sum(sc.values()),
            'state_error': self.cache.last_error or '',
            'goal_refused': g[goals.BAD_GOAL] + g[goals.GOAL_OUTSIDE],
            'goal_error': self.goals.last_refused or '',
            'bad_action': c[safety.BAD_ACTION], 'reanchors': self.reanchors,
            'late_withheld': self.withdrawn,
            'late_plans': self.shaper.late_plans, 'braking_s': self.last_braking_s,
            'lead_ms': self.shaper_cfg.lead_s * 1e3, 'clamp_scale': self.safety.clamp_scale,
            'warnings': ' | '.join(self.warnings), **self.robot.values(),
            **self.task_io.values(now),
        }
