"""Rendered frames of one pick-and-place benchmark episode (a bundle or the scripted pick).

Runs episode `--episode` of config/pick_episodes.yaml on MuJoCo exactly as `rl-control
bench-pick` does (envs/pick_bench.py: nominal dynamics, from rest at home, hand open, 6 s) and
renders the cell's `front` camera (MuJoCo offscreen: set MUJOCO_GL=egl on a machine without a
display) at the times given, tiled into one PNG with the time, the cube-to-goal distance and the
hand's state under each frame; the goal is the translucent green marker.

  MUJOCO_GL=egl .venv/bin/python bench/pick_frames.py models/panda_pick_place_sac \
      --episode 3 --out bench/results/pick_place/frames.png
"""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

TIMES_S = (0.0, 1.0, 1.6, 2.4, 3.2, 6.0)


def frames(policy_arg: str, episode: int, times: tuple[float, ...], camera: str = 'front',
           ) -> tuple[list[np.ndarray], list[str], dict]:
    """(images, captions, the episode's result) of one benchmark episode."""
    from rl_control.bundle import load_bundle
    from rl_control.envs import pick_bench
    from rl_control.envs.franka_pick_place import CONTROL_PERIOD_S

    spec = policy = None
    if policy_arg != pick_bench.SCRIPTED:
        spec, policy = load_bundle(policy_arg)
    env = pick_bench.make_env(spec, False)
    env.render_mode = 'rgb_array'
    if policy is None:
        policy = pick_bench.scripted_policy(env)
    cubes, goals = pick_bench.load_episodes(pick_bench.default_episodes_file())
    obs, _ = env.reset(seed=episode, options={'cube': cubes[episode], 'goal': goals[episode],
                                              'q': env.profile.home, 'grasped': False})
    ticks = {int(round(t / CONTROL_PERIOD_S)) for t in times}
    images, captions = [], []
    steps = int(round(pick_bench.EPISODE_S / CONTROL_PERIOD_S))
    for k in range(steps + 1):
        if k in ticks:
            images.append(env.render().copy())
            d = np.linalg.norm(env.cell.cube_pose()[:3] - goals[episode])
            captions.append(f't = {k * CONTROL_PERIOD_S:.1f} s: cube {1000 * d:.0f} mm from '
                            f"the goal, hand {1000 * env.cell.width():.0f} mm")
        if k < steps:
            x = np.concatenate([obs['observation'], obs['desired_goal']])
            obs, *_ = env.step(np.asarray(policy.act(x), np.float32))
    result = env.episode_result()
    env.close()
    return images, captions, result


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('policy', help="a pick-and-place bundle folder, or 'scripted'")
    p.add_argument('--episode', type=int, default=0, help='episode of pick_episodes.yaml')
    p.add_argument('--times', type=float, nargs='+', default=list(TIMES_S))
    p.add_argument('--out', type=Path, required=True)
    a = p.parse_args()
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt

    images, captions, result = frames(a.policy, a.episode, tuple(a.times))
    cols = 3
    rows = (len(images) + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(4.2 * cols, 3.7 * rows))
    for ax in np.ravel(axes):
        ax.axis('off')
    for ax, img, cap in zip(np.ravel(axes), images, captions, strict=False):
        ax.imshow(img)
        ax.set_title(cap, fontsize=9)
    fig.suptitle(f"{a.policy}, benchmark episode {a.episode}: "
                 f"{'held' if result['held'] else 'NOT held'} (final "
                 f"{1000 * result['final_distance']:.1f} mm)")
    fig.tight_layout(h_pad=2.0)
    a.out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(a.out, dpi=70)
    print(f'{a.out}: {len(images)} frames; held {result["held"]}, final distance '
          f'{1000 * result["final_distance"]:.1f} mm')
    return 0


if __name__ == '__main__':
    raise SystemExit(main())
