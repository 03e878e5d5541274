"""The standard reach benchmark, in process (engines `mujoco` and `pybullet`).

A bundle runs deterministically on the reach env of its action type and task (FrankaReachEnv:
the same command shaper and robot limits as serving, nominal dynamics unless `randomized`)
with the goals of `config/reach_goals.yaml`, one 4 s episode per goal from rest at the
profile's home. The task measures each episode (reach: envs/reach_metrics.py): success =
*held*, the true (noise-free) end effector within the distance and the arm at rest over the
episode's last second; *reached* (within d at some control period), time to settle,
last-second distance and path, path ratio and the final joint speed beside it; reflexes =
episodes in which the robot's 1 kHz check of the commanded reference failed. The `ros` engine
(`ros/reach_bench.py`) runs the same goals through sim_robot and policy_server over DDS.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

ENGINES = ('mujoco', 'pybullet', 'ros')


def config_file(name: str, hint: str = '') -> Path:
    """config/`name` of the installed share folder or the source tree (`hint`: what to pass)."""
    import sys

    here = Path(__file__).resolve()
    for c in (Path(sys.prefix) / 'share' / 'rl_control' / 'config' / name,
              here.parents[3] / 'config' / name):
        if c.is_file():
            return c
    raise FileNotFoundError(f'config/{name} not found' + (f' (pass {hint})' if hint else ''))


def default_goals_file() -> Path:
    """config/reach_goals.yaml of the installed share folder or the source tree."""
    return config_file('reach_goals.yaml', '--goals')


def run_in_process(spec: dict[str, Any], policy: Any, engine: str, robot: str,
                   randomized: bool, goals: np.ndarray, episode_s: float = 4.0,
                   success_distance: float = 0.02, seed: int = 0,
                   progress: Any = None) -> dict[str, Any]:
    """Run every goal once; returns {'summary': ..., 'episodes': [...]}."""
    from rl_control.contract import contract_from_yaml
    from rl_control.contract.actions import ACTION_TYPES
    from rl_control.envs.franka_reach import CONTROL_PERIOD_S, FrankaReachEnv

    act_type = (spec.get('action') or {}).get('type')
    if act_type not in ACTION_TYPES:
        raise ValueError(f'bench-reach needs a bundle of a robot action type '
                         f'{list(ACTION_TYPES)}, this one has action.type {act_type!r}')
    contract = contract_from_yaml(spec)
    terms = contract.obs_spec.terms
    env = FrankaReachEnv(robot=robot, engine=engine, control=ACTION_TYPES[act_type].control,
                         task=spec.get('task_name') or 'reach',
                         success_distance=success_distance, randomize=randomized,
                         randomization=spec.get('randomization') if randomized else None,
                         shaper=spec.get('shaper'),
                         action_history=sum(t.startswith('last_action') for t in terms),
                         action_deadband=contract.act_spec.deadband,
                         action_exponent=contract.act_spec.exponent,
                         torque_damping=float((spec.get('torque') or {}).get('hold_damping')
                                              or 0.0))
    if terms != env.contract.obs_spec.terms:
        env.close()
        raise ValueError(f'the bundle observes {list(terms)}, the reach benchmark '
                         f'{list(env.contract.obs_spec.terms)}')
    steps = int(round(episode_s / CONTROL_PERIOD_S))
    episodes, task, n = [], env.task, env.profile.dof
    try:
        for i, goal in enumerate(goals):
            obs, _ = env.reset(seed=seed + i, options={'goal': goal, 'q': env.profile.home})
            trace = task.trace(goal, env.sim.joint_state()[1][:n], env.profile)
            info: dict[str, Any] = {}
            for k in range(steps):
                x = np.concatenate([obs['observation'], obs['desired_goal']])
                obs, _r, _te, _tr, info = env.step(np.asarray(policy.act(x), np.float32))
                trace.add((k + 1) * CONTROL_PERIOD_S, env.true_ee_position(),
                          env.sim.joint_state()[2][:n])
            result = trace.result()
            result.update(episode=i, reflex=info.get('reflex'),
                          reflex_samples=int(info.get('reflexes', 0)))
            episodes.append(result)
            if progress is not None:
                progress(i + 1, len(goals), result)
    finally:
        env.close()
    summary = task.summarize(episodes)
    summary.update(engine=engine, robot=robot, randomized=bool(randomized),
                   success_distance=success_distance, episode_s=episode_s)
    return {'summary': summary, 'episodes': episodes}

