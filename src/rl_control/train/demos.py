"""Demonstrations in the replay buffer before the first step (`demos:` in a training config).

DDPGfD (Vecerik et al. 2017, "Leveraging demonstrations for deep RL on robotics problems with
sparse rewards") and Nair et al. 2018 ("Overcoming exploration in reinforcement learning with
demonstrations", section 4: the HER pick-and-place with demonstrations) put a demonstrator's
transitions into the replay buffer, where they stay and HER relabels them like any other
episode; the agent learns from them off-policy with its usual update (no behaviour-cloning
term here). The demonstrator is the env's own `demo_policy()` (pick and place: the scripted
grasp-and-place of envs/scripted_pick.py), run on the training envs for `episodes` whole
episodes with Gaussian noise of std `noise` on its actions (clipped to the action box) so the
critic sees actions near the demonstrated ones, and stored exactly as the collector stores its
own transitions (the observation normalizer sees them too).

Demonstration steps are not counted in the run's env steps (the budget and the learning curve
are the agent's own); the run logs how many there were, and its wall time includes them.
A resumed run does not collect them again: they are in the checkpointed buffer.
"""
from __future__ import annotations

import json
import sys
from typing import Any

import numpy as np

from rl_control.envs.factory import policy_input, template_env
from rl_control.train.control import Callback

DEMO_SEED_OFFSET = 2_000_000  # demo episode seeds never coincide with training or eval seeds


def demo_policy(envs: Any, where: str = 'demos') -> Any:
    """The env's demonstrator (`act(x)` on a raw policy input); a clear error without one."""
    env = template_env(envs).unwrapped
    make = getattr(env, 'demo_policy', None)
    if make is None:
        raise ValueError(f'{where}: {type(env).__name__} has no demo_policy() to demonstrate '
                         'with (pick and place has one); remove the demos section')
    return make()


class DemoPrefill(Callback):
    """Fills an off-policy run's replay buffer with demonstrations at its fresh start."""

    def __init__(self, episodes: int, noise: float) -> None:
        self.episodes, self.noise = int(episodes), float(noise)
        self.steps = 0

    def on_start(self, run: Any) -> None:
        """Collect the demonstrations (skipped on a resume: the buffer already holds them)."""
        if run.resume_step is not None:
            return
        collector = getattr(run, 'collector', None)
        if run.buffer is None or not hasattr(collector, 'step'):
            raise ValueError(f'demos: {run.cfg.algo} is on-policy; demonstrations go into an '
                             'off-policy replay buffer (sac, td3, ddpg)')
        stats = collector.stats.state_dict()  # the training episodes' counts stay the agent's
        seed = run.cfg.seed + DEMO_SEED_OFFSET
        self.steps = collect(collector, demo_policy(run.envs), self.episodes, self.noise,
                             np.random.default_rng(seed), seed)
        collector.stats.load_state_dict(stats)
        record = {'episodes': self.episodes, 'steps': self.steps, 'noise': self.noise,
                  'seed': seed, 'wall_s': round(run.wall_s(), 1)}
        (run.run_dir / 'demos.json').write_text(json.dumps(record, indent=1) + '\n')
        print(f'demonstrations: {self.episodes} episodes, {self.steps} steps in the replay '
              'buffer', file=sys.stderr, flush=True)


def collect(collector: Any, policy: Any, episodes: int, noise: float,
            rng: np.random.Generator, seed: int) -> int:
    """Step `collector`'s envs with `policy` until `episodes` episodes ended; the step count.

    The loop resets the envs after this, which closes any episode still open (HER stores whole
    episodes only).
    """
    collector.reset(seed)
    finished = steps = 0
    while finished < episodes:
        x = policy_input(collector.obs)
        actions = np.stack([policy.act(row) for row in np.atleast_2d(x)])
        if noise > 0:
            actions = actions + rng.normal(0.0, noise, actions.shape)
        before = collector.stats.episodes
        collector.step(0, actions=np.clip(actions, -1.0, 1.0).astype(np.float32))
        finished += collector.stats.episodes - before
        steps += collector.n_envs
    return steps
