"""The optimizer and learning-rate schedules of the algorithms (torch only)."""
from __future__ import annotations

from collections.abc import Sequence
import math
from typing import Any

import torch


class ForeachAdam:
    """Adam (Kingma & Ba, 2015): one fused kernel per param group (`torch._fused_adam_`).

    The same kernel as torch.optim.Adam(fused=True) (bit-identical results, see the tests; it
    agrees with torch's for-loop and foreach Adam to rounding), without torch.optim's per-step
    Python machinery, and without importing torch._dynamo, which torch.optim does on first use
    (seconds of process start-up, paid by every training run). One fused call instead of seven
    `torch._foreach_*` calls matters on a CPU, where foreach ops loop over the tensors and wrap
    every scalar of a scalar list in a tensor (bench/README.md has the figures).
    Groups whose tensors are not all on one device with one dtype take the `torch._foreach_*`
    path (the arithmetic of torch's foreach Adam). One instance per network (as SB3: actor,
    critic, entropy coefficient). Parameters whose grad is None are skipped and keep their own
    step count, as in torch. Interface: param_groups, base_lrs (each group's lr at
    construction, for schedules), zero_grad, step, state_dict, load_state_dict.
    """

    def __init__(self, groups: list[dict[str, Any]], betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8) -> None:
        self.param_groups = [{**g, 'params': list(g['params'])} for g in groups]
        self.base_lrs = [float(g['lr']) for g in groups]
        self.betas, self.eps = betas, eps
        self.state: dict[int, dict[str, Any]] = {}  # by position over all groups

    def _params(self) -> list[torch.Tensor]:
        return [p for g in self.param_groups for p in g['params']]

    def zero_grad(self, set_to_none: bool = True) -> None:
        """Drop (or zero) the gradients of every parameter."""
        for p in self._params():
            if set_to_none:
                p.grad = None
            elif p.grad is not None:
                p.grad.zero_()

    @torch.no_grad()
    def step(self) -> None:
        """One Adam step on every parameter that has a gradient."""
        beta1, beta2 = self.betas
        index = 0
        fast = self.__dict__.setdefault('_fast', {})
        for group in self.param_groups:
            entry = fast.get(index)
            if entry is not None and self._fast_step(group, entry):
                index += len(group['params'])
                continue
            fast.pop(index, None)
            params, grads, avgs, sqs, steps = [], [], [], [], []
            for p in group['params']:
                st = self.state.get(index)
                index += 1
                if p.grad is None:
                    continue
                if st is None:
                    st = self.state[index - 1] = {'step': 0, 'exp_avg': torch.zeros_like(p),
                                                  'exp_avg_sq': torch.zeros_like(p)}
                st['step'] += 1
                params.append(p)
                grads.append(p.grad)
                avgs.append(st['exp_avg'])
                sqs.append(st['exp_avg_sq'])
                steps.append(st['step'])
            if not params:
                continue
            if _fusable(params):
                first = index - len(group['params'])
                step_t = self._step_tensors(first, steps, params)
                torch._fused_adam_(params, grads, avgs, sqs, [], step_t, lr=group['lr'],
                                   beta1=beta1, beta2=beta2, weight_decay=0.0, eps=self.eps,
                                   amsgrad=False, maximize=False)
                if len(params) == len(group['params']) and step_t[0] is step_t[-1]:
                    fast[first] = (params[0].device, avgs, sqs,
                                   [self.state[first + i] for i in range(len(params))],
                                   step_t[0])
                continue
            step_sizes = [-group['lr'] / (1.0 - beta1 ** k) for k in steps]
            bc2_sqrts = [math.sqrt(1.0 - beta2 ** k) for k in steps]
            torch._foreach_lerp_(avgs, grads, 1.0 - beta1)
            torch._foreach_mul_(sqs, beta2)
            torch._foreach_addcmul_(sqs, grads, grads, 1.0 - beta2)
            denom = torch._foreach_sqrt(sqs)
            torch._foreach_div_(denom, bc2_sqrts)
            torch._foreach_add_(denom, self.eps)
            torch._foreach_addcdiv_(params, avgs, denom, step_sizes)

    def _fast_step(self, group: dict[str, Any], entry: tuple) -> bool:
        """The common step, without re-deciding what the previous step decided.

        Taken when every parameter of the group has a gradient again, on the device it was on:
        the group was fusable and its parameters share one step count, whose tensor is held.
        Returns False (take the general path) otherwise. Why: the general path gathers five
        lists and checks every tensor in Python, three times per SAC update; this gathers only
        the new gradients.
        """
        device, avgs, sqs, states, step_t = entry
        params = group['params']
        grads = [p.grad for p in params]
        if any(g is None for g in grads) or params[0].device != device:
            return False
        for st in states:
            st['step'] += 1
        step_t.add_(1.0)
        beta1, beta2 = self.betas
        torch._fused_adam_(params, grads, avgs, sqs, [], [step_t] * len(params),
                           lr=group['lr'], beta1=beta1, beta2=beta2, weight_decay=0.0,
                           eps=self.eps, amsgrad=False, maximize=False)
        return True

    def _step_tensors(self, first: int, steps: list[int],
                      params: list[torch.Tensor]) -> list[torch.Tensor]:
        """The step of each stepped parameter as the float32 scalar tensor the kernel reads.

        The integer steps stay the state (and the checkpoint); a group whose parameters share
        one step count (the usual case) shares one tensor, updated in place with one op.
        """
        cache = self.__dict__.setdefault('_steps', {})
        key = (first, len(params))
        if all(k == steps[0] for k in steps):
            held = cache.get(key)
            if held is None or held[1] != steps[0] - 1 or held[0].device != params[0].device:
                held = (torch.tensor(float(steps[0] - 1), device=params[0].device), steps[0] - 1)
            held[0].add_(1.0)
            cache[key] = (held[0], steps[0])
            return [held[0]] * len(params)
        return [torch.tensor(float(k), device=p.device) for k, p in zip(steps, params,
                                                                        strict=True)]

    def state_dict(self) -> dict[str, Any]:
        """Moments and step counts (by parameter position) and the group learning rates."""
        return {'state': {i: {k: (v.clone() if torch.is_tensor(v) else v) for k, v in s.items()}
                          for i, s in self.state.items()},
                'lrs': [g['lr'] for g in self.param_groups], 'betas': self.betas, 'eps': self.eps}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Inverse of state_dict (same parameter layout)."""
        params = self._params()
        self.state = {}
        self.__dict__.pop('_steps', None)  # rebuilt from the integer steps on the next step
        self.__dict__.pop('_fast', None)  # it holds the replaced moment tensors
        for i, s in state['state'].items():
            i = int(i)
            self.state[i] = {'step': int(s['step']),
                             'exp_avg': s['exp_avg'].clone().to(params[i].device),
                             'exp_avg_sq': s['exp_avg_sq'].clone().to(params[i].device)}
        for g, lr in zip(self.param_groups, state['lrs'], strict=True):
            g['lr'] = lr
        self.betas, self.eps = tuple(state['betas']), float(state['eps'])


def _fusable(params: list[torch.Tensor]) -> bool:
    """Whether `torch._fused_adam_` takes these tensors: one device (CPU or CUDA), one dtype."""
    p0 = params[0]
    return (p0.device.type in ('cpu', 'cuda') and p0.dtype in (torch.float32, torch.float64)
            and all(p.device == p0.device and p.dtype == p0.dtype for p in params))


def scheduled_lr(base_lr: float, schedule: str, progress_remaining: float) -> float:
    """Learning rate under a schedule: 'constant', or 'linear' (SB3 zoo `lin_`: to 0 at end)."""
    if schedule == 'constant':
        return base_lr
    if schedule == 'linear':
        return base_lr * max(0.0, min(1.0, progress_remaining))
    raise ValueError(f"unknown lr_schedule {schedule!r}; expected 'constant' or 'linear'")


def set_progress_lrs(optimizer: Any, base_lrs: Sequence[float], schedule: str,
                     progress_remaining: float) -> None:
    """Set every param group's lr from its base lr and the schedule."""
    for group, lr in zip(optimizer.param_groups, base_lrs, strict=True):
        group['lr'] = scheduled_lr(lr, schedule, progress_remaining)
