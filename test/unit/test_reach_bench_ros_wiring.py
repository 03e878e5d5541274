"""bench-reach --engine ros wires the server to the controller sim_robot runs for the bundle.

The robot's parameter file (config/policy_server.yaml) names the trajectory controller's topic;
an effort bundle served with it published its torques where no controller listened (the arm
never moved). The nodes are not started here: their parameters are compared.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from rl_control.bundle.io import load_bundle_spec

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize('bundle,robot', [('panda_reach_effort_sac', 'panda'),
                                          ('panda_reach_sac', 'panda'),
                                          ('fr3_reach_sac', 'fr3')])
def test_the_server_commands_the_topic_sim_robot_listens_on(monkeypatch, bundle, robot):
    from rl_control.robots.command_interfaces import command_interface
    from rl_control.ros import reach_bench

    started: dict[str, tuple[dict[str, Any], Any]] = {}

    def start_node(module: str, params: dict[str, Any], log: Any, env: Any,
                   params_file: Any = None) -> str:
        started[module.rsplit('.', 1)[1]] = (params, params_file)
        return module

    monkeypatch.setattr(reach_bench, 'start_node', start_node)
    monkeypatch.setattr(reach_bench, 'stop_process', lambda p: None)
    monkeypatch.setattr(reach_bench, '_collect', lambda *a: [])
    monkeypatch.setattr(reach_bench.os, 'environ', {})
    spec, _ = load_bundle_spec(REPO / 'models' / bundle)
    reach_bench.run_over_ros(str(REPO / 'models' / bundle), spec, robot,
                             np.array([[0.5, 0.0, 0.2]]), False, lambda *a: None,
                             realtime=True, log_dir=None)
    sim, _ = started['sim_robot']
    server, params_file = started['policy_server']
    listens = command_interface(sim['command_type']).default_topic(robot)  # sim_robot.py
    assert server['command_type'] == sim['command_type']
    assert server['command_topic'] == listens  # overrides the file's trajectory topic
    assert Path(params_file).name == ('policy_server.yaml' if robot == 'panda'
                                      else f'policy_server_{robot}.yaml')
