"""TD3 (Fujimoto et al., 2018) and DDPG (Lillicrap et al., 2016) as one algorithm.

One update on a minibatch (s, a, r, s', terminated), in Stable-Baselines3's order (`td3.py`),
the critic and the actor each with its own Adam optimizer:
    1. a' = clip(pi'(s') + clip(target_noise * eps, -c, c), -1, 1),  eps ~ N(0, I)   (smoothing)
       y  = r + gamma (1 - terminated) min_i Q'_i(s', a')                    (clipped double Q)
       L_Q = sum_i mean (Q_i(s, a) - y)^2                                  -> critic_optimizer
    2. every `policy_delay`-th update (counted over the run, as SB3's `_n_updates`):
       L_pi = -mean Q_1(s, pi(s)),  Q_1 the first head of the critic just updated, its weights
       frozen                                                              -> actor_optimizer
       then Polyak on both targets: Q' <- (1 - tau) Q' + tau Q,  pi' <- (1 - tau) pi' + tau pi.
DDPG is the same update with one critic, no delay and no target smoothing (`DDPGConfig`).
Only true terminals stop the bootstrap; a time-limit truncation is stored with terminated = 0.

Exploration (act, not update): pi(s) + noise, clipped to [-1, 1]; Gaussian or
Ornstein-Uhlenbeck noise, one process per env, reset at that env's episode end (noise.py says
how OU noise really grows over an episode).
"""
from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from rl_control.algos.networks import DeterministicActor, EnsembleQ, min_heads
from rl_control.algos.noise import GaussianNoise, make_noise
from rl_control.algos.optim import ForeachAdam, set_progress_lrs
from rl_control.algos.polyak import polyak_update
from rl_control.algos.seeding import seeded_init, standard_normal, stream_seed, torch_generator
from rl_control.algos.types import Batch, Metrics


@dataclass
class TD3Config:
    """TD3 hyperparameters (SB3 names and defaults, except 256x256 nets as the TD3 authors' code).

    `action_noise`: exploration noise added by act(): 'gaussian' | 'ou' | 'none', with
    `noise_sigma` (std in the [-1, 1] action box), `ou_theta`, `ou_dt`.
    """

    hidden_sizes: tuple[int, ...] = (256, 256)
    activation: str = 'relu'
    lr: float = 1e-3
    actor_lr: float | None = None
    critic_lr: float | None = None
    lr_schedule: str = 'constant'
    gamma: float = 0.99
    tau: float = 0.005
    batch_size: int = 256
    buffer_size: int = 1_000_000
    learning_starts: int = 100
    train_freq: int = 1
    gradient_steps: int = 1
    n_critics: int = 2
    policy_delay: int = 2
    target_noise: float = 0.2
    target_noise_clip: float = 0.5
    action_noise: str = 'gaussian'
    noise_sigma: float = 0.1
    ou_theta: float = 0.15
    ou_dt: float = 1e-2

    def __post_init__(self) -> None:
        if self.action_noise not in ('gaussian', 'ou', 'none'):
            raise ValueError(f"action_noise must be 'gaussian', 'ou' or 'none', "
                             f'not {self.action_noise!r}')
        if self.n_critics < 1 or self.policy_delay < 1:
            raise ValueError('n_critics and policy_delay must be >= 1')
        if self.train_freq < 1 or self.gradient_steps < -1 or self.learning_starts < 0:
            raise ValueError('train_freq must be >= 1, gradient_steps >= -1 (-1: as many as '
                             'env steps collected) and learning_starts >= 0')
        if not 0.0 < self.tau <= 1.0:
            raise ValueError('tau must be in (0, 1]')

    @classmethod
    def ddpg(cls, **overrides: Any) -> DDPGConfig:
        """DDPG settings (one critic, no delay, no target smoothing, OU noise) + overrides."""
        return DDPGConfig(**overrides)


@dataclass
class DDPGConfig(TD3Config):
    """DDPG = TD3 with n_critics=1, policy_delay=1, target_noise=0 (SB3's DDPG).

    Exploration follows the DDPG paper: Ornstein-Uhlenbeck noise, theta 0.15, sigma 0.2. With
    SB3's dt 1e-2 its std is only about 0.14 after 50 steps from a reset and 0.25 after 200, not
    the stationary 0.365 (noise.py has the table; `noise.ou_std` the formula).
    """

    n_critics: int = 1
    policy_delay: int = 1
    target_noise: float = 0.0
    target_noise_clip: float = 0.0
    action_noise: str = 'ou'
    noise_sigma: float = 0.2


class TD3:
    """TD3 / DDPG agent acting in [-1, 1]^act_dim (see the module docstring).

    Random streams (see seeding.py): network init from `seed`'s 'init' stream, the target
    smoothing noise from its 'target_noise' stream (`self.generator`), the exploration noise from
    its 'exploration' stream (`self.exploration_rng`); all checkpointed.
    """

    def __init__(self, obs_dim: int, act_dim: int, cfg: TD3Config | None = None,
                 seed: int | None = None, device: str = 'cpu') -> None:
        self.cfg = cfg = cfg or TD3Config()
        self.obs_dim, self.act_dim, self.device = obs_dim, act_dim, torch.device(device)
        with seeded_init(seed):
            self.actor = DeterministicActor(obs_dim, act_dim, cfg.hidden_sizes,
                                            cfg.activation).to(device)
            self.critic = EnsembleQ(obs_dim, act_dim, cfg.hidden_sizes, cfg.n_critics,
                                    cfg.activation).to(device)
        self.actor_target = copy.deepcopy(self.actor).requires_grad_(False)
        self.critic_target = copy.deepcopy(self.critic).requires_grad_(False)
        self.critic_optimizer = ForeachAdam([{'params': list(self.critic.parameters()),
                                              'lr': cfg.critic_lr or cfg.lr}])
        self.actor_optimizer = ForeachAdam([{'params': list(self.actor.parameters()),
                                             'lr': cfg.actor_lr or cfg.lr}])
        self._online = [*self.critic.parameters(), *self.actor.parameters()]
        self._target = [*self.critic_target.parameters(), *self.actor_target.parameters()]
        self.generator = torch_generator(seed, 'target_noise')
        # One stream for the run: a noise process rebuilt for another n_envs continues it.
        self.exploration_rng = np.random.default_rng(stream_seed(seed, 'exploration'))
        self.noise: GaussianNoise | None = None  # built on the first act(): needs n_envs
        self.n_updates = 0

    @property
    def optimizers(self) -> dict[str, ForeachAdam]:
        """The optimizers by name, in update order."""
        return {'critic_optimizer': self.critic_optimizer,
                'actor_optimizer': self.actor_optimizer}

    # -- acting -------------------------------------------------------------------------------
    def _make_noise(self, n_envs: int) -> GaussianNoise | None:
        cfg = self.cfg
        return make_noise(cfg.action_noise, n_envs, self.act_dim, cfg.noise_sigma, cfg.ou_theta,
                          cfg.ou_dt, rng=self.exploration_rng)

    @torch.inference_mode()
    def act(self, obs: np.ndarray, deterministic: bool = False) -> np.ndarray:
        """pi(obs) (+ exploration noise unless deterministic), clipped to [-1, 1].

        Takes a batch (n_envs, obs_dim) — one noise process per row — or one observation.
        """
        x = torch.as_tensor(np.asarray(obs, dtype=np.float32), device=self.device)
        single = x.ndim == 1
        a = self.actor(x[None] if single else x).cpu().numpy()
        if not deterministic and self.cfg.action_noise != 'none':
            if self.noise is None or self.noise.n_envs != a.shape[0]:
                self.noise = self._make_noise(a.shape[0])
            a = np.clip(a + self.noise(), -1.0, 1.0)
        return a[0] if single else a

    def reset_noise(self, env_indices: Any = None) -> None:
        """Reset the exploration noise of the given envs (all when None) at episode ends."""
        if self.noise is not None:
            self.noise.reset(env_indices)

    def set_progress(self, progress_remaining: float) -> None:
        """Apply the learning-rate schedule; progress_remaining goes 1 -> 0 over training."""
        for opt in self.optimizers.values():
            set_progress_lrs(opt, opt.base_lrs, self.cfg.lr_schedule, progress_remaining)

    def smoothing_noise(self, like: torch.Tensor) -> torch.Tensor:
        """Eps ~ N(0, I) shaped like the target actions, from the 'target_noise' stream.

        A method so that a test can inject the same eps here and into SB3's TD3.
        """
        return standard_normal(like.shape, self.generator, like)

    # -- learning -----------------------------------------------------------------------------
    def update(self, batch: Batch) -> Metrics:
        """One critic update; every `policy_delay`-th call also the actor and Polyak."""
        cfg = self.cfg
        self.n_updates += 1

        # 1. Critics, toward the smoothed clipped double-Q target.
        with torch.no_grad():
            next_a = self.actor_target(batch.next_obs)
            if cfg.target_noise > 0:
                eps = (cfg.target_noise * self.smoothing_noise(next_a)).clamp(
                    -cfg.target_noise_clip, cfg.target_noise_clip)
                next_a = (next_a + eps).clamp(-1.0, 1.0)
            y = batch.rew + cfg.gamma * (1.0 - batch.terminated) * min_heads(
                self.critic_target(batch.next_obs, next_a))
        q = self.critic(batch.obs, batch.act)
        critic_loss = (q - y).square().mean(1).sum()
        self.critic_optimizer.zero_grad()
        critic_loss.backward()
        self.critic_optimizer.step()
        metrics = [critic_loss.detach(), q.detach().mean()]

        # 2. Delayed actor, against the first head of the critic just updated, then targets.
        delayed = self.n_updates % cfg.policy_delay == 0
        if delayed:
            actor_loss = -self.critic.frozen.q1(batch.obs, self.actor(batch.obs)).mean()
            self.actor_optimizer.zero_grad()
            actor_loss.backward()
            self.actor_optimizer.step()
            polyak_update(self._target, self._online, cfg.tau)
            metrics.append(actor_loss.detach())

        names = ('critic_loss', 'q_mean', 'actor_loss')[:len(metrics)]
        return Metrics(names, metrics)  # read back only if someone looks (types.Metrics)

    # -- persistence --------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """Networks, targets, optimizers, RNGs, exploration noise and the update counter."""
        return {'actor': self.actor.state_dict(), 'critic': self.critic.state_dict(),
                'actor_target': self.actor_target.state_dict(),
                'critic_target': self.critic_target.state_dict(),
                **{name: opt.state_dict() for name, opt in self.optimizers.items()},
                'generator': self.generator.get_state(),
                'exploration_rng': self.exploration_rng.bit_generator.state,
                'noise': None if self.noise is None else
                {'n_envs': self.noise.n_envs, **self.noise.state_dict()},
                'n_updates': self.n_updates}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Inverse of state_dict: afterwards act() and update() continue exactly."""
        for name in ('actor', 'critic', 'actor_target', 'critic_target', *self.optimizers):
            getattr(self, name).load_state_dict(state[name])
        self.generator.set_state(state['generator'])
        self.exploration_rng.bit_generator.state = state['exploration_rng']
        self.n_updates = int(state['n_updates'])
        noise = state.get('noise')
        self.noise = None
        if noise is not None and self.cfg.action_noise != 'none':
            self.noise = self._make_noise(int(noise['n_envs']))
            self.noise.load_state_dict(noise)

    def export_actor(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        """The deterministic actor tanh(MLP(obs)) in the bundle's MLP format."""
        return self.actor.export()

