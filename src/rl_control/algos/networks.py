"""Neural networks for the actor-critic algorithms, plus the actor export format.

Every actor can export its deterministic path as a plain MLP description + numpy weights (the
INTERFACES.md "network" format), so serving needs no torch. Critics are ensembles whose heads
are evaluated in one batched matmul per layer (`torch.baddbmm` over stacked weights): on a CPU,
per-call overhead dominates 256-wide layers, so two critics cost little more than one.
"""
from __future__ import annotations

from collections.abc import Sequence
import math
from typing import Any

import numpy as np
import torch
from torch import nn

from rl_control.algos.seeding import seeded_init, standard_normal, torch_generator

__all__ = ['DeterministicActor', 'EnsembleQ', 'FrozenCritic', 'GaussianActor',
           'SquashedGaussianActor', 'ValueNet', 'min_heads', 'mlp', 'seeded_init',
           'standard_normal', 'torch_generator']

ACTIVATIONS: dict[str, type[nn.Module]] = {'relu': nn.ReLU, 'tanh': nn.Tanh}
LOG_2PI = math.log(2.0 * math.pi)
LOG_2 = math.log(2.0)


def mlp(in_dim: int, hidden: Sequence[int], out_dim: int | None, activation: str = 'relu',
        output_activation: str | None = None) -> nn.Sequential:
    """Linear/activation stack; `out_dim=None` ends with the last hidden activation (a trunk)."""
    layers: list[nn.Module] = []
    sizes = [in_dim, *hidden]
    for a, b in zip(sizes[:-1], sizes[1:], strict=True):
        # In-place ReLU: the Linear's backward never needs its output, so no extra tensor.
        layers += [nn.Linear(a, b), nn.ReLU(inplace=True) if activation == 'relu'
                   else ACTIVATIONS[activation]()]
    if out_dim is not None:
        layers.append(nn.Linear(sizes[-1], out_dim))
        if output_activation is not None:
            layers.append(ACTIVATIONS[output_activation]())
    return nn.Sequential(*layers)


def linears(module: nn.Module) -> list[nn.Linear]:
    """The Linear layers of a module in forward order (for export and initialization)."""
    return [m for m in module.modules() if isinstance(m, nn.Linear)]


def orthogonal_init(module: nn.Module, gain: float) -> None:
    """Orthogonal weights and zero biases (SB3/PPO-paper `ortho_init`)."""
    for layer in linears(module):
        nn.init.orthogonal_(layer.weight, gain=gain)
        nn.init.zeros_(layer.bias)


def export_linears(layers: Sequence[tuple[torch.Tensor, torch.Tensor]], activation: str,
                   output: str) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """(weight, bias) pairs -> ({kind, layers, activation, output}, {l0.weight: ...}).

    Weights keep torch's (out, in) layout; `layers` lists [in, out] per layer.
    """
    desc: dict[str, Any] = {'kind': 'mlp', 'layers': [], 'activation': activation,
                            'output': output}
    weights: dict[str, np.ndarray] = {}
    for i, (w, b) in enumerate(layers):
        desc['layers'].append([int(w.shape[1]), int(w.shape[0])])
        weights[f'l{i}.weight'] = w.detach().cpu().numpy().astype(np.float32).copy()
        weights[f'l{i}.bias'] = b.detach().cpu().numpy().astype(np.float32).copy()
    return desc, weights


class SquashedGaussianActor(nn.Module):
    """SAC actor: a = tanh(mu + std * eps), with log-prob corrected for the tanh squashing.

    Mean and log-std come from one output layer (2 * act_dim wide) to save a matmul per call;
    export keeps only the mean rows, so the served action is tanh(mu), SAC's deterministic action.
    """

    def __init__(self, obs_dim: int, act_dim: int, hidden: Sequence[int] = (256, 256),
                 activation: str = 'relu', log_std_min: float = -20.0,
                 log_std_max: float = 2.0) -> None:
        super().__init__()
        self.act_dim, self.activation = act_dim, activation
        self.log_std_min, self.log_std_max = log_std_min, log_std_max
        self.net = mlp(obs_dim, hidden, 2 * act_dim, activation)

    def forward(self, obs: torch.Tensor, deterministic: bool = False,
                noise: torch.Tensor | None = None,
                generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Return (action in [-1, 1], log pi(action | obs)) shaped (B, act_dim) and (B,).

        log pi = sum_i [log N(u_i; mu_i, std_i) - log(1 - tanh(u_i)^2)], with the tanh term in
        the numerically stable form 2 (log 2 - u - softplus(-2u)) (Spinning Up).
        """
        mu, log_std = self.net(obs).split(self.act_dim, dim=-1)
        log_std = log_std.clamp(self.log_std_min, self.log_std_max)
        if deterministic:
            eps = torch.zeros_like(mu)
        elif noise is not None:
            eps = noise
        else:
            eps = standard_normal(mu.shape, generator, mu)
        u = torch.addcmul(mu, log_std.exp(), eps)
        # Per dimension: -eps^2 / 2 - log_std - 2 (log 2 - u - softplus(-2u)), the constants
        # summed once: 4 ops fewer than term by term (on a CPU each op costs ~3-10 us).
        per_dim = torch.addcmul(-log_std, eps, eps, value=-0.5)
        per_dim = per_dim + 2.0 * (u + nn.functional.softplus(-2.0 * u))
        logp = per_dim.sum(-1) - (0.5 * LOG_2PI + 2.0 * LOG_2) * self.act_dim
        return torch.tanh(u), logp

    def action(self, obs: torch.Tensor, deterministic: bool = False,
               generator: torch.Generator | None = None) -> torch.Tensor:
        """Only the action (no log-prob): the cheap path for acting in the env."""
        mu, log_std = self.net(obs).split(self.act_dim, dim=-1)
        if deterministic:
            return torch.tanh(mu)
        std = log_std.clamp(self.log_std_min, self.log_std_max).exp()
        return torch.tanh(mu + std * standard_normal(mu.shape, generator, mu))

    def export(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        """The deterministic actor tanh(mu(obs)) as an MLP description + numpy weights."""
        ls = linears(self.net)
        pairs = [(m.weight, m.bias) for m in ls[:-1]]
        pairs.append((ls[-1].weight[: self.act_dim], ls[-1].bias[: self.act_dim]))
        return export_linears(pairs, self.activation, 'tanh')


class DeterministicActor(nn.Module):
    """TD3/DDPG actor: a = tanh(MLP(obs))."""

    def __init__(self, obs_dim: int, act_dim: int, hidden: Sequence[int] = (256, 256),
                 activation: str = 'relu') -> None:
        super().__init__()
        self.activation = activation
        self.net = mlp(obs_dim, hidden, act_dim, activation, output_activation='tanh')

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        """Deterministic action in [-1, 1]."""
        return self.net(obs)

    def export(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        """The actor as an MLP description + numpy weights (output tanh)."""
        return export_linears([(m.weight, m.bias) for m in linears(self.net)],
                              self.activation, 'tanh')


class EnsembleQ(nn.Module):
    """n independent Q(s, a) MLPs evaluated together: one `baddbmm` per layer for all heads.

    Weights are stacked as (n, in, out) parameters, each head initialized like nn.Linear
    (U(-1/sqrt(in), 1/sqrt(in))), so the ensemble is n ordinary critics computed in one call.
    - `critic(obs, act)`: every head, (n, B): the critic loss (SB3 `critic(obs, act)`);
    - `critic.q1(obs, act)`: the first head, (B,): TD3/DDPG's actor loss (SB3 `q1_forward`);
    - `critic.frozen(obs, act)`, `critic.frozen.q1(obs, act)`: the same values with the weights
      detached, for an actor loss: its gradient reaches the action (and the actor that produced
      it) but never the critic's parameters, and no weight gradient is computed at all.
    """

    def __init__(self, obs_dim: int, act_dim: int, hidden: Sequence[int] = (256, 256),
                 n_critics: int = 2, activation: str = 'relu') -> None:
        super().__init__()
        self.n_critics = n_critics
        # In place (baddbmm's backward does not need its output): saves one tensor per layer.
        self.act_fn = {'relu': torch.relu_, 'tanh': torch.tanh_}[activation]
        sizes = [obs_dim + act_dim, *hidden, 1]
        self.weights = nn.ParameterList()
        self.biases = nn.ParameterList()
        for a, b in zip(sizes[:-1], sizes[1:], strict=True):
            bound = 1.0 / math.sqrt(a)
            self.weights.append(nn.Parameter(torch.empty(n_critics, a, b).uniform_(-bound, bound)))
            self.biases.append(nn.Parameter(torch.empty(n_critics, 1, b).uniform_(-bound, bound)))

    def forward(self, obs: torch.Tensor, act: torch.Tensor) -> torch.Tensor:
        """Q values of every head, shaped (n_critics, B)."""
        return self.evaluate(list(self.weights), list(self.biases), obs, act)

    def q1(self, obs: torch.Tensor, act: torch.Tensor) -> torch.Tensor:
        """The first head's Q values, shaped (B,)."""
        return self.evaluate([w[:1] for w in self.weights], [b[:1] for b in self.biases],
                             obs, act)[0]

    @property
    def frozen(self) -> FrozenCritic:
        """The critic evaluated with detached weights (see the class docstring)."""
        return FrozenCritic(self)

    def evaluate(self, ws: Sequence[torch.Tensor], bs: Sequence[torch.Tensor], obs: torch.Tensor,
                 act: torch.Tensor) -> torch.Tensor:
        """The MLP heads given by stacked weights `ws` (n, in, out) and biases `bs` (n, 1, out).

        The 1-wide output layer is a multiply and a sum, not a batched matmul: MKL's batched
        GEMM with one output column, and the two batched products of its backward, are several
        times slower on a CPU than the elementwise form (bench/README.md has the figures).
        """
        x = torch.cat([obs, act], dim=-1)
        x = x.expand(ws[0].shape[0], *x.shape)
        for w, b in zip(ws[:-1], bs[:-1], strict=True):
            x = self.act_fn(torch.baddbmm(b, x, w))
        return (x * ws[-1].transpose(1, 2)).sum(-1) + bs[-1][:, :, 0]


class FrozenCritic:
    """An `EnsembleQ` seen through detached weights: `critic.frozen(obs, act)`, `.q1(obs, act)`.

    Why: letting the actor loss backpropagate into the critic's weights (SB3's way; the grads are
    zeroed before the next critic step) computes weight gradients nobody uses: 5-9% of an update
    (docs/algorithms.md). Toggling `requires_grad_` around the actor loss is as fast, but mutates
    the module and, left toggled by an exception, silently stops critic learning; a detached view
    changes nothing.
    """

    __slots__ = ('critic',)

    def __init__(self, critic: EnsembleQ) -> None:
        self.critic = critic

    def __call__(self, obs: torch.Tensor, act: torch.Tensor) -> torch.Tensor:
        """Every head's Q values, (n_critics, B); gradients flow to `act` only."""
        c = self.critic
        return c.evaluate([w.detach() for w in c.weights], [b.detach() for b in c.biases],
                          obs, act)

    def q1(self, obs: torch.Tensor, act: torch.Tensor) -> torch.Tensor:
        """The first head's Q values, (B,); gradients flow to `act` only."""
        c = self.critic
        return c.evaluate([w.detach()[:1] for w in c.weights],
                          [b.detach()[:1] for b in c.biases], obs, act)[0]



def min_heads(q: torch.Tensor) -> torch.Tensor:
    """Elementwise minimum over the heads of (n_heads, B) Q values (clipped double Q).

    `torch.minimum` pairwise: its backward is an elementwise mask, cheaper than `min(0)`'s
    index scatter.
    """
    heads = q.unbind(0)
    out = heads[0]
    for h in heads[1:]:
        out = torch.minimum(out, h)
    return out


class GaussianActor(nn.Module):
    """A2C policy: a Gaussian around mu(obs), as SB3's ActorCriticPolicy.

    Plain: N(mu, exp(log_std)^2) with a state-independent log_std vector. With `sde` (gSDE,
    Raffin et al., 2021; SB3 `use_sde`, full_std): log_std is a (latent, act_dim) matrix, the
    noise is latent(obs) @ E with E ~ N(0, exp(log_std)^2) held fixed between `reset_sde` calls
    (one matrix per env), so exploration is smooth in time; the density is
    N(mu, latent^2 @ exp(log_std)^2 + 1e-6), latent detached (SB3 learn_features=False).
    The env receives the sample clipped to [-1, 1]; the log-prob is of the unclipped sample,
    which is what the rollout stores. Export serves clip(mu(obs)).
    """

    SDE_EPS = 1e-6

    def __init__(self, obs_dim: int, act_dim: int, hidden: Sequence[int] = (64, 64),
                 activation: str = 'tanh', log_std_init: float = 0.0,
                 ortho_init: bool = True, sde: bool = False) -> None:
        super().__init__()
        self.activation, self.sde = activation, sde
        latent = hidden[-1] if hidden else obs_dim
        self.trunk = mlp(obs_dim, hidden, None, activation)
        self.mu = nn.Linear(latent, act_dim)
        shape = (latent, act_dim) if sde else (act_dim,)
        self.log_std = nn.Parameter(torch.full(shape, float(log_std_init)))
        # gSDE exploration matrices, one per env: (n_envs, latent, act_dim).
        self.register_buffer('sde_matrices', torch.zeros(0, latent, act_dim), persistent=True)
        if ortho_init:  # SB3 gains: sqrt(2) for hidden layers, 0.01 for the action layer.
            orthogonal_init(self.trunk, math.sqrt(2.0))
            orthogonal_init(self.mu, 0.01)

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        """Mean action (unclipped)."""
        return self.mu(self.trunk(obs))

    def reset_sde(self, n_envs: int, generator: torch.Generator | None = None) -> None:
        """Draw new gSDE exploration matrices for `n_envs` envs (no-op without gSDE)."""
        if self.sde:
            with torch.inference_mode(False):  # a normal tensor even when called from act()
                std = self.log_std.detach().exp()
                eps = torch.randn((n_envs, *std.shape), generator=generator)
                self.sde_matrices = eps.to(std.device) * std

    def sample(self, obs: torch.Tensor,
               generator: torch.Generator | None = None) -> torch.Tensor:
        """An (unclipped) action per row; with gSDE row i uses env i's exploration matrix."""
        latent = self.trunk(obs)
        mu = self.mu(latent)
        if not self.sde:
            eps = torch.randn(mu.shape, generator=generator).to(mu.device)
            return mu + self.log_std.exp() * eps
        if self.sde_matrices.shape[0] != obs.shape[0]:
            self.reset_sde(obs.shape[0], generator)
        return mu + torch.bmm(latent.unsqueeze(1), self.sde_matrices).squeeze(1)

    def log_prob_entropy(self, obs: torch.Tensor,
                         act: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(log pi(act | obs), entropy), both summed over action dims, shaped (B,)."""
        latent = self.trunk(obs)
        mu = self.mu(latent)
        if self.sde:
            var = latent.detach().square() @ (2.0 * self.log_std).exp()
            log_std = 0.5 * (var + self.SDE_EPS).log()
        else:
            log_std = self.log_std.expand_as(mu)
        logp = (-0.5 * ((act - mu) / log_std.exp()).square() - log_std - 0.5 * LOG_2PI).sum(-1)
        entropy = (0.5 + 0.5 * LOG_2PI + log_std).sum(-1)
        return logp, entropy

    def export(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        """The mean path as an MLP description + numpy weights (output clip to [-1, 1])."""
        return export_linears([(m.weight, m.bias) for m in linears(self)], self.activation,
                              'clip')


class ValueNet(nn.Module):
    """State-value V(obs) for A2C (a separate MLP, as SB3's default `vf` branch)."""

    def __init__(self, obs_dim: int, hidden: Sequence[int] = (64, 64), activation: str = 'tanh',
                 ortho_init: bool = True) -> None:
        super().__init__()
        self.net = mlp(obs_dim, hidden, 1, activation)
        if ortho_init:  # SB3 gains: sqrt(2) hidden, 1 for the value layer.
            orthogonal_init(self.net, math.sqrt(2.0))
            orthogonal_init(linears(self.net)[-1], 1.0)

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        """V(obs) shaped (B,)."""
        return self.net(obs).squeeze(-1)
