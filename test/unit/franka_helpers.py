"""Shared helpers for the test_franka_* tests (not a test module)."""
from __future__ import annotations

import numpy as np
import pytest

from rl_control.robots.franka_limits import K_LIMIT_EPS
from rl_control.robots.robot import RobotProfile


def ruckig_velocity_ramp(profile: RobotProfile, joint: int, target: float,
                         dt: float = 1e-3) -> list[np.ndarray]:
    """Ruckig (velocity interface) ramp of one joint from rest to `target`, one sample per dt.

    Limits are libfranka's own (nominal - kLimitEps), what a shaper should plan with.
    """
    ruckig = pytest.importorskip('ruckig')
    otg = ruckig.Ruckig(7, dt)
    inp, out = ruckig.InputParameter(7), ruckig.OutputParameter(7)
    inp.control_interface = ruckig.ControlInterface.Velocity
    inp.current_position = [0.0] * 7
    inp.current_velocity = [0.0] * 7
    inp.current_acceleration = [0.0] * 7
    v = np.zeros(7)
    v[joint] = target
    inp.target_velocity = v.tolist()
    inp.target_acceleration = [0.0] * 7
    inp.max_velocity = (profile.qd_max * 2).tolist()
    inp.max_acceleration = (profile.qdd_max - K_LIMIT_EPS).tolist()
    inp.max_jerk = (profile.qddd_max - K_LIMIT_EPS).tolist()
    samples = []
    while True:
        result = otg.update(inp, out)
        samples.append(np.array(out.new_velocity))
        out.pass_to_input(inp)
        if result != ruckig.Result.Working:
            return samples
