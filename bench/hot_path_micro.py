"""Micro-benchmark of the policy server's per-tick functions (one thread, timeit).

Why: at 1 kHz the whole state -> command path has ~1 ms, shared with rclpy; each function here
runs once per tick, so microseconds matter. To compare two versions of the code under the same
(noisy) machine load, `--src A B ...` runs a worker process per source root, interleaved over
several rounds, and reports the best round per function (the least disturbed by other load).

    .venv/bin/python bench/hot_path_micro.py                       # this checkout
    .venv/bin/python bench/hot_path_micro.py --src /tmp/before/src src --rounds 5

Inputs are what the server sees: a 9-joint /joint_states (arm + fingers, shuffled order) as
float64 arrays, a goal, and the shipped bundle (20 -> 64 -> 64 -> 7, normalized observation).
"""
from __future__ import annotations

import argparse
import json
import os
from pathlib import Path
import subprocess
import sys
import timeit
from typing import Any

REPO = Path(__file__).resolve().parents[1]
BUNDLE = REPO / 'models' / 'panda_reach_sac'


def _per_call_us(fn: Any, number: int, repeat: int = 5) -> float:
    """Best-of-`repeat` microseconds per call of `fn()`."""
    return min(timeit.repeat(fn, number=number, repeat=repeat)) / number * 1e6


def worker(number: int) -> dict[str, float]:
    """Time each hot-path function of the `rl_control` found on sys.path."""
    import numpy as np

    from rl_control.bundle.io import load_bundle
    from rl_control.contract.spec import (
        ObservationSpec,
        action_to_command,
        build_observation,
        contract_from_yaml,
    )
    from rl_control.robots.kinematics import fk, fk_single
    from rl_control.robots.profiles import PANDA
    from rl_control.serve.safety import SafetyConfig, SafetyFilter

    spec, policy = load_bundle(BUNDLE)
    contract = contract_from_yaml(spec)
    obs_spec = ObservationSpec(contract.obs_spec.joint_names, contract.obs_spec.terms)
    act_spec = contract.act_spec
    rng = np.random.default_rng(0)
    names = list(PANDA.all_joint_names)
    order = rng.permutation(len(names))
    names = tuple(names[i] for i in order)
    pos = np.concatenate([PANDA.home, [0.02, 0.02]])[order]
    vel = rng.normal(0.0, 0.1, size=len(names))
    goal = np.array([0.4, 0.1, 0.3])
    q_list = PANDA.home.tolist()
    q_arr = PANDA.home.copy()
    obs = build_observation(obs_spec, names, pos, vel, goal)
    action = np.asarray(policy.act(obs), dtype=np.float64)
    perm = np.arange(7)
    sf = SafetyFilter(SafetyConfig(low=act_spec.low, high=act_spec.high, period_s=0.001,
                                   rate_limit=50.0, ramp_in_s=0.0))
    sf.activate(0.0)
    sf.note_state(0.0)

    def tick() -> None:
        o = build_observation(obs_spec, names, pos, vel, goal)
        a = np.asarray(policy.act(o), dtype=np.float64).reshape(-1)
        sf.filter(0.0, action_to_command(act_spec, a)[perm])

    cases = {
        'fk_single(list)': lambda: fk_single(q_list),
        'fk(ndarray (7,))': lambda: fk(q_arr),
        'build_observation': lambda: build_observation(obs_spec, names, pos, vel, goal),
        'action_to_command': lambda: action_to_command(act_spec, action),
        'Policy.act(20->64->64->7)': lambda: policy.act(obs),
        'SafetyFilter.filter': lambda: sf.filter(0.0, action),
        'tick (obs+act+cmd+filter)': tick,
    }
    try:
        from sensor_msgs.msg import JointState

        from rl_control.ros import conversions as conv

        msg = conv.make_joint_state(names, pos, vel)
        cases['conv.joint_state_arrays'] = lambda: conv.joint_state_arrays(msg)
        out_msg = conv.float64_multiarray(action)
        cases['conv.float64_multiarray'] = lambda: conv.float64_multiarray(action, out_msg)
        assert isinstance(msg, JointState)
    except ImportError:
        pass
    return {k: _per_call_us(fn, number) for k, fn in cases.items()}


def main() -> None:
    """Run workers for each --src root (interleaved rounds) and print a table."""
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--src', nargs='+', default=[str(REPO / 'src')],
                    help='source roots holding rl_control/ (first = baseline)')
    ap.add_argument('--rounds', type=int, default=3)
    ap.add_argument('--number', type=int, default=5000, help='calls per timing')
    ap.add_argument('--worker', action='store_true', help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        print(json.dumps(worker(args.number)))
        return
    env = dict(os.environ, OMP_NUM_THREADS='1', OPENBLAS_NUM_THREADS='1', MKL_NUM_THREADS='1')
    best: dict[str, dict[str, float]] = {s: {} for s in args.src}
    for _ in range(args.rounds):
        for src in args.src:
            out = subprocess.run(
                [sys.executable, __file__, '--worker', '--number', str(args.number)],
                env=dict(env, PYTHONPATH=os.pathsep.join([src, env.get('PYTHONPATH', '')])),
                capture_output=True, text=True, check=True)
            for k, v in json.loads(out.stdout.strip().splitlines()[-1]).items():
                best[src][k] = min(best[src].get(k, float('inf')), v)
    keys = list(best[args.src[0]])
    head = f'{"function (us/call, best of rounds)":34s}' + ''.join(
        f'{s[-22:]:>22s}' for s in args.src)
    if len(args.src) > 1:
        head += f'{"speed-up":>10s}'
    print(head)
    for k in keys:
        row = f'{k:34s}' + ''.join(f'{best[s].get(k, float("nan")):22.2f}' for s in args.src)
        if len(args.src) > 1:
            row += f'{best[args.src[0]][k] / best[args.src[-1]][k]:9.2f}x'
        print(row)


if __name__ == '__main__':
    main()
