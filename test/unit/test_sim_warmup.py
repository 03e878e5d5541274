"""sim_robot's warm-up: episodes count from `warmup_s` after the first command (a launched
demo's server ramps in after activating on its own; an episode overlapping it is not counted)."""
from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
import pytest


def _core(warmup_s: float) -> tuple[Any, list[dict[str, Any]]]:
    pytest.importorskip('rclpy')  # ros/params.py declares the node's parameters
    from rl_control.envs.sim_core import SimCore
    from rl_control.ros.params import SimParams

    results: list[dict[str, Any]] = []

    class Outputs:
        state = robot_mode = goal = lambda *a: None
        result = results.append

    p = dataclasses.replace(SimParams(), command_type='velocity', episode_s=0.2, seed=1,
                            warmup_s=warmup_s)
    core = SimCore(p, Outputs(), wall_clock=lambda: 0.0)
    core.start(epoch=0.0, mono0=0.0)
    return core, results


def _run(core: Any, seconds: float) -> None:
    end = core.arm.time + seconds
    while core.arm.time < end - 1e-9:
        core.advance(round((end - core.arm.time) / core.arm.dt))  # returns at an episode end


def test_episodes_before_the_warm_up_give_no_result_and_the_overlapped_one_restarts():
    core, results = _core(warmup_s=0.3)
    _run(core, 0.5)  # no server yet: episodes restart, nothing is counted
    assert results == [] and core.episode == 0
    first = core.arm.time
    core.command([0.0] * 7, first, 0.0)
    _run(core, 0.29)
    assert results == []  # an episode end inside the warm-up: restarted, not counted
    _run(core, 0.01 + 0.2 + 1e-3)
    assert len(results) == 1 and results[0]['episode'] == 0
    started = results[0]['sim_time'] - 0.2
    assert started == pytest.approx(first + 0.3, abs=2e-3)  # a whole episode after it


def test_without_a_warm_up_every_episode_counts_from_the_start():
    core, results = _core(warmup_s=0.0)
    t0 = core.arm.time
    _run(core, 0.4 + 1e-3)
    assert [r['episode'] for r in results] == [0, 1]
    assert np.isclose(results[0]['sim_time'], t0 + 0.2)
