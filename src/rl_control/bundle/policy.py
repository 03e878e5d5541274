"""A bundle's actor evaluated in numpy: the serving path (no torch import, kHz loops).

`Policy(network_desc, weights, normalization)` takes the INTERFACES.md "network" description
({kind: mlp, layers: [[in, out], ...], activation: relu|tanh, output: tanh|clip}), weights named
l{i}.weight (out, in) / l{i}.bias, and the observation normalization ({mean, var, clip,
epsilon} or None). bundle/io.py reads policy.yaml + safetensors and calls this constructor.

Single-vector inference reuses preallocated buffers (np.dot/np.add/... with `out=`), so a call
allocates only the returned action; weights are stored transposed and C-contiguous for dot.
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np


class PolicyError(ValueError):
    """The network description and the weights do not fit together."""


class Policy:
    """Deterministic MLP policy: obs vector(s) -> action(s) in [-1, 1]."""

    def __init__(self, network_desc: Mapping[str, Any], weights: Mapping[str, np.ndarray],
                 normalization: Mapping[str, Any] | None = None) -> None:
        if network_desc.get('kind', 'mlp') != 'mlp':
            raise PolicyError(f"network.kind {network_desc.get('kind')!r} is not supported")
        self.activation = str(network_desc.get('activation', 'relu'))
        self.output = str(network_desc.get('output', 'tanh'))
        if self.activation not in ('relu', 'tanh'):
            raise PolicyError(f'network.activation {self.activation!r}: expected relu or tanh')
        if self.output not in ('tanh', 'clip'):
            raise PolicyError(f'network.output {self.output!r}: expected tanh or clip')
        self.w_t: list[np.ndarray] = []
        self.b: list[np.ndarray] = []
        for i, (n_in, n_out) in enumerate(network_desc['layers']):
            w = np.asarray(weights[f'l{i}.weight'], np.float32)
            b = np.asarray(weights[f'l{i}.bias'], np.float32)
            if w.shape != (n_out, n_in) or b.shape != (n_out,):
                raise PolicyError(f'layer {i}: weight {w.shape} / bias {b.shape} do not match '
                                  f'layers[{i}] = [{n_in}, {n_out}]')
            if self.w_t and self.w_t[-1].shape[1] != n_in:
                raise PolicyError(f'layer {i}: input size {n_in} != previous output size')
            self.w_t.append(np.ascontiguousarray(w.T))
            self.b.append(b.copy())
        if not self.w_t:
            raise PolicyError('network.layers is empty')
        self.obs_dim = self.w_t[0].shape[0]
        self.act_dim = self.w_t[-1].shape[1]
        self.mean: np.ndarray | None = None
        if normalization is not None:
            mean = np.asarray(normalization['mean'], np.float32)
            var = np.asarray(normalization['var'], np.float64)
            if mean.shape != (self.obs_dim,) or var.shape != (self.obs_dim,):
                raise PolicyError(f'normalization mean/var must have {self.obs_dim} entries')
            self.mean = mean
            eps = float(normalization.get('epsilon', 1e-8))
            self.inv_std = (1.0 / np.sqrt(var + eps)).astype(np.float32)
            self.clip = float(normalization.get('clip', 10.0))
        # Preallocated buffers for the single-vector path, and everything it would otherwise
        # decide per call (layer loop, activation, clip bounds) decided once here.
        self._x = np.empty(self.obs_dim, np.float32)
        self._h = [np.empty(w.shape[1], np.float32) for w in self.w_t]
        self._hidden = [(w, b, h, np.zeros(h.shape, np.float32))
                        for w, b, h in zip(self.w_t[:-1], self.b[:-1], self._h[:-1], strict=True)]
        self._relu = self.activation == 'relu'
        if self.mean is not None:
            self._lo = np.full(self.obs_dim, -self.clip, np.float32)
            self._hi = np.full(self.obs_dim, self.clip, np.float32)

    def act(self, obs: np.ndarray) -> np.ndarray:
        """Action(s) in [-1, 1] for one vector (obs_dim,) or a batch (n, obs_dim)."""
        obs = np.asarray(obs)
        if obs.ndim == 1:
            return self._act_one(obs)
        return self._act_batch(obs.astype(np.float32, copy=False))

    def _act_one(self, obs: np.ndarray) -> np.ndarray:
        # np.maximum/np.minimum against preallocated bound arrays instead of np.clip: same
        # values (NaN propagates in both), a fraction of clip's Python-level dispatch cost.
        if obs.shape != (self.obs_dim,):
            raise ValueError(f'observation has shape {obs.shape}, expected ({self.obs_dim},)')
        x = self._x
        np.copyto(x, obs, casting='unsafe')
        if self.mean is not None:
            np.subtract(x, self.mean, out=x)
            np.multiply(x, self.inv_std, out=x)
            np.maximum(x, self._lo, out=x)
            np.minimum(x, self._hi, out=x)
        for w, b, h, zero in self._hidden:
            np.dot(x, w, out=h)
            np.add(h, b, out=h)
            if self._relu:
                np.maximum(h, zero, out=h)
            else:
                np.tanh(h, out=h)
            x = h
        h = self._h[-1]
        np.dot(x, self.w_t[-1], out=h)
        np.add(h, self.b[-1], out=h)
        if self.output == 'tanh':
            return np.tanh(h)
        return np.minimum(np.maximum(h, -1.0), 1.0)

    def _act_batch(self, obs: np.ndarray) -> np.ndarray:
        if obs.shape[-1] != self.obs_dim:
            raise ValueError(f'observations have shape {obs.shape}, expected (n, {self.obs_dim})')
        x = obs
        if self.mean is not None:
            x = np.clip((x - self.mean) * self.inv_std, -self.clip, self.clip)
        last = len(self.w_t) - 1
        for i, (w, b) in enumerate(zip(self.w_t, self.b, strict=True)):
            x = x @ w + b
            if i < last:
                x = np.maximum(x, 0.0) if self.activation == 'relu' else np.tanh(x)
        return np.tanh(x) if self.output == 'tanh' else np.clip(x, -1.0, 1.0)
