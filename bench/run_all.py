"""Run the benchmarks one after another (`make bench`): each alone, the machine otherwise idle.

`--list` prints them with the command each runs; `--only NAME ...` picks some (mujoco_robots
and mujoco_parity, hours long, run only when named); `--quick` runs each at a small budget (a
smoke run of the harness, not a figure to report). Every figure in bench/README.md names the
command that produced it: run that command for the full budget. Timing figures need a quiet
machine: each benchmark records the load average beside its numbers.
"""
from __future__ import annotations

import argparse
from pathlib import Path
import subprocess
import sys
import time

ROOT = Path(__file__).resolve().parents[1]
PY = sys.executable

# name -> (full command, quick command), run from the repository root. Every figure in
# bench/README.md names one of these commands.
BENCHMARKS: dict[str, tuple[list[str], list[str]]] = {
    'env_speed': (['bench/env_speed.py', '--steps', '3000', '--repeats', '5'],
                  ['bench/env_speed.py', '--steps', '200', '--repeats', '1']),
    'sac_update_speed': (['bench/sac_update_speed.py', '--rounds', '20'],
                         ['bench/sac_update_speed.py', '--rounds', '2', '--steps', '3']),
    'sac_throughput': (['bench/sac_throughput.py', '--steps', '3000', '--repeats', '3'],
                       ['bench/sac_throughput.py', '--steps', '150', '--repeats', '1']),
    'sac_throughput_pendulum': (['bench/sac_throughput.py', '--settings', 'pendulum', '--steps',
                                 '3000', '--repeats', '3'],
                                ['bench/sac_throughput.py', '--settings', 'pendulum', '--steps',
                                 '300', '--repeats', '1']),
    'time_to_solve': (['bench/time_to_solve.py', '--seeds', '100', '101', '102', '103', '104'],
                      ['bench/time_to_solve.py', '--seeds', '100', '--max-steps', '600',
                       '--check-episodes', '5']),
    'learning_pendulum': (['bench/learning.py', 'pendulum', '--jobs', '1'],
                          ['bench/learning.py', '--help']),
    'learning_ppo': (['bench/learning.py', 'ppo', '--jobs', '1'], ['bench/learning.py', '--help']),
    'serve_latency': (['bench/serve_latency.py', '--n', '5000'],
                      ['bench/serve_latency.py', '--n', '200']),
    'hot_path_micro': (['bench/hot_path_micro.py', '--rounds', '5', '--number', '5000'],
                       ['bench/hot_path_micro.py', '--rounds', '1', '--number', '200']),
    # Hours on a 2-core machine (24 runs of 100k steps): only with --only mujoco_robots.
    'mujoco_robots': (['bench/mujoco_robots.py', '--jobs', '2'],
                      ['bench/mujoco_robots.py', '--help']),
    # 32 runs of 50k steps, one at a time (hours): only with --only mujoco_parity.
    'mujoco_parity': (['bench/mujoco_parity.py', '--jobs', '1'],
                      ['bench/mujoco_parity.py', '--help']),
    # Reads the parity runs on disk (seconds): every checkpoint, Holm-corrected.
    'parity_checkpoints': (['bench/parity_checkpoints.py'], ['bench/parity_checkpoints.py']),
}
ON_DEMAND = {'mujoco_robots', 'mujoco_parity'}  # not in a plain `make bench`


def main(argv: list[str] | None = None) -> int:
    """Run the selected benchmarks in sequence; the exit status is the number that failed."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--list', action='store_true', help='print the benchmarks and exit')
    ap.add_argument('--only', nargs='+', choices=sorted(BENCHMARKS), help='run only these')
    ap.add_argument('--quick', action='store_true', help='small budgets (smoke run)')
    args = ap.parse_args(argv)
    names = args.only or [n for n in BENCHMARKS if n not in ON_DEMAND]
    if args.list:
        for name in names:
            print(f'{name:20s} {PY} {" ".join(BENCHMARKS[name][0])}')
        return 0
    failed = 0
    for name in names:
        cmd = [PY, *BENCHMARKS[name][1 if args.quick else 0]]
        missing = ROOT / cmd[1]
        if not missing.is_file():
            print(f'== {name}: {cmd[1]} is missing', flush=True)
            failed += 1
            continue
        print(f'== {name}: {" ".join(cmd)}', flush=True)
        t0 = time.monotonic()
        rc = subprocess.call(cmd, cwd=ROOT)
        print(f'== {name}: exit {rc} after {time.monotonic() - t0:.0f} s', flush=True)
        failed += rc != 0
    return failed


if __name__ == '__main__':
    sys.exit(main())
