"""Demonstrations in the replay buffer before the first step (`demos:` in a training config).

DDPGfD (Vecerik et al. 2017, "Leveraging demonstrations for deep RL on robotics problems with
sparse rewards") and Nair et al. 2018 ("Overcoming exploration in reinforcement learning with
demonstrations", section 4: the HER pick-and-place with demonstrations) put a demonstrator's
transitions into the replay buffer, where they stay and HER relabels them like any other
episode; the agent learns from them off-policy with its usual update. The demonstrator is the
env's own `demo_policy()` (pick and place: the scripted grasp-and-place of envs/scripted_pick.py),
run on the training envs for `episodes` whole
episodes with Gaussian noise of std `noise` on its actions (clipped to the action box) so the
critic sees actions near the demonstrated ones, and stored exactly as the collector stores its
own transitions (the observation normalizer sees them too).

Demonstration steps are not counted in the run's env steps (the budget and the learning curve
are the agent's own); the run logs how many there were, and its wall time includes them.
A resumed run does not collect them again: they are in the checkpointed buffer.

`bc_weight` > 0 adds Nair et al.'s behaviour-cloning loss with the Q-filter (section 4.2-4.3)
to SAC's actor (algos/sac.py): every update also draws `bc_batch` demonstration steps (`DemoSet`:
the observation with the demonstrator's own goal, never relabelled, and its action without the
exploration noise) and pulls the deterministic action tanh(mu) towards the demonstrated one
(with `bc_filter`, only where the critic rates the demonstrated action higher: the Q-filter,
which lets the agent outgrow a poor demonstrator; without it, everywhere, for a demonstrator
known to be good, whose actions an early critic would wrongly filter out). The set is kept in
the collector's checkpoint, so a resumed run goes on cloning the same steps. With `dagger`, the
agent's own observations are added to the set as it trains, each with the demonstrator's action
for it (DAgger, Ross et al. 2011; `DemoSet.label`).
"""
from __future__ import annotations

import json
import sys
from typing import Any

import numpy as np
import torch

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

    def __init__(self, cfg: Any) -> None:
        """`cfg`: the run's `demos:` section (train/config.py `DemoConfig`)."""
        self.cfg = cfg
        self.steps = 0

    def on_start(self, run: Any) -> None:
        """Collect the demonstrations (skipped on a resume: the buffer already holds them)."""
        cfg, collector = self.cfg, getattr(run, 'collector', None)
        if run.resume_step is not None:
            if cfg.dagger and collector.demos is not None:  # the expert is not checkpointed
                collector.demos.expert = demo_policy(run.envs)
            return
        if run.buffer is None or not hasattr(collector, 'step'):
            raise ValueError(f'demos: {run.cfg.algo} is on-policy; demonstrations go into an '
                             'off-policy replay buffer (sac, td3, ddpg)')
        stats = collector.stats.state_dict()  # the training episodes' counts stay the agent's
        seed = run.cfg.seed + DEMO_SEED_OFFSET
        expert = demo_policy(run.envs)
        self.steps, obs, act = collect(collector, expert, cfg.episodes, cfg.noise,
                                       np.random.default_rng(seed), seed)
        collector.stats.load_state_dict(stats)
        if cfg.bc_weight > 0:
            collector.demos = DemoSet(obs, act, cfg.bc_weight, cfg.bc_batch, seed,
                                      cfg.bc_filter)
            collector.demos.expert = expert if cfg.dagger else None
        record = {**vars(cfg), 'steps': self.steps, 'seed': seed,
                  'wall_s': round(run.wall_s(), 1)}
        (run.run_dir / 'demos.json').write_text(json.dumps(record, indent=1) + '\n')
        print(f'demonstrations: {cfg.episodes} episodes, {self.steps} steps in the replay '
              'buffer', file=sys.stderr, flush=True)


def collect(collector: Any, policy: Any, episodes: int, noise: float, rng: np.random.Generator,
            seed: int) -> tuple[int, np.ndarray, np.ndarray]:
    """Step `collector`'s envs with `policy` until `episodes` episodes ended.

    Returns the step count and every step's raw policy input and noiseless demonstrated action.

    The loop resets the envs after this, which closes any episode still open (HER stores whole
    episodes only).
    """
    collector.reset(seed)
    finished = steps = 0
    seen: list[np.ndarray] = []
    shown: list[np.ndarray] = []
    while finished < episodes:
        x = np.atleast_2d(policy_input(collector.obs))
        actions = np.stack([policy.act(row) for row in x])
        seen.append(np.asarray(x, np.float32))
        shown.append(np.asarray(actions, np.float32))
        if noise > 0:
            actions = actions + rng.normal(0.0, noise, actions.shape)
        before = collector.stats.episodes
        collector.step(0, actions=np.clip(actions, -1.0, 1.0).astype(np.float32))
        finished += collector.stats.episodes - before
        steps += collector.n_envs
    return steps, np.concatenate(seen), np.concatenate(shown)


class DemoSet:
    """The demonstrated (observation, action) pairs the behaviour-cloning term samples.

    With an `expert` (`dagger`), `label` adds the agent's own observations with the expert's
    action for them (DAgger, Ross et al. 2011): the states a cloned policy drifts into, which
    no demonstration visits, get the demonstrator's answer too.
    """

    def __init__(self, obs: np.ndarray, act: np.ndarray, weight: float, batch: int,
                 seed: int, q_filter: bool = True) -> None:
        self.obs, self.act = np.asarray(obs, np.float32), np.asarray(act, np.float32)
        self.n = len(self.obs)
        self.weight, self.batch, self.q_filter = float(weight), int(batch), bool(q_filter)
        self.rng = np.random.default_rng(seed)
        self.expert: Any = None

    def label(self, x: np.ndarray) -> None:
        """Add observations `x` (n, obs_dim; raw policy inputs) with the expert's actions."""
        x = np.atleast_2d(np.asarray(x, np.float32))
        a = np.stack([self.expert.act(row) for row in x]).astype(np.float32)
        if self.n + len(x) > len(self.obs):  # grow by doubling (amortized O(1) per row)
            size = max(2 * len(self.obs), self.n + len(x))
            self.obs = np.resize(self.obs, (size, self.obs.shape[1]))
            self.act = np.resize(self.act, (size, self.act.shape[1]))
        self.obs[self.n:self.n + len(x)], self.act[self.n:self.n + len(x)] = x, a
        self.n += len(x)

    def sample(self, normalizer: Any, device: torch.device) -> tuple[Any, ...]:
        """(observations normalized as the replay batches are, actions, weight, filter)."""
        idx = self.rng.integers(0, self.n, self.batch)
        obs = torch.as_tensor(self.obs[idx], device=device)
        if normalizer is not None:
            obs = normalizer.normalize_torch(obs)
        return obs, torch.as_tensor(self.act[idx], device=device), self.weight, self.q_filter

    def state_dict(self) -> dict[str, Any]:
        """Plain data (a checkpoint loads it with `weights_only`)."""
        return {'obs': self.obs[:self.n], 'act': self.act[:self.n], 'weight': self.weight,
                'batch': self.batch, 'q_filter': self.q_filter,
                'rng': self.rng.bit_generator.state}

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> DemoSet:
        """Inverse of state_dict."""
        out = cls(state['obs'], state['act'], state['weight'], state['batch'], 0,
                  state['q_filter'])
        out.rng.bit_generator.state = state['rng']
        return out
