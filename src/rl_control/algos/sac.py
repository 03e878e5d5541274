"""Soft Actor-Critic (Haarnoja et al., 2018; automatic entropy tuning from the 2019 version).

One update on a minibatch (s, a, r, s', terminated), in Stable-Baselines3's order (`sac.py`),
each network with its own Adam optimizer:
    a~ = tanh(mu(s) + std(s) eps),  eps ~ N(0, I)              (reparameterized, shared below)
    alpha = exp(log_alpha)                                      (its value BEFORE this update)
    1. L_alpha = -mean log_alpha (log pi(a~|s) + target_entropy)     -> ent_coef_optimizer
    2. a' ~ pi(s'),  y = r + gamma (1 - terminated) (min_i Q'_i(s', a') - alpha log pi(a'|s'))
       L_Q = 1/2 sum_i mean (Q_i(s, a) - y)^2                        -> critic_optimizer
    3. L_pi = mean (alpha log pi(a~|s) - min_i Q_i(s, a~)),
       Q the critic just updated, its weights frozen                 -> actor_optimizer
    4. every `target_update_interval` updates:  Q' <- (1 - tau) Q' + tau Q   (Polyak)
With demonstrations to clone (`update(batch, demos=(s_D, a_D, lambda, filter))`,
train/demos.py), step 3 adds Nair et al. 2018's behaviour-cloning loss on the deterministic
action, with their Q-filter (eq. 3-4) when `filter` (else the bracket is 1):
       L_BC = lambda / N_D sum_D [Q(s_D, a_D) > Q(s_D, tanh mu(s_D))] |tanh mu(s_D) - a_D|^2
with log pi(a~|s) = sum_j [log N(u_j; mu_j, std_j) - log(1 - tanh(u_j)^2)], u = mu + std eps, the
tanh term in the exact, stable form 2 (log 2 - u - softplus(-2u)) (Spinning Up; SB3 writes
log(1 - tanh(u)^2 + 1e-6)). Only true terminals stop the bootstrap: a time-limit truncation is
stored with terminated = 0 (Pardo et al., 2018).

Differences from SB3, on purpose: `target_update_interval` counts updates over the whole run
(SB3 counts gradient steps within one `train()` call, so with gradient_steps=1 it updates the
target every step whatever the interval). How the update is made fast on a CPU (gradients
written out in algos/sac_grads.py instead of autograd, fused critic heads, fused Adam) is in
docs/algorithms.md.
"""
from __future__ import annotations

import copy
from dataclasses import dataclass
import math
from typing import Any

import numpy as np
import torch

from rl_control.algos import sac_grads as grads
from rl_control.algos.networks import EnsembleQ, SquashedGaussianActor, linears
from rl_control.algos.optim import ForeachAdam, set_progress_lrs
from rl_control.algos.polyak import polyak_update
from rl_control.algos.seeding import seeded_init, standard_normal, torch_generator
from rl_control.algos.types import Batch, Metrics


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
    train_freq: int = 1  # vector steps (env steps per env) between training phases
    # Updates per training phase; -1: as many as env transitions collected (train_freq * n_envs).
    gradient_steps: int = 1
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
        if self.train_freq < 1 or self.gradient_steps < -1 or self.learning_starts < 0:
            raise ValueError('train_freq must be >= 1, gradient_steps >= -1 (-1: as many as '
                             'env steps collected) and learning_starts >= 0')
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
    """Soft Actor-Critic agent acting in [-1, 1]^act_dim (see the module docstring for the math).

    Random streams (see seeding.py): network init from `seed`'s 'init' stream; action sampling,
    in act() and in update(), from its 'policy' stream (`self.generator`, checkpointed).
    """

    def __init__(self, obs_dim: int, act_dim: int, cfg: SACConfig | None = None,
                 seed: int | None = None, device: str = 'cpu') -> None:
        self.cfg = cfg = cfg or SACConfig()
        self.obs_dim, self.act_dim, self.device = obs_dim, act_dim, torch.device(device)
        with seeded_init(seed):
            self.actor = SquashedGaussianActor(obs_dim, act_dim, cfg.hidden_sizes, cfg.activation,
                                               cfg.log_std_min, cfg.log_std_max).to(device)
            self.critic = EnsembleQ(obs_dim, act_dim, cfg.hidden_sizes, cfg.n_critics,
                                    cfg.activation).to(device)
        # A copy, not a fresh init: building it would draw from the global torch RNG.
        self.critic_target = copy.deepcopy(self.critic).requires_grad_(False)
        self.target_entropy = (-float(act_dim) if cfg.target_entropy == 'auto'
                               else float(cfg.target_entropy))
        self.log_alpha = torch.tensor(math.log(cfg.init_alpha), device=self.device,
                                      requires_grad=cfg.learn_alpha)
        self.generator = torch_generator(seed, 'policy')
        self.actor_optimizer = ForeachAdam([{'params': list(self.actor.parameters()),
                                             'lr': cfg.actor_lr or cfg.lr}])
        self.critic_optimizer = ForeachAdam([{'params': list(self.critic.parameters()),
                                              'lr': cfg.critic_lr or cfg.lr}])
        # None when alpha is fixed (SB3: ent_coef_optimizer is None for a numeric ent_coef).
        self.ent_coef_optimizer = (ForeachAdam([{'params': [self.log_alpha],
                                                 'lr': cfg.alpha_lr or cfg.lr}])
                                   if cfg.learn_alpha else None)
        self._online = list(self.critic.parameters())
        self._target = list(self.critic_target.parameters())
        # The tensors the hand-written update reads (updated in place, so these stay valid).
        self._actor_params = list(self.actor.parameters())
        self._actor_layers = [(m.weight, m.bias) for m in linears(self.actor.net)]
        self._critic_layers = (list(self.critic.weights), list(self.critic.biases))
        self._target_layers = (list(self.critic_target.weights),
                               list(self.critic_target.biases))
        self.n_updates = 0

    @property
    def optimizers(self) -> dict[str, ForeachAdam]:
        """The optimizers by name, in update order (the fixed-alpha case has no ent_coef one)."""
        named = {'ent_coef_optimizer': self.ent_coef_optimizer,
                 'critic_optimizer': self.critic_optimizer,
                 'actor_optimizer': self.actor_optimizer}
        return {k: v for k, v in named.items() if v is not None}

    # -- acting -------------------------------------------------------------------------------
    @torch.inference_mode()
    def act(self, obs: np.ndarray, deterministic: bool = False) -> np.ndarray:
        """Actions in [-1, 1] for a batch (n, obs_dim) or a single observation (obs_dim,)."""
        x = torch.as_tensor(np.asarray(obs, dtype=np.float32), device=self.device)
        single = x.ndim == 1
        # `SquashedGaussianActor.action`'s arithmetic on the layers directly: the same kernels,
        # without the nn.Module call machinery (one call per env step).
        z = grads.mlp_forward(self._actor_layers, x[None] if single else x, self.cfg.activation)
        mu, log_std = z.split(self.act_dim, dim=-1)
        if deterministic:
            out = torch.tanh(mu)
        else:
            std = log_std.clamp(self.cfg.log_std_min, self.cfg.log_std_max).exp()
            out = torch.tanh(mu + std * standard_normal(mu.shape, self.generator, mu))
        out = out.cpu().numpy()
        return out[0] if single else out

    def reset_noise(self, env_indices: Any = None) -> None:
        """No exploration-noise state in SAC (the policy is stochastic); kept for the loop."""

    def set_progress(self, progress_remaining: float) -> None:
        """Apply the learning-rate schedule; progress_remaining goes 1 -> 0 over training."""
        for opt in self.optimizers.values():
            set_progress_lrs(opt, opt.base_lrs, self.cfg.lr_schedule, progress_remaining)

    def reparam_noise(self, obs: torch.Tensor) -> torch.Tensor:
        """Eps ~ N(0, I), one row per observation, from the 'policy' stream.

        A method so that a test can inject the same eps here and into SB3's actor.
        """
        return standard_normal((obs.shape[0], self.act_dim), self.generator, obs)

    # -- learning -----------------------------------------------------------------------------
    def update(self, batch: Batch, demos: tuple[Any, ...] | None = None) -> Metrics:
        """One update of alpha, the critics and the actor, then Polyak (module docstring).

        The gradients are written out (algos/sac_grads.py: the closed forms of what autograd
        computes for these losses), so no autograd graph is built. `demos`: (normalized
        observations, actions, lambda, Q-filter on) for the behaviour-cloning term.
        """
        cfg, n = self.cfg, self.act_dim
        act = cfg.activation
        lo, hi = cfg.log_std_min, cfg.log_std_max
        obs, next_obs = batch.obs, batch.next_obs
        inv_b = 1.0 / obs.shape[0]
        layers = self._actor_layers
        with torch.no_grad():
            eps = self.reparam_noise(obs)
            inputs: list[torch.Tensor] = []
            pi, logp, std, raw = grads.squash(grads.mlp_forward(layers, obs, act, inputs), eps,
                                              n, lo, hi)
            alpha = self.log_alpha.detach().exp()

            # 1. Entropy coefficient: dL/dlog_alpha = -mean(log pi + target).
            if self.ent_coef_optimizer is not None:
                alpha_term = logp + self.target_entropy
                self.log_alpha.grad = alpha_term.mean().neg_().reshape(self.log_alpha.shape)
                self.ent_coef_optimizer.step()
            else:
                alpha_term = None

            # 2. Critics, toward the soft clipped double-Q target.
            next_eps = self.reparam_noise(next_obs)
            next_a, next_logp, _, _ = grads.squash(grads.mlp_forward(layers, next_obs, act),
                                                   next_eps, n, lo, hi)
            tw, tb = self._target_layers
            next_q = grads.ensemble_forward(tw, tb, next_obs, next_a, act).min(0).values
            y = batch.rew + cfg.gamma * (1.0 - batch.terminated) * (next_q - alpha * next_logp)
            cw, cb = self._critic_layers
            kept: list[torch.Tensor] = []
            q = grads.ensemble_forward(cw, cb, obs, batch.act, act, kept)
            td = q - y
            _set_grads(self._online, grads.ensemble_backward(cw, kept, td * inv_b, act))
            self.critic_optimizer.step()

            # 3. Actor, against the critic just updated (no critic gradient is formed).
            kept = []
            q_pi = grads.ensemble_forward(cw, cb, obs, pi, act, kept)
            min_q, head = q_pi.min(0)
            dq = torch.zeros_like(q_pi).scatter_(0, head.unsqueeze(0), -inv_b)
            d_action = grads.ensemble_action_grad(cw, kept, dq, self.obs_dim, act)
            dz = grads.squash_backward(pi, std, raw, eps, d_action, alpha * inv_b, lo, hi)
            actor_grads = grads.mlp_backward(layers, inputs, dz, act)
            bc = None if demos is None else self._bc_grads(*demos)
            if bc is not None:
                torch._foreach_add_(actor_grads, bc[0])
            _set_grads(self._actor_params, actor_grads)
            self.actor_optimizer.step()

            # 4. Target critic.
            self.n_updates += 1
            if self.n_updates % cfg.target_update_interval == 0:
                polyak_update(self._target, self._online, cfg.tau)

        # Computed only if someone reads them (types.Metrics).
        def metrics() -> tuple[torch.Tensor, ...]:
            alpha_loss = (-(alpha.log() * alpha_term).mean() if alpha_term is not None
                          else torch.zeros((), device=self.device))
            return (0.5 * td.square().mean(1).sum(), (alpha * logp - min_q).mean(), alpha_loss,
                    alpha, q.mean(), -logp.mean())
        names = ('critic_loss', 'actor_loss', 'alpha_loss', 'alpha', 'q_mean', 'entropy')
        if bc is None:
            return Metrics(names, metrics)
        return Metrics((*names, 'bc_loss', 'bc_kept'), lambda: (*metrics(), *bc[1:]))

    @torch.no_grad()
    def _bc_grads(self, obs: torch.Tensor, act: torch.Tensor, weight: float, q_filter: bool = True
                  ) -> tuple[list[torch.Tensor], torch.Tensor, torch.Tensor]:
        """The actor's gradients of L_BC (module docstring), its value and the kept share.

        dL/dmu = 2 lambda / N_D * kept * (tanh mu - a_D) * (1 - tanh^2 mu); none for log std.
        """
        cfg, n = self.cfg, self.act_dim
        inputs: list[torch.Tensor] = []
        z = grads.mlp_forward(self._actor_layers, obs, cfg.activation, inputs)
        a = torch.tanh(z[:, :n])
        kept = torch.ones_like(a[:, :1])
        if q_filter:
            cw, cb = self._critic_layers
            q_demo = grads.ensemble_forward(cw, cb, obs, act, cfg.activation).min(0).values
            q_pi = grads.ensemble_forward(cw, cb, obs, a, cfg.activation).min(0).values
            kept = (q_demo > q_pi).to(a.dtype).unsqueeze(1)
        diff = a - act
        dz = torch.zeros_like(z)
        dz[:, :n] = (2.0 * weight / obs.shape[0]) * kept * diff * (1.0 - a * a)
        loss = weight * (kept * diff.square()).sum(1).mean()
        return (grads.mlp_backward(self._actor_layers, inputs, dz, cfg.activation), loss,
                kept.mean())

    # -- persistence --------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """Networks, target, optimizers, log_alpha, sampling RNG and the update counter."""
        return {'actor': self.actor.state_dict(), 'critic': self.critic.state_dict(),
                'critic_target': self.critic_target.state_dict(),
                **{name: opt.state_dict() for name, opt in self.optimizers.items()},
                'log_alpha': self.log_alpha.detach().clone(),
                'generator': self.generator.get_state(), 'n_updates': self.n_updates}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Inverse of state_dict: afterwards act() and update() continue exactly."""
        self.actor.load_state_dict(state['actor'])
        self.critic.load_state_dict(state['critic'])
        self.critic_target.load_state_dict(state['critic_target'])
        with torch.no_grad():
            self.log_alpha.copy_(state['log_alpha'])
        for name, opt in self.optimizers.items():
            opt.load_state_dict(state[name])
        self.generator.set_state(state['generator'])
        self.n_updates = int(state['n_updates'])

    def export_actor(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        """The deterministic policy tanh(mu(obs)) in the bundle's MLP format."""
        return self.actor.export()


def _set_grads(params: list[torch.Tensor], values: list[torch.Tensor]) -> None:
    """Hand the optimizer its gradients (it reads `.grad`, as torch.optim does)."""
    for p, g in zip(params, values, strict=True):
        p.grad = g
