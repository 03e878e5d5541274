"""SAC env steps/s at identical settings, whole process: rl_control's CLI vs Stable-Baselines3.

Both train Pendulum-v1 with the same hyperparameters for `--steps` env steps and do the same
side work: 10 deterministic evaluation episodes on the config's cadence, TensorBoard logging,
the trained policy saved at the end.
  --settings sb3_defaults  SB3's SAC defaults (256x256, batch 256, lr 3e-4, tau 0.005, gamma
                           0.99, buffer 1e6, learning_starts 100, one gradient step per env
                           step, automatic entropy; evaluation every 1000 steps):
                           config/bench/pendulum_sac_sb3_defaults.yaml
  --settings pendulum      the project's 64x64 Pendulum config, config/pendulum_sac.yaml
                           (lr 1e-3, tau 0.05, learning_starts 500; evaluation every 250
                           steps), trained for all `--steps` (its target_return stop off)
  rl_control  `python -m rl_control.cli train --config CONFIG` (as a user runs it: run
              directory, TensorBoard, final checkpoint, bundle, plot)
  sb3         bench/sb3_peer.py throughput (EvalCallback, tensorboard_log, model.save)
Each run is a fresh process pinned to one core with one torch thread, timed from just before
the interpreter is spawned to its exit; runs alternate (A B A B ...). Reported: whole-process
env steps/s (steps / wall time) and, for information, the training loop alone.

    .venv/bin/python bench/sac_throughput.py --steps 3000 --repeats 3
    .venv/bin/python bench/sac_throughput.py --settings pendulum --steps 3000 --repeats 3
"""
import argparse
import os
import re
import tempfile

from harness import median, run_timed, save

SETTINGS = {  # our config, SB3 peer preset, evaluation cadence (both sides)
    'sb3_defaults': ('config/bench/pendulum_sac_sb3_defaults.yaml', 'defaults', 1000),
    'pendulum': ('config/pendulum_sac.yaml', 'ours', 250),
}


def ours(settings: str, steps: int, seed: int, cpu: int) -> dict:
    config = SETTINGS[settings][0]
    with tempfile.TemporaryDirectory() as out:
        wall, stdout = run_timed(['-m', 'rl_control.cli', 'train', '--config', config, '--out',
                                  out, '--no-progress', '--set', f'total_steps={steps}', '--set',
                                  f'seed={seed}', '--set', 'target_return=null'], cpu=cpu)
    loop = float(re.search(r'done: \d+ steps in ([0-9.]+) s', stdout).group(1))
    return {'wall_s': wall, 'loop_s': loop}


def sb3(settings: str, steps: int, seed: int, cpu: int) -> dict:
    import json
    _, preset, every = SETTINGS[settings]
    wall, stdout = run_timed(['bench/sb3_peer.py', 'throughput', '--steps', str(steps),
                              '--seed', str(seed), '--preset', preset, '--eval-every',
                              str(every)], cpu=cpu)
    res = json.loads([ln for ln in stdout.splitlines() if ln.startswith('{')][-1])
    return {'wall_s': wall, 'loop_s': res['loop_s']}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--settings', choices=sorted(SETTINGS), default='sb3_defaults')
    p.add_argument('--steps', type=int, default=3000)
    p.add_argument('--repeats', type=int, default=3)
    p.add_argument('--cpu', type=int, default=0)
    a = p.parse_args()
    runs: dict[str, list[dict]] = {'rl_control': [], 'sb3': []}
    for r in range(a.repeats):
        pair = (('rl_control', ours), ('sb3', sb3))
        for impl, fn in (pair if r % 2 == 0 else pair[::-1]):
            load = os.getloadavg()[0]
            res = {**fn(a.settings, a.steps, r, a.cpu), 'load1_before': load}
            runs[impl].append(res)
            print(f'repeat {r} {impl:10s} whole process {res["wall_s"]:6.1f} s = '
                  f'{a.steps / res["wall_s"]:6.1f} steps/s (loop {res["loop_s"]:.1f} s), '
                  f'load {load:.1f}', flush=True)
    sps = {k: median([a.steps / x['wall_s'] for x in v]) for k, v in runs.items()}
    loop = {k: median([a.steps / x['loop_s'] for x in v]) for k, v in runs.items()}
    loads = [x['load1_before'] for v in runs.values() for x in v]
    print(f'median whole process: rl_control {sps["rl_control"]:.1f} steps/s, SB3 '
          f'{sps["sb3"]:.1f} steps/s, ratio {sps["rl_control"] / sps["sb3"]:.2f}x '
          f'(loop only: {loop["rl_control"] / loop["sb3"]:.2f}x); load '
          f'{min(loads):.1f}-{max(loads):.1f}')
    save(f'sac_throughput_{a.settings}', {'settings': a.settings, 'steps': a.steps,
                                          'runs': runs, 'steps_per_s': sps,
                            'ratio': sps['rl_control'] / sps['sb3'],
                            'loop_ratio': loop['rl_control'] / loop['sb3'],
                            'load1_range': [min(loads), max(loads)]})


if __name__ == '__main__':
    main()
