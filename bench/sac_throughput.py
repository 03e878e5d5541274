"""SAC env steps/s at identical settings: rl_control vs Stable-Baselines3, side by side.

Both run SB3's SAC defaults on Pendulum-v1 (256x256, batch 256, lr 3e-4, tau 0.005, gamma 0.99,
buffer 1e6, learning_starts 100, one gradient step per env step, automatic entropy), each in a
fresh child process pinned to the same core with one torch thread, alternating A/B.

    .venv/bin/python bench/sac_throughput.py --steps 3000 --repeats 3
"""
import argparse

from harness import median, run_child, save


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--steps', type=int, default=3000)
    p.add_argument('--repeats', type=int, default=3)
    p.add_argument('--cpu', type=int, default=0)
    a = p.parse_args()
    runs: dict[str, list[float]] = {'rl_control': [], 'sb3': []}
    for r in range(a.repeats):
        for impl, script in (('rl_control', 'bench/ours_peer.py'), ('sb3', 'bench/sb3_peer.py')):
            res = run_child([script, 'throughput', '--steps', str(a.steps), '--seed', str(r)],
                            cpu=a.cpu)
            runs[impl].append(res['steps_per_s'])
            print(f'repeat {r} {impl:10s} {res["steps_per_s"]:7.1f} env steps/s', flush=True)
    ours, sb3 = median(runs['rl_control']), median(runs['sb3'])
    print(f'median: rl_control {ours:.1f} steps/s, SB3 {sb3:.1f} steps/s, ratio {ours / sb3:.2f}x')
    save('sac_throughput', {'steps': a.steps, 'runs': runs, 'ratio': ours / sb3})


if __name__ == '__main__':
    main()
