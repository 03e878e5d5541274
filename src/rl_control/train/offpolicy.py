"""Off-policy collection and training (SAC, TD3, DDPG; optional HER), as SB3 splits them.

`step` is SB3's `collect_rollouts` for one vector step: act (uniform random actions while fewer
than `learning_starts` env steps were taken, as SB3 does), step the envs, store the transition
with the TRUE final observation of every finished episode, and keep terminated apart from
truncated. `train` is SB3's `train`, called as SB3's `learn` does: after every `train_freq`
vector steps, once MORE than `learning_starts` env steps were taken (SB3:
`num_timesteps > learning_starts`), `gradient_steps` updates on replayed batches (-1: as many as
env transitions were collected since the last training phase, train_freq * n_envs; 0: none).
Env steps count transitions: a vector step of n envs is n of them.

Replayed batches are normalized with the running statistics at sampling time, observations
(`normalize_obs`) and rewards (`normalize_reward`: SB3 VecNormalize's return-std scaling,
updated on every env step, applied to the RAW stored rewards, HER's recomputed ones included),
so that moving statistics never get frozen into stored data.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from rl_control.algos.types import Agent
from rl_control.envs.factory import final_observations, policy_input, step_info
from rl_control.train import finite
from rl_control.train.demos import DemoSet
from rl_control.train.episodes import EpisodeStats


class OffPolicyCollector:
    """Holds the latest observations of the vector env between steps."""

    def __init__(self, envs: Any, agent: Agent, buffer: Any, normalizer: Any, algo_cfg: Any,
                 her: bool, rng: np.random.Generator, stats: EpisodeStats,
                 reward_scaler: Any = None) -> None:
        self.envs, self.agent, self.buffer, self.normalizer = envs, agent, buffer, normalizer
        self.reward_scaler = reward_scaler
        self.her, self.rng, self.stats = her, rng, stats
        self.n_envs = envs.num_envs
        self.act_dim = int(np.prod(envs.single_action_space.shape))
        self.learning_starts = int(algo_cfg.learning_starts)
        self.train_freq = max(1, int(algo_cfg.train_freq))
        self.gradient_steps = int(algo_cfg.gradient_steps)
        self.batch_size = int(algo_cfg.batch_size)
        self.obs: Any = None
        self.iteration = 0  # vector steps taken
        self.demos: DemoSet | None = None  # behaviour-cloning data (train/demos.py)

    def reset(self, seed: int) -> None:
        """Reset every env (a fresh run, or a resume whose envs could not be snapshotted)."""
        self.obs, _ = self.envs.reset(seed=seed)
        finite.check('observation', policy_input(self.obs))
        self.stats.restart()
        self.agent.reset_noise(None)
        if self.reward_scaler is not None:
            self.reward_scaler.reset()
        if self.her:  # HER stores whole episodes: none spans a reset
            self.buffer.end_episodes()

    def step(self, env_steps: int, cut: bool = False,
             actions: np.ndarray | None = None) -> None:
        """One vector step. `cut`: the running episodes end here (stored as truncated).

        `actions`: taken instead of the agent's (demonstrations, train/demos.py).
        """
        x = policy_input(self.obs)
        if self.normalizer is not None:
            self.normalizer.update(x)
        if actions is None and self.demos is not None and self.demos.expert is not None:
            self.demos.label(x)  # DAgger: the agent's own states, the expert's answer
        if actions is None and env_steps < self.learning_starts:
            actions = self.rng.uniform(-1.0, 1.0, (self.n_envs, self.act_dim)).astype(np.float32)
        elif actions is None:
            actions = self.agent.act(self._norm(x), deterministic=False)
        next_obs, rew, terminated, truncated, infos = self.envs.step(actions)
        trunc_store = np.logical_or(truncated, cut)
        real_next = final_observations(next_obs, infos)
        x_next = policy_input(real_next)
        for what, value in (('observation', policy_input(next_obs)), ('reward', rew),
                            ('final observation', x_next)):
            finite.check(what, value)  # before the buffer or a normalizer sees it
        if self.her:  # the HER buffer stores the dict observations (and its info columns)
            info = {k: step_info(infos, k) for k in self.buffer.info_keys}
            self.buffer.add(self.obs, actions, rew, real_next, terminated, trunc_store, info)
        else:
            self.buffer.add(x, actions, rew, x_next, terminated, trunc_store)
        if self.reward_scaler is not None:
            self.reward_scaler.update(rew, np.logical_or(terminated, trunc_store))
        done = self.stats.add(rew, terminated, truncated)
        if done.size:
            self.agent.reset_noise(done)
        self.obs = next_obs
        self.iteration += 1

    def train(self, env_steps: int, total_steps: int) -> dict[str, float] | None:
        """The updates due after this step (None when none are), returning the last metrics."""
        if env_steps <= self.learning_starts or self.iteration % self.train_freq:
            return None
        n = self.gradient_steps if self.gradient_steps >= 0 else self.train_freq * self.n_envs
        self.agent.set_progress(1.0 - env_steps / total_steps)
        metrics = None
        for _ in range(n):
            batch = self.buffer.sample(self.batch_size)
            if self.normalizer is not None:
                batch.obs = self.normalizer.normalize_torch(batch.obs)
                batch.next_obs = self.normalizer.normalize_torch(batch.next_obs)
            if self.reward_scaler is not None:
                batch.rew = self.reward_scaler.scale_torch(batch.rew)
            if self.demos is None:
                metrics = self.agent.update(batch)
            else:
                metrics = self.agent.update(  # type: ignore[call-arg]
                    batch, demos=self.demos.sample(self.normalizer, batch.obs.device))
        return metrics

    def _norm(self, x: np.ndarray) -> np.ndarray:
        return x if self.normalizer is None else self.normalizer.normalize(x)

    def state_dict(self) -> dict[str, Any]:
        """The latest observations, the step counter, the warm-up RNG and the cloned demos."""
        return {'obs': self.obs, 'iteration': self.iteration,
                'rng': self.rng.bit_generator.state,
                'demos': None if self.demos is None else self.demos.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Inverse of state_dict."""
        self.obs, self.iteration = state['obs'], int(state['iteration'])
        self.rng.bit_generator.state = state['rng']
        if state.get('demos') is not None:
            self.demos = DemoSet.from_state(state['demos'])
