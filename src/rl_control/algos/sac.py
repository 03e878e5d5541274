"""Soft Actor-Critic (Haarnoja et al., 2018; automatic entropy tuning from the 2019 version).

The update follows Spinning Up / SB3:
    y      = r + gamma (1 - terminated) (min_i Q'_i(s', a') - alpha log pi(a'|s')),  a' ~ pi(s')
    L_Q    = 1/2 sum_i mean (Q_i(s, a) - y)^2
    L_pi   = mean (alpha log pi(a~|s) - min_i Q_i(s, a~)),                          a~ ~ pi(s)
    L_alpha = -mean log_alpha (log pi(a~|s) + target_entropy)
    Q'     <- (1 - tau) Q' + tau Q

Speed (one CPU core, 256x256 nets, batch 256: ~75% of an update is matmul FLOPs, already the
minimum this update needs; the rest is per-op and optimizer overhead, which these cut):
- the critics are one `EnsembleQ`: every layer of all heads is one batched matmul;
- the critic and alpha losses share no parameters: one backward and one optimizer step for
  both; the actor loss then sees the updated critic through detached weights (no
  requires_grad toggling, no wasted weight gradients); one Adam over three param groups
  (`ForeachAdam`, a few foreach kernels per step, no torch._dynamo import at start-up);
- Polyak averaging is one `_foreach_lerp_`; metrics are read back with a single `.tolist()`.
"""
from __future__ import annotations

from dataclasses import dataclass
import math
from typing import Any

import numpy as np
import torch

from rl_control.algos.networks import (
    EnsembleQ,
    ForeachAdam,
    SquashedGaussianActor,
    min_heads,
    seeded_init,
    set_progress_lrs,
    torch_generator,
)
from rl_control.algos.polyak import polyak_update
from rl_control.algos.types import Batch


@dataclass
class SACConfig:
    """SAC hyperparameters; defaults are SB3's (so RL-Zoo values transfer by name)."""

    hidden_sizes: tuple[int, ...] = (256, 256)
    activation: str = 'relu'
    lr: float = 3e-4
    # Per-network learning rates; None means `lr`.
    actor_lr: float | None = None
    critic_lr: float | None = None
    alpha_lr: float | None = None
    lr_schedule: str = 'constant'  # 'constant' | 'linear' (zoo `lin_`; needs set_progress)
    gamma: float = 0.99
    tau: float = 0.005
    batch_size: int = 256
    buffer_size: int = 1_000_000
    learning_starts: int = 100
    train_freq: int = 1  # env steps (per env) between training phases
    gradient_steps: int = 1  # updates per training phase (update-to-data ratio)
    # 'auto' learns alpha from 1.0, 'auto_0.1' learns it from 0.1, a number fixes it.
    ent_coef: float | str = 'auto'
    target_entropy: float | str = 'auto'  # 'auto' = -act_dim
    n_critics: int = 2
    target_update_interval: int = 1
    log_std_min: float = -20.0
    log_std_max: float = 2.0

    def __post_init__(self) -> None:
        if isinstance(self.ent_coef, str):
            if not self.ent_coef.startswith('auto'):
                raise ValueError(f"ent_coef must be a number, 'auto' or 'auto_<init>', "
                                 f'not {self.ent_coef!r}')
            float(self.ent_coef[5:] or 1.0)  # ValueError on 'auto_x'
        elif self.ent_coef <= 0:
            raise ValueError('ent_coef must be > 0')
        if isinstance(self.target_entropy, str) and self.target_entropy != 'auto':
            raise ValueError(f"target_entropy must be a number or 'auto', "
                             f'not {self.target_entropy!r}')
        if self.n_critics < 1:
            raise ValueError('n_critics must be >= 1')
        if not 0.0 < self.tau <= 1.0:
            raise ValueError('tau must be in (0, 1]')

    @property
    def learn_alpha(self) -> bool:
        """Whether alpha is tuned automatically."""
        return isinstance(self.ent_coef, str)

    @property
    def init_alpha(self) -> float:
        """Initial (or fixed) entropy coefficient."""
        if isinstance(self.ent_coef, str):
            return float(self.ent_coef[5:] or 1.0)
        return float(self.ent_coef)


class SAC:
    """Soft Actor-Critic agent acting in [-1, 1]^act_dim (see module docstring for the math)."""

    def __init__(self, obs_dim: int, act_dim: int, cfg: SACConfig | None = None,
                 seed: int | None = None, device: str = 'cpu') -> None:
        self.cfg = cfg = cfg or SACConfig()
        self.obs_dim, self.act_dim, self.device = obs_dim, act_dim, torch.device(device)
        with seeded_init(seed):
            self.actor = SquashedGaussianActor(obs_dim, act_dim, cfg.hidden_sizes, cfg.activation,
                                               cfg.log_std_min, cfg.log_std_max).to(device)
            self.critic = EnsembleQ(obs_dim, act_dim, cfg.hidden_sizes, cfg.n_critics,
                                    cfg.activation).to(device)
        self.critic_target = EnsembleQ(obs_dim, act_dim, cfg.hidden_sizes, cfg.n_critics,
                                       cfg.activation).to(device)
        self.critic_target.load_state_dict(self.critic.state_dict())
        self.critic_target.requires_grad_(False)
        self.target_entropy = (-float(act_dim) if cfg.target_entropy == 'auto'
                               else float(cfg.target_entropy))
        self.log_alpha = torch.tensor(math.log(cfg.init_alpha), device=self.device,
                                      requires_grad=cfg.learn_alpha)
        self.generator = torch_generator(seed, self.device)
        groups = [{'params': list(self.critic.parameters()), 'lr': cfg.critic_lr or cfg.lr},
                  {'params': list(self.actor.parameters()), 'lr': cfg.actor_lr or cfg.lr}]
        if cfg.learn_alpha:
            groups.append({'params': [self.log_alpha], 'lr': cfg.alpha_lr or cfg.lr})
        self.base_lrs = [g['lr'] for g in groups]
        # One optimizer, three param groups (one lr each): one step call per update.
        self.optimizer = ForeachAdam(groups)
        self._critic_alpha_groups = (0, 2) if cfg.learn_alpha else (0,)
        self._online = list(self.critic.parameters())
        self._target = list(self.critic_target.parameters())
        self.n_updates = 0

    # -- acting -------------------------------------------------------------------------------
    @torch.inference_mode()
    def act(self, obs: np.ndarray, deterministic: bool = False) -> np.ndarray:
        """Actions in [-1, 1] for a batch (n, obs_dim) or a single observation (obs_dim,)."""
        x = torch.as_tensor(np.asarray(obs, dtype=np.float32), device=self.device)
        single = x.ndim == 1
        out = self.actor.action(x[None] if single else x, deterministic, self.generator)
        out = out.cpu().numpy()
        return out[0] if single else out

    def reset_noise(self, env_indices: Any = None) -> None:
        """No exploration-noise state in SAC (the policy is stochastic); kept for the loop."""

    def set_progress(self, progress_remaining: float) -> None:
        """Apply the learning-rate schedule; progress_remaining goes 1 -> 0 over training."""
        set_progress_lrs(self.optimizer, self.base_lrs, self.cfg.lr_schedule, progress_remaining)

    # -- learning -----------------------------------------------------------------------------
    def update(self, batch: Batch) -> dict[str, float]:
        """One gradient step on every network from a minibatch; returns scalar metrics.

        SB3's order: alpha and the critics step first (one backward: their losses share no
        parameters), then the actor against the critics just updated; alpha enters every loss
        as its value before this step.
        """
        cfg = self.cfg
        alpha = self.log_alpha.detach().exp()
        pi, logp = self.actor(batch.obs, generator=self.generator)
        with torch.no_grad():
            next_a, next_logp = self.actor(batch.next_obs, generator=self.generator)
            next_q = min_heads(self.critic_target(batch.next_obs, next_a))
            y = batch.rew + cfg.gamma * (1.0 - batch.terminated) * (next_q - alpha * next_logp)
        q = self.critic(batch.obs, batch.act)
        critic_loss = 0.5 * (q - y).square().mean(1).sum()
        loss = critic_loss
        if cfg.learn_alpha:
            alpha_loss = -(self.log_alpha * (logp.detach() + self.target_entropy)).mean()
            loss = loss + alpha_loss
        else:
            alpha_loss = torch.zeros((), device=self.device)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step(groups=self._critic_alpha_groups)

        # The critic's weights enter detached: the gradient reaches the actor only.
        q_pi = min_heads(self.critic(batch.obs, pi, detach=True))
        actor_loss = (alpha * logp - q_pi).mean()
        actor_loss.backward()
        self.optimizer.step(groups=(1,))
        self.n_updates += 1
        if self.n_updates % cfg.target_update_interval == 0:
            polyak_update(self._target, self._online, cfg.tau)

        vals = torch.stack([critic_loss.detach(), actor_loss.detach(), alpha_loss.detach(),
                            alpha, q.detach().mean(), -logp.detach().mean()]).tolist()
        return dict(zip(('critic_loss', 'actor_loss', 'alpha_loss', 'alpha', 'q_mean',
                         'entropy'), vals, strict=True))

    # -- persistence --------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """Networks, target, optimizer, log_alpha, sampling RNG and the update counter."""
        return {'actor': self.actor.state_dict(), 'critic': self.critic.state_dict(),
                'critic_target': self.critic_target.state_dict(),
                'optimizer': self.optimizer.state_dict(),
                'log_alpha': self.log_alpha.detach().clone(),
                'generator': self.generator.get_state(), 'n_updates': self.n_updates}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Inverse of state_dict: afterwards act() and update() continue exactly."""
        self.actor.load_state_dict(state['actor'])
        self.critic.load_state_dict(state['critic'])
        self.critic_target.load_state_dict(state['critic_target'])
        with torch.no_grad():
            self.log_alpha.copy_(state['log_alpha'])
        self.optimizer.load_state_dict(state['optimizer'])
        self.generator.set_state(state['generator'])
        self.n_updates = int(state['n_updates'])

    def export_actor(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        """The deterministic policy tanh(mu(obs)) in the bundle's MLP format."""
        return self.actor.export()
