"""SAC's gradients written out by hand: the same losses as sac.py's, without the autograd engine.

Why: on a CPU one SAC update at the project's sizes is a few hundred small tensor operations,
and autograd adds a graph node, saved tensors and a few bookkeeping operators per forward
operator (`bench/sac_update_speed.py --ops` counts them). Every gradient below is the closed form
of what autograd computes for the losses in `sac.py` (tests compare both in float64); the matrix
products are the same ones, so at 256x256 the work is unchanged and only the overhead goes.

Conventions. Actor layers are `nn.Linear` pairs (weight (out, in), bias (out,)), the critic's are
`EnsembleQ`'s stacked (n, in, out) weights and (n, 1, out) biases; gradients come back in each
module's `parameters()` order. `act` is 'relu' or 'tanh'; a hidden activation's derivative is
read from its OUTPUT (relu: out > 0, torch's `threshold_backward`; tanh: 1 - out^2).

Formulas (B = batch size; SB3's `sac.py` defines the losses, see sac.py's docstring):
- critic loss 1/2 sum_i mean_b (Q_i - y)^2: dL/dQ_i = (Q_i - y) / B;
- actor loss mean_b (alpha log pi - min_i Q_i(s, a~)), a~ = tanh(u), u = mu + exp(log_std) eps:
  dL/da~ = -onehot(argmin_i Q_i) dQ/da~ / B (the first minimal head, as SB3's `th.min(dim=1)`),
  and with log pi = sum_j [-eps_j^2/2 - log_std_j + 2 (u_j + softplus(-2 u_j))] - const:
  d log pi / du = 2 tanh(u), d log pi / d log_std = -1 + 2 tanh(u) std eps (eps held fixed), so
  dL/du = (2 alpha a~ + (1 - a~^2) dQ-term) / B, dL/dmu = dL/du,
  dL/dlog_std = (dL/du std eps - alpha / B) where the clamp of log_std is inactive;
- alpha loss -mean_b log_alpha (log pi + target_entropy): dL/dlog_alpha = -mean(log pi + target).
"""
from __future__ import annotations

from collections.abc import Sequence

import torch

from rl_control.algos.networks import LOG_2, LOG_2PI

Layer = tuple[torch.Tensor, torch.Tensor]


def _act_(x: torch.Tensor, act: str) -> torch.Tensor:
    return x.relu_() if act == 'relu' else x.tanh_()


def _act_backward(g: torch.Tensor, out: torch.Tensor, act: str) -> torch.Tensor:
    """The gradient through a hidden activation, from the activation's output.

    Written into `g` (every caller passes a fresh temporary): autograd's kernels, without
    allocating another activation-sized tensor.
    """
    if act == 'relu':
        return torch.ops.aten.threshold_backward.grad_input(g, out, 0, grad_input=g)
    return torch.ops.aten.tanh_backward.grad_input(g, out, grad_input=g)


def mlp_forward(layers: Sequence[Layer], x: torch.Tensor, act: str,
                keep: list[torch.Tensor] | None = None) -> torch.Tensor:
    """An `nn.Linear` stack with `act` between layers; `keep` collects each layer's input."""
    last = len(layers) - 1
    for i, (w, b) in enumerate(layers):
        if keep is not None:
            keep.append(x)
        x = torch.addmm(b, x, w.t())
        if i < last:
            x = _act_(x, act)
    return x


def mlp_backward(layers: Sequence[Layer], inputs: Sequence[torch.Tensor], g: torch.Tensor,
                 act: str) -> list[torch.Tensor]:
    """Parameter gradients [dW0, db0, dW1, ...] of an `mlp_forward` given dL/d(output) `g`."""
    grads: list[torch.Tensor] = []
    for i in range(len(layers) - 1, -1, -1):
        x = inputs[i]
        grads.append(g.sum(0))
        grads.append(torch.mm(g.t(), x))
        if i > 0:
            g = _act_backward(torch.mm(g, layers[i][0]), x, act)
    grads.reverse()
    return grads


def ensemble_forward(ws: Sequence[torch.Tensor], bs: Sequence[torch.Tensor], obs: torch.Tensor,
                     action: torch.Tensor, act: str,
                     keep: list[torch.Tensor] | None = None) -> torch.Tensor:
    """`EnsembleQ.evaluate`: every head's Q values (n, B); `keep` collects each layer's input."""
    x = torch.cat([obs, action], dim=-1)
    x = x.expand(ws[0].shape[0], *x.shape)
    for w, b in zip(ws[:-1], bs[:-1], strict=True):
        if keep is not None:
            keep.append(x)
        x = _act_(torch.baddbmm(b, x, w), act)
    if keep is not None:
        keep.append(x)
    return (x * ws[-1].transpose(1, 2)).sum(-1) + bs[-1][:, :, 0]


def ensemble_backward(ws: Sequence[torch.Tensor], inputs: Sequence[torch.Tensor],
                      dq: torch.Tensor, act: str) -> list[torch.Tensor]:
    """Parameter gradients of an `ensemble_forward` given dL/dQ (n, B).

    In `EnsembleQ.parameters()` order: all weights, then all biases.
    """
    n_layers = len(ws)
    gw: list[torch.Tensor] = [torch.empty(0)] * n_layers
    gb: list[torch.Tensor] = [torch.empty(0)] * n_layers
    d = dq.unsqueeze(-1)  # (n, B, 1)
    h = inputs[-1]
    gw[-1] = torch.bmm(h.transpose(1, 2), d)
    gb[-1] = d.sum(1, keepdim=True)
    g = _act_backward(d * ws[-1].transpose(1, 2), h, act)
    for i in range(n_layers - 2, -1, -1):
        x = inputs[i]
        gw[i] = torch.bmm(x.transpose(1, 2), g)
        gb[i] = g.sum(1, keepdim=True)
        if i > 0:
            g = _act_backward(torch.bmm(g, ws[i].transpose(1, 2)), x, act)
    return gw + gb


def ensemble_action_grad(ws: Sequence[torch.Tensor], inputs: Sequence[torch.Tensor],
                         dq: torch.Tensor, obs_dim: int, act: str) -> torch.Tensor:
    """dL/d(action) (B, act_dim) of an `ensemble_forward` given dL/dQ (n, B), over all heads.

    No parameter gradient is formed: the critic is frozen for the actor loss.
    """
    h = inputs[-1]
    g = _act_backward(dq.unsqueeze(-1) * ws[-1].transpose(1, 2), h, act)
    for i in range(len(ws) - 2, 0, -1):
        g = _act_backward(torch.bmm(g, ws[i].transpose(1, 2)), inputs[i], act)
    return torch.bmm(g, ws[0][:, obs_dim:].transpose(1, 2)).sum(0)


def squash(z: torch.Tensor, eps: torch.Tensor, act_dim: int, log_std_min: float,
           log_std_max: float) -> tuple[torch.Tensor, ...]:
    """From the actor's output (mu | raw log-std) and noise: (a~, log pi, std, raw log-std).

    The arithmetic of `SquashedGaussianActor.forward` (same operators, same order).
    """
    mu, raw = z.split(act_dim, dim=-1)
    log_std = raw.clamp(log_std_min, log_std_max)
    std = log_std.exp()
    u = torch.addcmul(mu, std, eps)
    per_dim = torch.addcmul(-log_std, eps, eps, value=-0.5)
    per_dim = per_dim + 2.0 * (u + torch.nn.functional.softplus(-2.0 * u))
    logp = per_dim.sum(-1) - (0.5 * LOG_2PI + 2.0 * LOG_2) * act_dim
    return torch.tanh(u), logp, std, raw


def squash_backward(a: torch.Tensor, std: torch.Tensor, raw: torch.Tensor, eps: torch.Tensor,
                    d_action: torch.Tensor, d_logp: torch.Tensor | float, log_std_min: float,
                    log_std_max: float) -> torch.Tensor:
    """dL/d(actor output) (B, 2 act_dim) from dL/da~ and dL/dlog pi (see the module docstring)."""
    du = torch.addcmul(d_action, d_action, a * a, value=-1.0).add_(a * (2.0 * d_logp))
    d_log_std = (du * std * eps).sub_(d_logp)
    outside = (raw < log_std_min) | (raw > log_std_max)
    return torch.cat([du, d_log_std.masked_fill_(outside, 0.0)], dim=-1)
