"""Advantage Actor-Critic (Mnih et al., 2016), synchronous, with SB3's A2C semantics.

Matching SB3 lets RL-Zoo hyperparameters transfer by name:
- separate policy and value MLPs (64x64 tanh by default), state-independent log_std, or
  gSDE exploration (`use_sde`, as the zoo's PandaReachDense A2C uses; see GaussianActor);
- GAE(lambda) over an (n_steps, n_envs) rollout, bootstrapping from the stored values and the
  value of the observation after the last step. An episode end (terminated OR truncated) cuts
  the bootstrap; a time-limit truncation adds gamma * V(final obs) to its reward instead, so
  value estimation bootstraps through time limits exactly as SB3 does;
- one gradient step per rollout on  L = -mean(A log pi) + vf_coef mse(R, V) - ent_coef H,
  clip_grad_norm(max_grad_norm), RMSprop(alpha 0.99, eps 1e-5) by default.

Acting: the rollout stores the UNclipped Gaussian sample (its log-prob is what the gradient
needs) while the env gets the sample clipped to [-1, 1]; `act_with_value` returns both.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from rl_control.algos.networks import GaussianActor, ValueNet
from rl_control.algos.optim import set_progress_lrs
from rl_control.algos.seeding import seeded_init, torch_generator
from rl_control.algos.types import Rollout


@dataclass
class A2CConfig:
    """A2C hyperparameters: SB3 names and defaults (n_envs is the run's, in TrainConfig)."""

    hidden_sizes: tuple[int, ...] = (64, 64)
    activation: str = 'tanh'
    lr: float = 7e-4
    lr_schedule: str = 'constant'  # 'linear' = the zoo's `lin_<lr>`; needs set_progress()
    n_steps: int = 5
    gamma: float = 0.99
    gae_lambda: float = 1.0
    ent_coef: float = 0.0
    vf_coef: float = 0.5
    max_grad_norm: float = 0.5
    use_rms_prop: bool = True
    rms_prop_eps: float = 1e-5
    normalize_advantage: bool = False
    log_std_init: float = 0.0
    ortho_init: bool = True
    # gSDE exploration (SB3 use_sde, full_std, sde_sample_freq=-1: new noise every rollout).
    use_sde: bool = False

    def __post_init__(self) -> None:
        if self.n_steps < 1:
            raise ValueError('n_steps must be >= 1')
        if not 0.0 <= self.gae_lambda <= 1.0:
            raise ValueError('gae_lambda must be in [0, 1]')


def compute_gae(rew: torch.Tensor, values: torch.Tensor, last_value: torch.Tensor,
                terminated: torch.Tensor, truncated: torch.Tensor,
                truncated_values: torch.Tensor, gamma: float,
                gae_lambda: float) -> tuple[torch.Tensor, torch.Tensor]:
    """(advantages, returns), shaped (T, n_envs), as SB3's compute_returns_and_advantage.

    Step t's transition ended its episode if terminated[t] or truncated[t]; for a truncation
    (not a termination) the reward is augmented with gamma * V(final obs).
    """
    done = torch.maximum(terminated, truncated)
    rew = rew + gamma * truncated_values * truncated * (1.0 - terminated)
    adv = torch.zeros_like(rew)
    last_gae = torch.zeros_like(last_value)
    next_value = last_value
    for t in reversed(range(rew.shape[0])):
        nonterminal = 1.0 - done[t]
        delta = rew[t] + gamma * next_value * nonterminal - values[t]
        last_gae = delta + gamma * gae_lambda * nonterminal * last_gae
        adv[t] = last_gae
        next_value = values[t]
    return adv, adv + values


class GaussianActing:
    """Acting and the lr schedule shared by the on-policy agents (A2C, PPO).

    Needs `_obs`, `actor` (a GaussianActor), `critic`, `generator`, `optimizer`, `base_lrs`
    and `cfg.lr_schedule` on the agent.
    """

    _obs: Any
    actor: Any
    critic: Any
    generator: Any
    optimizer: Any
    base_lrs: Any
    cfg: Any

    @torch.inference_mode()
    def act(self, obs: np.ndarray, deterministic: bool = False) -> np.ndarray:
        """Actions in [-1, 1]: the clipped mean, or a clipped sample (batch or one obs)."""
        x = self._obs(obs)
        single = x.ndim == 1
        x = x[None] if single else x
        a = self.actor(x) if deterministic else self.actor.sample(x, self.generator)
        out = a.clamp(-1.0, 1.0).cpu().numpy()
        return out[0] if single else out

    @torch.inference_mode()
    def value(self, obs: np.ndarray) -> np.ndarray:
        """V(obs) for a batch of observations, shaped (n,)."""
        return self.critic(self._obs(obs)).cpu().numpy()

    def set_progress(self, progress_remaining: float) -> None:
        """Apply the learning-rate schedule; progress_remaining goes 1 -> 0 over training."""
        set_progress_lrs(self.optimizer, self.base_lrs, self.cfg.lr_schedule, progress_remaining)


class A2C(GaussianActing):
    """Synchronous advantage actor-critic; the loop collects `Rollout`s of n_steps x n_envs.

    Random streams (see seeding.py): network init from `seed`'s 'init' stream, action sampling
    and gSDE matrices from its 'policy' stream (`self.generator`, checkpointed).
    """

    def __init__(self, obs_dim: int, act_dim: int, cfg: A2CConfig | None = None,
                 seed: int | None = None, device: str = 'cpu') -> None:
        self.cfg = cfg = cfg or A2CConfig()
        self.obs_dim, self.act_dim, self.device = obs_dim, act_dim, torch.device(device)
        with seeded_init(seed):
            self.actor = GaussianActor(obs_dim, act_dim, cfg.hidden_sizes, cfg.activation,
                                       cfg.log_std_init, cfg.ortho_init, cfg.use_sde).to(device)
            self.critic = ValueNet(obs_dim, cfg.hidden_sizes, cfg.activation,
                                   cfg.ortho_init).to(device)
        self.params = [*self.actor.parameters(), *self.critic.parameters()]
        if cfg.use_rms_prop:
            self.optimizer: torch.optim.Optimizer = torch.optim.RMSprop(
                self.params, lr=cfg.lr, alpha=0.99, eps=cfg.rms_prop_eps, weight_decay=0.0)
        else:
            self.optimizer = torch.optim.Adam(self.params, lr=cfg.lr, eps=1e-5)
        self.base_lrs = [cfg.lr]
        self.generator = torch_generator(seed, 'policy')
        self.n_updates = 0

    # -- acting -------------------------------------------------------------------------------
    def _obs(self, obs: np.ndarray) -> torch.Tensor:
        return torch.as_tensor(np.asarray(obs, dtype=np.float32), device=self.device)

    @torch.inference_mode()
    def act_with_value(self, obs: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """For rollouts: (action to store, action for the env, V(obs)) for (n_envs, obs_dim).

        The stored action is the unclipped Gaussian sample; the env's is it clipped to [-1, 1].
        """
        x = self._obs(obs)
        a = self.actor.sample(x, self.generator).cpu().numpy()
        return a, np.clip(a, -1.0, 1.0), self.critic(x).cpu().numpy()

    def reset_noise(self, env_indices: Any = None) -> None:
        """No noise state (the Gaussian policy explores); kept so every agent has it."""

    # -- learning -----------------------------------------------------------------------------
    def update(self, rollout: Rollout) -> dict[str, float]:
        """One gradient step on a rollout of shape (n_steps, n_envs, ...)."""
        cfg = self.cfg
        rollout = rollout.to(self.device)  # the collector builds it on the CPU
        with torch.no_grad():
            adv, returns = compute_gae(rollout.rew, rollout.values, rollout.last_value,
                                       rollout.terminated, rollout.truncated,
                                       rollout.truncated_values, cfg.gamma, cfg.gae_lambda)
        obs = rollout.obs.reshape(-1, self.obs_dim)
        act = rollout.act.reshape(-1, self.act_dim)
        adv, returns = adv.reshape(-1), returns.reshape(-1)
        if cfg.normalize_advantage and adv.numel() > 1:
            adv = (adv - adv.mean()) / (adv.std() + 1e-8)
        logp, entropy = self.actor.log_prob_entropy(obs, act)
        values = self.critic(obs)
        policy_loss = -(adv * logp).mean()
        value_loss = nn.functional.mse_loss(values, returns)
        entropy_loss = -entropy.mean()
        loss = policy_loss + cfg.ent_coef * entropy_loss + cfg.vf_coef * value_loss
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        grad_norm = nn.utils.clip_grad_norm_(self.params, cfg.max_grad_norm)
        self.optimizer.step()
        self.n_updates += 1
        # gSDE: the next rollout explores with fresh matrices (SB3 sde_sample_freq=-1).
        self.actor.reset_sde(rollout.obs.shape[1], self.generator)
        with torch.no_grad():
            var_y = returns.var()
            explained = 1.0 - (returns - values).var() / var_y if var_y > 0 else var_y * 0
        vals = torch.stack([policy_loss.detach(), value_loss.detach(), entropy_loss.detach(),
                            grad_norm, explained, self.actor.log_std.detach().exp().mean()
                            ]).tolist()
        return dict(zip(('policy_loss', 'value_loss', 'entropy_loss', 'grad_norm',
                         'explained_variance', 'std'), vals, strict=True))

    # -- persistence --------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """Networks, optimizer, sampling RNG and the update counter."""
        return {'actor': self.actor.state_dict(), 'critic': self.critic.state_dict(),
                'optimizer': self.optimizer.state_dict(), 'generator': self.generator.get_state(),
                'n_updates': self.n_updates}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Inverse of state_dict."""
        # The gSDE matrices' first dim is n_envs, which may differ from this fresh agent's; a
        # checkpoint is loaded on the CPU, whatever device the agent is on.
        self.actor.sde_matrices = state['actor']['sde_matrices'].to(self.device, copy=True)
        self.actor.load_state_dict(state['actor'])
        self.critic.load_state_dict(state['critic'])
        self.optimizer.load_state_dict(state['optimizer'])
        self.generator.set_state(state['generator'])
        self.n_updates = int(state['n_updates'])

    def export_actor(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        """The deterministic policy clip(mu(obs), -1, 1) in the bundle's MLP format."""
        return self.actor.export()
