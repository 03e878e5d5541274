"""Proximal Policy Optimization (Schulman et al., 2017), clip version, with SB3's PPO semantics.

The objective, for one minibatch B of the last rollout, is minimized as a loss:

    r(theta)  = pi_theta(a | s) / pi_old(a | s)
    L_clip    = mean_B  min(r A, clip(r, 1 - eps, 1 + eps) A)
    L_vf      = mean_B  (R - V_pred)^2,   V_pred = V(s), or with `clip_range_vf`:
                V_old(s) + clip(V(s) - V_old(s), -eps_vf, eps_vf)
    loss      = -L_clip + vf_coef L_vf - ent_coef mean_B H[pi_theta(. | s)]

A is GAE(lambda) over the (n_steps, n_envs) rollout (`compute_gae`, shared with A2C: episode
ends cut the bootstrap, time-limit truncations bootstrap from V(final obs)), normalized per
minibatch when `normalize_advantage`; R = A + V_old is the TD(lambda) return (unnormalized A).
The clip removes the incentive to move r outside [1 - eps, 1 + eps], so n_epochs passes over
the same data stay near the policy that collected it.

Matching SB3 (stable_baselines3/ppo/ppo.py `PPO.train`, common/buffers.py `RolloutBuffer`,
common/on_policy_algorithm.py `collect_rollouts`, SB3 2.9.2) lets RL-Zoo hyperparameters
transfer by name:
- the rollout is flattened env-major, sample k = env * n_steps + step (`swap_and_flatten`),
  and each epoch draws one permutation of all n_steps * n_envs samples and cuts it into
  minibatches of batch_size, the last one shorter if batch_size does not divide the rollout
  (`RolloutBuffer.get`). The permutation comes from this agent's own generator (SB3 uses the
  global numpy RNG), saved in `state_dict`;
- advantages are normalized inside each minibatch with the unbiased std + 1e-8;
- value clipping uses the clipped prediction only, not the max of clipped and unclipped losses
  that OpenAI Baselines and CleanRL use;
- early stop (`target_kl`): before each optimizer step, approx_kl = mean((r - 1) - log r)
  (Schulman's low-variance KL estimator) is computed on the minibatch; above 1.5 target_kl that
  minibatch is not applied and the update ends;
- one Adam step (eps 1e-5) per minibatch after clip_grad_norm(max_grad_norm) over all
  parameters; `n_updates` counts epochs, as SB3's `_n_updates`;
- metrics are SB3's logger keys (learning_rate as `BaseAlgorithm._update_learning_rate`): the
  losses averaged over every minibatch evaluated, approx_kl over the last epoch's only, `loss`
  the last minibatch's (the one an early stop skipped, too), explained_variance of the
  rollout's values against the returns (population variances; NaN for constant returns).

Acting is A2C's (see a2c.py): the rollout stores the unclipped Gaussian sample, the env gets it
clipped to [-1, 1]. With gSDE the exploration matrices are drawn at the start of each rollout
and, if sde_sample_freq > 0, every sde_sample_freq vector steps (as `collect_rollouts`);
the agent counts its `act_with_value` calls since the last `update` to know where it is.

The old log-probabilities are not stored during the rollout: `update` recomputes them from the
stored observations and actions before its first step. No parameter changes during a rollout,
so these are the log-probs of the policy that acted (what SB3 stores), and the Rollout type and
the collector stay the ones A2C uses.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any
import warnings

import numpy as np
import torch
from torch import nn

from rl_control.algos.a2c import GaussianActing, compute_gae
from rl_control.algos.networks import (
    GaussianActor,
    ValueNet,
    seeded_init,
    torch_generator,
)
from rl_control.algos.types import Rollout

ADAM_EPS = 1e-5  # SB3's ActorCriticPolicy sets Adam's eps to 1e-5 (its optimizer_kwargs)
_SHUFFLE_STREAM = 0x5050  # spawn key of the minibatch-shuffling stream (see _shuffle_generator)


@dataclass
class PPOConfig:
    """PPO hyperparameters: SB3 names and defaults (n_envs is the run's, in TrainConfig)."""

    hidden_sizes: tuple[int, ...] = (64, 64)
    activation: str = 'tanh'
    lr: float = 3e-4
    lr_schedule: str = 'constant'  # 'linear' = the zoo's `lin_<lr>`; needs set_progress()
    n_steps: int = 2048
    batch_size: int = 64
    n_epochs: int = 10
    gamma: float = 0.99
    gae_lambda: float = 0.95
    clip_range: float = 0.2
    clip_range_vf: float | None = None  # None: no value clipping (it depends on reward scale)
    normalize_advantage: bool = True
    ent_coef: float = 0.0
    vf_coef: float = 0.5
    max_grad_norm: float = 0.5
    # gSDE exploration (SB3 use_sde, full_std); new matrices every sde_sample_freq steps
    # (-1: once per rollout).
    use_sde: bool = False
    sde_sample_freq: int = -1
    target_kl: float | None = None  # None: no early stop
    log_std_init: float = 0.0
    ortho_init: bool = True

    def __post_init__(self) -> None:
        if self.n_steps < 1:
            raise ValueError('n_steps must be >= 1')
        if self.n_epochs < 1:
            raise ValueError('n_epochs must be >= 1')
        # SB3 asserts the same: a std over one advantage is NaN (SB3 issue #440).
        if self.batch_size < (2 if self.normalize_advantage else 1):
            raise ValueError('batch_size must be > 1 with normalize_advantage')
        if not 0.0 <= self.gae_lambda <= 1.0:
            raise ValueError('gae_lambda must be in [0, 1]')
        if self.clip_range <= 0:
            raise ValueError('clip_range must be > 0')
        if self.clip_range_vf is not None and self.clip_range_vf <= 0:
            raise ValueError('clip_range_vf must be > 0, or null for no value clipping')
        if self.target_kl is not None and self.target_kl <= 0:
            raise ValueError('target_kl must be > 0, or null for no early stop')
        if self.lr_schedule not in ('constant', 'linear'):
            raise ValueError(f"lr_schedule must be 'constant' or 'linear', not "
                             f'{self.lr_schedule!r}')


def _shuffle_generator(seed: int | None) -> torch.Generator:
    """The minibatch-shuffling generator: a stream independent of action sampling's."""
    g = torch.Generator()
    if seed is None:
        g.seed()
    else:
        g.manual_seed(int(np.random.SeedSequence([int(seed), _SHUFFLE_STREAM])
                          .generate_state(1)[0]))
    return g


def flatten_env_major(x: torch.Tensor) -> torch.Tensor:
    """(n_steps, n_envs, ...) -> (n_envs * n_steps, ...), sample k = env * n_steps + step.

    SB3's order (RolloutBuffer.swap_and_flatten), so one permutation picks the same samples.
    """
    return x.transpose(0, 1).reshape(-1, *x.shape[2:])


class PPO(GaussianActing):
    """PPO-clip; the loop collects `Rollout`s of n_steps x n_envs, then calls `update`."""

    def __init__(self, obs_dim: int, act_dim: int, cfg: PPOConfig | None = None,
                 seed: int | None = None, device: str = 'cpu') -> None:
        self.cfg = cfg = cfg or PPOConfig()
        self.obs_dim, self.act_dim, self.device = obs_dim, act_dim, torch.device(device)
        with seeded_init(seed):
            self.actor = GaussianActor(obs_dim, act_dim, cfg.hidden_sizes, cfg.activation,
                                       cfg.log_std_init, cfg.ortho_init, cfg.use_sde).to(device)
            self.critic = ValueNet(obs_dim, cfg.hidden_sizes, cfg.activation,
                                   cfg.ortho_init).to(device)
        self.params = [*self.actor.parameters(), *self.critic.parameters()]
        self.optimizer = torch.optim.Adam(self.params, lr=cfg.lr, eps=ADAM_EPS)
        self.base_lrs = [cfg.lr]
        self.generator = torch_generator(seed)  # action samples and gSDE matrices
        self.shuffle_generator = _shuffle_generator(seed)
        self.n_updates = 0  # epochs run, as SB3's _n_updates
        self.rollout_step = 0  # act_with_value calls since the last update (gSDE resampling)
        self._warned_batch = False

    # -- acting -------------------------------------------------------------------------------
    def _obs(self, obs: np.ndarray) -> torch.Tensor:
        return torch.as_tensor(np.asarray(obs, dtype=np.float32), device=self.device)

    def _sde_resample_due(self) -> bool:
        """At a rollout's first step, and every sde_sample_freq steps when that is > 0."""
        freq = self.cfg.sde_sample_freq
        return self.rollout_step == 0 or (freq > 0 and self.rollout_step % freq == 0)

    @torch.inference_mode()
    def act_with_value(self, obs: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """For rollouts: (action to store, action for the env, V(obs)) for (n_envs, obs_dim).

        One call is one vector step of the rollout that the next `update` consumes. The stored
        action is the unclipped Gaussian sample; the env's is it clipped to [-1, 1].
        """
        x = self._obs(obs)
        if self.cfg.use_sde and self._sde_resample_due():
            self.actor.reset_sde(x.shape[0], self.generator)
        self.rollout_step += 1
        a = self.actor.sample(x, self.generator).cpu().numpy()
        return a, np.clip(a, -1.0, 1.0), self.critic(x).cpu().numpy()

    def reset_noise(self, env_indices: Any = None) -> None:
        """No per-episode noise state (gSDE resamples on its own schedule); kept for the loop."""

    # -- learning -----------------------------------------------------------------------------
    def _permutation(self, n: int) -> torch.Tensor:
        """One epoch's order of the n flattened samples (a test may inject SB3's)."""
        return torch.randperm(n, generator=self.shuffle_generator)

    def update(self, rollout: Rollout) -> dict[str, float]:
        """n_epochs of minibatch steps on a rollout of shape (n_steps, n_envs, ...)."""
        cfg = self.cfg
        eps, eps_vf = cfg.clip_range, cfg.clip_range_vf
        with torch.no_grad():
            adv, returns = compute_gae(rollout.rew, rollout.values, rollout.last_value,
                                       rollout.terminated, rollout.truncated,
                                       rollout.truncated_values, cfg.gamma, cfg.gae_lambda)
            obs = flatten_env_major(rollout.obs).to(self.device)
            act = flatten_env_major(rollout.act).to(self.device)
            adv, returns = flatten_env_major(adv).to(self.device), \
                flatten_env_major(returns).to(self.device)
            old_values = flatten_env_major(rollout.values).to(self.device)
            old_logp, _ = self.actor.log_prob_entropy(obs, act)
        n = obs.shape[0]
        if n % cfg.batch_size and not self._warned_batch:
            warnings.warn(f'batch_size {cfg.batch_size} does not divide the rollout of {n} '
                          f'samples: each epoch ends with a minibatch of {n % cfg.batch_size} '
                          '(as in SB3)', stacklevel=2)
            self._warned_batch = True

        pg_losses, value_losses, entropy_losses, clip_fractions = [], [], [], []
        approx_kls: list[torch.Tensor] = []
        continue_training = True
        for _epoch in range(cfg.n_epochs):
            approx_kls = []  # SB3 reports the last epoch's only
            perm = self._permutation(n).to(self.device)
            for start in range(0, n, cfg.batch_size):
                idx = perm[start:start + cfg.batch_size]
                logp, entropy = self.actor.log_prob_entropy(obs[idx], act[idx])
                values = self.critic(obs[idx])
                a = adv[idx]
                if cfg.normalize_advantage and a.numel() > 1:
                    a = (a - a.mean()) / (a.std() + 1e-8)
                log_ratio = logp - old_logp[idx]
                ratio = log_ratio.exp()
                # The clipped surrogate, as a loss (pessimistic: the min of the two terms).
                policy_loss = -torch.min(a * ratio, a * ratio.clamp(1.0 - eps, 1.0 + eps)).mean()
                if eps_vf is None:
                    values_pred = values
                else:
                    old_v = old_values[idx]
                    values_pred = old_v + (values - old_v).clamp(-eps_vf, eps_vf)
                value_loss = nn.functional.mse_loss(returns[idx], values_pred)
                entropy_loss = -entropy.mean()
                loss = policy_loss + cfg.ent_coef * entropy_loss + cfg.vf_coef * value_loss
                with torch.no_grad():
                    approx_kl = ((ratio - 1.0) - log_ratio).mean()
                    clip_fractions.append(((ratio - 1.0).abs() > eps).float().mean())
                pg_losses.append(policy_loss.detach())
                value_losses.append(value_loss.detach())
                entropy_losses.append(entropy_loss.detach())
                approx_kls.append(approx_kl)
                if cfg.target_kl is not None and approx_kl.item() > 1.5 * cfg.target_kl:
                    continue_training = False  # this minibatch's step is not taken
                    break
                self.optimizer.zero_grad(set_to_none=True)
                loss.backward()
                nn.utils.clip_grad_norm_(self.params, cfg.max_grad_norm)
                self.optimizer.step()
            self.n_updates += 1
            if not continue_training:
                break
        self.rollout_step = 0  # the next act_with_value starts a rollout (fresh gSDE matrices)

        with torch.no_grad():
            values_all = old_values.double()
            returns_all = returns.double()
            var_y = returns_all.var(correction=0)
            explained = (1.0 - (returns_all - values_all).var(correction=0) / var_y).item() \
                if var_y > 0 else float('nan')
        def mean(xs: list[torch.Tensor]) -> float:
            return torch.stack(xs).double().mean().item()

        metrics = {
            'entropy_loss': mean(entropy_losses), 'policy_gradient_loss': mean(pg_losses),
            'value_loss': mean(value_losses), 'approx_kl': mean(approx_kls),
            'clip_fraction': mean(clip_fractions), 'loss': loss.item(),
            'explained_variance': explained,
            'std': self.actor.log_std.detach().exp().mean().item(),
            'clip_range': eps, 'learning_rate': self.optimizer.param_groups[0]['lr'],
        }
        if eps_vf is not None:
            metrics['clip_range_vf'] = eps_vf
        return metrics

    # -- persistence --------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """Networks, optimizer, both RNGs and the counters."""
        return {'actor': self.actor.state_dict(), 'critic': self.critic.state_dict(),
                'optimizer': self.optimizer.state_dict(), 'generator': self.generator.get_state(),
                'shuffle_generator': self.shuffle_generator.get_state(),
                'n_updates': self.n_updates, 'rollout_step': self.rollout_step}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Inverse of state_dict."""
        # The gSDE matrices' first dim is n_envs, which may differ from this fresh agent's.
        self.actor.sde_matrices = state['actor']['sde_matrices'].clone()
        self.actor.load_state_dict(state['actor'])
        self.critic.load_state_dict(state['critic'])
        self.optimizer.load_state_dict(state['optimizer'])
        self.generator.set_state(state['generator'])
        self.shuffle_generator.set_state(state['shuffle_generator'])
        self.n_updates = int(state['n_updates'])
        self.rollout_step = int(state['rollout_step'])

    def export_actor(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        """The deterministic policy clip(mu(obs), -1, 1) in the bundle's MLP format."""
        return self.actor.export()
