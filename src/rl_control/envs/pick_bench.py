"""The pick-and-place benchmark, in process on MuJoCo: fixed episodes, held success first.

The task is panda-gym's PickAndPlace (panda_gym/envs/tasks/pick_and_place.py) as
`rl_control/FrankaPickPlace-v1` has it (envs/franka_pick_place.py, envs/pick_place_task.py).
Every policy meets the same episodes: `config/pick_episodes.yaml` holds each episode's cube
start pose and goal, drawn once from the task's own samplers (`PickPlaceTask.sample_object`,
`sample_goal`) with a fixed seed and written by

    python -m rl_control.envs.pick_bench --write config/pick_episodes.yaml --count 100 --seed 0

Why a file and not a seed list: `FrankaPickPlaceEnv.reset(seed)` does fix the cube and the goal
today, but only through the order of its random draws (the randomization's come first), so
any change to those draws would silently change the benchmark; the file cannot drift.

Each episode is 6 s (the env's time limit) from rest at the profile's home with the hand open,
nominal dynamics unless `randomized` (then the bundle's, or the env's default, domain
randomization, drawn from seed `seed + i`: reproducible too). The policy is a bundle's actor
or the scripted grasp-and-place (envs/scripted_pick.py: the reference a learned policy must
approach). The measures are the task's (envs/pick_metrics.py, `summarize`): held success (the
cube within the success distance of the goal and cube and arm at rest over the last second,
no drop), placed at some moment, grasped, lifted, dropped, reflexes and contact reflexes, the
median time to settle (= to place and hold) and the final cube-to-goal distance. An episode
whose cube starts within the success distance of a table goal is solved by doing nothing
(panda-gym's sampler allows it too); `solved_at_start` counts them, the floor of the headline.
The ROS engine (sim_robot + policy_server over DDS) is ros/reach_bench.py `run_pick_over_ros`.
"""
from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import numpy as np
import yaml

ENGINES = ('mujoco', 'ros')
SCRIPTED = 'scripted'
"""POLICY word for the scripted grasp-and-place (envs/scripted_pick.py)."""
EPISODE_S = 6.0  # the env's time limit (registration.PICK_EPISODE_STEPS at 25 Hz)
OUTCOMES = ('held', 'placed', 'grasped', 'lifted', 'dropped')


def default_episodes_file() -> Path:
    """config/pick_episodes.yaml of the installed share folder or the source tree."""
    from rl_control.envs.reach_bench import config_file

    return config_file('pick_episodes.yaml', '--episodes-file')


# -- the fixed episodes ------------------------------------------------------------------------
def draw_episodes(count: int, seed: int) -> list[dict[str, list[float]]]:
    """`count` (cube, goal) pairs from the task's samplers, one generator seeded `seed`."""
    from rl_control.envs.pick_place_task import PickPlaceTask

    task, rng = PickPlaceTask(), np.random.default_rng(seed)
    out = []
    for _ in range(count):
        cube = task.sample_object(rng)
        goal = task.sample_goal(rng)
        out.append({'cube': [round(float(v), 6) for v in cube],
                    'goal': [round(float(v), 6) for v in goal]})
    return out


def write_episodes(path: str | Path, count: int, seed: int) -> Path:
    """Write `draw_episodes(count, seed)` as YAML, with the command that wrote it."""
    path = Path(path)
    head = (f'# Fixed pick-and-place benchmark episodes (rl-control bench-pick): the cube start\n'
            f'# pose (x, y, z, qx, qy, qz, qw) and the goal (x, y, z), base frame [m], drawn\n'
            f'# from PickPlaceTask.sample_object / sample_goal. Written by\n'
            f'#   python -m rl_control.envs.pick_bench --write {path} --count {count} '
            f'--seed {seed}\n# Do not edit: results are only comparable on the same file.\n')
    body = {'seed': int(seed), 'episodes': draw_episodes(count, seed)}
    path.write_text(head + yaml.safe_dump(body, default_flow_style=None, sort_keys=False,
                                          width=99))
    return path


def load_episodes(path: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """(cubes (N, 7), goals (N, 3)) of an episodes file; ValueError naming the file and entry."""
    path = Path(path)
    try:
        doc = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise ValueError(f'{path}: not valid YAML: {exc}') from None
    eps = doc.get('episodes') if isinstance(doc, dict) else None
    if not isinstance(eps, list) or not eps:
        raise ValueError(f'{path}: expected a non-empty list under `episodes`')
    cubes, goals = [], []
    for i, e in enumerate(eps):
        try:
            cube = np.asarray(e['cube'], np.float64)
            goal = np.asarray(e['goal'], np.float64)
        except (KeyError, TypeError, ValueError):
            raise ValueError(f'{path}: episode {i}: needs `cube` (7 numbers) and `goal` '
                             '(3 numbers)') from None
        if cube.shape != (7,) or goal.shape != (3,) or not (
                np.all(np.isfinite(cube)) and np.all(np.isfinite(goal))):
            raise ValueError(f'{path}: episode {i}: needs `cube` (7 numbers) and `goal` '
                             '(3 numbers), finite')
        q = np.linalg.norm(cube[3:])
        if q < 0.5:
            raise ValueError(f'{path}: episode {i}: the cube quaternion is not a rotation')
        cubes.append(np.r_[cube[:3], cube[3:] / q])  # undo the file's rounding
        goals.append(goal)
    return np.asarray(cubes), np.asarray(goals)


# -- the env and the policies ------------------------------------------------------------------
def make_env(spec: dict[str, Any] | None, randomized: bool) -> Any:
    """The pick-and-place env a bundle `spec` was trained on (None: the env's defaults).

    As reach_bench: the bundle's robot, action type, shaper, action band, hand and Cartesian
    settings and observation terms, its randomization only when `randomized`.
    """
    from rl_control.contract import contract_from_yaml
    from rl_control.envs.franka_pick_place import FrankaPickPlaceEnv

    if spec is None:
        return FrankaPickPlaceEnv(randomize=randomized)
    task = spec.get('task_name')
    if task != 'pick_place':
        env_id = (spec.get('task') or {}).get('env_id')
        raise ValueError(f'not a pick-and-place bundle (task_name: pick_place), '
                         f'it has task_name {task!r} (env {env_id!r})')
    contract = contract_from_yaml(spec)
    act, terms = spec.get('action') or {}, contract.obs_spec.terms
    env = FrankaPickPlaceEnv(
        robot=spec.get('robot') or 'panda', action=act.get('type') or 'ee_velocity',
        success_distance=float(spec.get('success_distance') or 0.05), randomize=randomized,
        randomization=spec.get('randomization') if randomized else None,
        shaper=spec.get('shaper'), action_history=sum(t.startswith('last_action') for t in terms),
        action_deadband=contract.act_spec.deadband, action_exponent=contract.act_spec.exponent,
        gripper=act.get('gripper'), cartesian=act.get('cartesian'), task='pick_place')
    if terms != env.contract.obs_spec.terms:
        env.close()
        raise ValueError(f'the bundle observes {list(terms)}, the pick benchmark '
                         f'{list(env.contract.obs_spec.terms)}')
    return env


def scripted_policy(env: Any) -> Any:
    """The scripted grasp-and-place on `env`'s contract (act(obs) like a bundle's actor)."""
    return env.demo_policy()


# -- the run -----------------------------------------------------------------------------------
def run_episodes(env: Any, policy: Any, cubes: np.ndarray, goals: np.ndarray, seed: int = 0,
                 episode_s: float = EPISODE_S, progress: Any = None) -> list[dict[str, Any]]:
    """Episode i: cube i, goal i, reset seed `seed + i`; `env.episode_result()` of each."""
    from rl_control.envs.franka_pick_place import CONTROL_PERIOD_S

    steps = int(round(episode_s / CONTROL_PERIOD_S))
    episodes = []
    for i, (cube, goal) in enumerate(zip(cubes, goals, strict=True)):
        obs, _ = env.reset(seed=seed + i,
                           options={'cube': cube, 'goal': goal, 'q': env.profile.home,
                                    'grasped': False})
        start = env.cell.cube_pose()
        for _ in range(steps):
            x = np.concatenate([obs['observation'], obs['desired_goal']])
            obs, *_ = env.step(np.asarray(policy.act(x), np.float32))
        result = env.episode_result()
        result.update(episode=i, cube_start=[round(float(v), 6) for v in start],
                      solved_at_start=bool(np.linalg.norm(start[:3] - goal)
                                           <= result['success_distance']))
        episodes.append(result)
        if progress is not None:
            progress(i + 1, len(cubes), result)
    return episodes


def run(spec: dict[str, Any] | None, policy: Any, cubes: np.ndarray, goals: np.ndarray,
        randomized: bool = False, engine: str = 'mujoco', seed: int = 0,
        progress: Any = None) -> dict[str, Any]:
    """Benchmark a bundle (`spec`, `policy`) or, with `spec` None, the scripted pick.

    Returns {'summary': pick_metrics.summarize + the run's settings, 'episodes': [...]}.
    """
    if engine not in ENGINES:
        raise ValueError(f'engine {engine!r}: bench-pick runs on {list(ENGINES)}')
    if engine == 'ros':
        raise ValueError('the ros engine runs from ros/reach_bench.py `run_pick_over_ros` '
                         '(rl-control bench-pick --engine ros)')
    env = make_env(spec, randomized)
    try:
        if policy is None:
            policy = scripted_policy(env)
        episodes = run_episodes(env, policy, cubes, goals, seed, progress=progress)
        robot = env.profile.name
    finally:
        env.close()
    summary = env.task.summarize(episodes)
    summary.update(engine=engine, robot=robot, randomized=bool(randomized),
                   policy=SCRIPTED if spec is None else 'bundle',
                   success_distance=float(env.task.distance_threshold), episode_s=EPISODE_S,
                   solved_at_start=sum(e['solved_at_start'] for e in episodes))
    return {'summary': summary, 'episodes': episodes}


def report_lines(s: dict[str, Any]) -> list[str]:
    """pick_metrics.report_lines and the floor (episodes solved at the start)."""
    from rl_control.envs.pick_metrics import report_lines as task_lines

    lines = [*task_lines(s), f"{s['solved_at_start']}/{s['episodes']} episodes start with the "
             'cube already within the distance (solved by doing nothing)']
    if s.get('engine') == 'ros':
        lines.append(f"over ROS ({'lockstep' if s.get('lockstep') else 'real time'}): "
                     f"{s.get('rejected', 0)} rejected arm commands, "
                     f"{s.get('hand_rejected', 0)} refused hand commands; logs {s.get('logs')}")
    return lines


def plot(episodes: list[dict[str, Any]], threshold: float, period_s: float, path: str | Path,
         title: str = '') -> None:
    """PNG: cube-to-goal distance over time (as envs/reach_plot.py), then the outcome shares.

    Green = held, red = dropped, orange = a reflex (motion or contact), grey = neither.
    """
    import matplotlib

    matplotlib.use('Agg')
    import matplotlib.pyplot as plt

    from rl_control.envs.reach_metrics import HOLD_S

    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(12, 4), width_ratios=(2, 1))
    n = max(len(episodes), 1)
    for r in episodes:
        color = ('tab:red' if r.get('dropped') else
                 'tab:orange' if r.get('reflex') or r.get('contact_reflexes') else
                 'tab:green' if r.get('held') else '0.5')
        d = r.get('distances') or []
        ax1.plot([period_s * (i + 1) for i in range(len(d))], [max(1000 * v, 0.5) for v in d],
                 color=color, alpha=0.4, lw=0.8)
    end = max((len(r.get('distances') or []) for r in episodes), default=0) * period_s
    ax1.axvspan(max(end - HOLD_S, 0.0), end, color='0.9', zorder=0)
    ax1.axhline(1000 * threshold, color='k', ls='--', lw=1,
                label=f'success distance {1000 * threshold:g} mm')
    ax1.set_yscale('log')
    ax1.set_xlabel('time in episode [s] (grey: the last second, where held is judged)')
    ax1.set_ylabel('cube distance to goal [mm]')
    held = sum(bool(r.get('held')) for r in episodes)
    ax1.set_title(f'held {held}/{len(episodes)} ({held / n:.0%}); green held, red dropped, '
                  'orange reflex')
    ax1.legend(loc='upper right')
    shares = [sum(bool(r.get(k)) for r in episodes) / n for k in OUTCOMES]
    ax2.bar(OUTCOMES, shares, color=['tab:green', 'tab:blue', 'tab:blue', 'tab:blue',
                                     'tab:red'])
    ax2.set_ylim(0, 1)
    ax2.set_ylabel('share of episodes')
    ax2.set_title('outcomes')
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    """`python -m rl_control.envs.pick_bench --write FILE`: (re)draw the fixed episodes."""
    p = argparse.ArgumentParser(prog='python -m rl_control.envs.pick_bench',
                                description='Write the fixed pick-and-place benchmark episodes '
                                            "from the task's samplers (module docstring).")
    p.add_argument('--write', required=True, metavar='FILE', help='the YAML file to write')
    p.add_argument('--count', type=int, default=100, help='episodes (default 100)')
    p.add_argument('--seed', type=int, default=0, help="the samplers' seed (default 0)")
    a = p.parse_args(argv)
    print(f'{write_episodes(a.write, a.count, a.seed)}: {a.count} episodes, seed {a.seed}')
    return 0


if __name__ == '__main__':
    raise SystemExit(main())

