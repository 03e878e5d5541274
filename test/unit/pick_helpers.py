"""Shared helper for the pick-and-place tests (not a test module)."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

ENV_ID = 'rl_control/FrankaPickPlace-v1'


def save_zero_pick_bundle(env: Any, path: Path, note: str = 'test') -> Path:
    """A FrankaPickPlace-v1 bundle written by the real bundle code, its one-layer actor all
    zeros: the arm stays and the gripper entry is 0 (the hand left as it is)."""
    from rl_control.bundle.io import save_bundle

    u = env.unwrapped
    c = u.contract
    n_in, n_out = c.obs_spec.size, c.act_spec.size

    class Actor:
        def export_actor(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
            return ({'kind': 'mlp', 'layers': [[n_in, n_out]], 'activation': 'relu',
                     'output': 'tanh'},
                    {'l0.weight': np.zeros((n_out, n_in)), 'l0.bias': np.zeros(n_out)})

    meta = {'env_id': ENV_ID, 'contract': c, 'robot_task': u.robot_task, 'obs_dim': n_in,
            'act_dim': n_out, 'action_low': [-1.0] * n_out, 'action_high': [1.0] * n_out,
            'obs_terms': [{'name': 'observation', 'size': n_in - 3},
                          {'name': 'desired_goal', 'size': 3}]}
    return save_bundle(path, Actor(), None, meta, {'algo': 'sac'}, None, note)
