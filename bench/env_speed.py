"""Env steps per second: our MuJoCo Panda envs vs panda-gym's, reach and pick-and-place.

Reach: rl_control/PandaJointReach-v0 vs PandaReach-v3. `--task pick_place`:
rl_control/FrankaPickPlace-v1 (the Panda with its hand, finger and cube contacts, the shaper,
the tracker and the hand's action latency, domain randomization on) vs PandaPickAndPlace-v3
(PyBullet, Cartesian control, an ideal gripper): not like for like, the cost of each cell.

Both made with plain `gym.make(id)` defaults, stepped with random actions (seeded), resetting on
episode end, for the same number of steps; each run is a fresh child process pinned to one core,
runs alternate (ours, theirs, ours, ...) and medians are reported with their ratio.

    .venv/bin/python bench/env_speed.py --steps 3000 --repeats 5
    .venv/bin/python bench/env_speed.py --task pick_place --steps 3000 --repeats 5
    .venv/bin/python bench/env_speed.py --child ours --steps 3000     # one timed run, JSON out
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path
import sys
import time

sys.path.insert(0, str(Path(__file__).resolve().parent))

PEERS = {
    'ours': ('rl_control.envs.panda_reach', 'rl_control/PandaJointReach-v0'),
    'ours_bullet': ('rl_control.envs.panda_reach', 'rl_control/PandaJointReachBullet-v0'),
    'panda_gym': ('panda_gym', 'PandaReach-v3'),
    'ours_pick': ('rl_control.envs.registration', 'rl_control/FrankaPickPlace-v1'),
    'panda_gym_pick': ('panda_gym', 'PandaPickAndPlace-v3'),
}


def child(peer: str, steps: int, seed: int = 0) -> dict:
    """Make the env, warm up one episode, then time `steps` random-action steps."""
    import importlib

    import gymnasium as gym

    module, env_id = PEERS[peer]
    importlib.import_module(module)
    env = gym.make(env_id)
    env.action_space.seed(seed)
    env.reset(seed=seed)
    for _ in range(50):
        env.step(env.action_space.sample())
    env.reset(seed=seed)
    t0 = time.perf_counter()
    for _ in range(steps):
        _, _, terminated, truncated, _ = env.step(env.action_space.sample())
        if terminated or truncated:
            env.reset()
    wall = time.perf_counter() - t0
    env.close()
    return {'peer': peer, 'env_id': env_id, 'steps': steps, 'wall_s': wall,
            'steps_per_s': steps / wall}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--steps', type=int, default=3000)
    ap.add_argument('--repeats', type=int, default=5)
    ap.add_argument('--cpu', type=int, default=0, help='core to pin children to (-1: none)')
    ap.add_argument('--bullet', action='store_true', help='also time our PyBullet variant')
    ap.add_argument('--task', choices=['reach', 'pick_place'], default='reach')
    ap.add_argument('--child', choices=sorted(PEERS))
    args = ap.parse_args()
    if args.child:
        print(json.dumps(child(args.child, args.steps)))
        return

    from harness import median, run_child, save

    peers = (['ours', 'panda_gym'] + (['ours_bullet'] if args.bullet else [])
             if args.task == 'reach' else ['ours_pick', 'panda_gym_pick'])
    ours, theirs = peers[0], peers[1]
    cpu = None if args.cpu < 0 else args.cpu
    runs: dict[str, list[float]] = {p: [] for p in peers}
    for r in range(args.repeats):
        for peer in peers:
            res = run_child([__file__, '--child', peer, '--steps', str(args.steps)], cpu=cpu)
            runs[peer].append(res['steps_per_s'])
            print(f'repeat {r}: {peer:12s} {res["steps_per_s"]:10.1f} steps/s', flush=True)
    med = {p: median(v) for p, v in runs.items()}
    payload = {'steps': args.steps, 'repeats': args.repeats, 'runs': runs, 'median': med,
               'ratio_ours_over_panda_gym': med[ours] / med[theirs]}
    path = save('env_speed' if args.task == 'reach' else 'env_speed_pick_place', payload)
    for peer in peers:
        print(f'median {peer:12s} {med[peer]:10.1f} steps/s  ({PEERS[peer][1]})')
    print(f'ratio ours / panda-gym: {payload["ratio_ours_over_panda_gym"]:.1f}x  -> {path}')


if __name__ == '__main__':
    main()
