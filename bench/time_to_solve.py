"""Wall time from process start to a deterministic eval return >= -200 on Pendulum-v1.

rl_control with its own default config (config/pendulum_sac.yaml) vs SB3 with the RL-Zoo SAC
config (lr 1e-3, otherwise defaults; 10 eval episodes every 1000 steps). Same core, one thread,
alternating runs, several seeds. This is what a user waits for.

    .venv/bin/python bench/time_to_solve.py --seeds 0 1 2
"""
import argparse

from harness import median, run_child, save


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--seeds', type=int, nargs='+', default=[0, 1, 2])
    p.add_argument('--max-steps', type=int, default=20000)
    p.add_argument('--threshold', type=float, default=-200.0)
    p.add_argument('--cpu', type=int, default=0)
    a = p.parse_args()
    rows = []
    for seed in a.seeds:
        for impl, script in (('rl_control', 'bench/ours_peer.py'), ('sb3', 'bench/sb3_peer.py')):
            res = run_child([script, 'solve', '--seed', str(seed), '--steps', str(a.max_steps),
                             '--threshold', str(a.threshold)], cpu=a.cpu)
            rows.append({'impl': impl, 'seed': seed, 'solved_s': res['solved_s'],
                         'solved_step': res['solved_step'], 'evals': res['evals']})
            print(f'seed {seed} {impl:10s} solved at step {res["solved_step"]} '
                  f'after {res["solved_s"]} s', flush=True)
    times = {i: [r['solved_s'] for r in rows if r['impl'] == i and r['solved_s'] is not None]
             for i in ('rl_control', 'sb3')}
    unsolved = {i: sum(1 for r in rows if r['impl'] == i and r['solved_s'] is None)
                for i in times}
    ours, sb3 = median(times['rl_control']), median(times['sb3'])
    print(f'median time to {a.threshold}: rl_control {ours:.1f} s, SB3 {sb3:.1f} s, '
          f'speed-up {sb3 / ours:.1f}x (unsolved runs: {unsolved})')
    save('time_to_solve', {'rows': rows, 'speedup': sb3 / ours, 'unsolved': unsolved})


if __name__ == '__main__':
    main()
