"""Crash-safe training checkpoints and the `latest` pointer.

Every file is written to a temporary file in the same directory, fsynced, then `os.replace`d
over the target (atomic on POSIX), and the directory is fsynced: a crash or SIGKILL mid-save
leaves at worst a stray `*.tmp` file and the previous checkpoint intact, never a torn one.

Checkpoints are our own files (torch.save, loaded with weights_only=False): they hold optimizer
states, RNG states and the replay buffer. Policy bundles, which people exchange, never need
unpickling (see bundle.py).
"""
from __future__ import annotations

import io
from pathlib import Path
import random
from typing import Any

import numpy as np
import torch

# Re-exported: the atomic writers live in the torch-free core/atomic.py (serving path).
from rl_control.bundle.atomic import atomic_write_bytes, atomic_write_text

__all__ = ['LATEST', 'atomic_write_bytes', 'atomic_write_text', 'latest_checkpoint',
           'load_checkpoint', 'rng_state', 'save_checkpoint', 'set_rng_state']

LATEST = 'latest'
_PREFIX = 'ckpt_'


def rng_state() -> dict[str, Any]:
    """Global RNG states (python, legacy numpy, torch).

    Generators owned by objects (agent, buffer, noise) travel with those objects' state.
    """
    return {'python': random.getstate(), 'numpy': np.random.get_state(),
            'torch': torch.get_rng_state()}


def set_rng_state(state: dict[str, Any]) -> None:
    """Inverse of `rng_state`."""
    random.setstate(state['python'])
    np.random.set_state(state['numpy'])
    torch.set_rng_state(state['torch'])


def save_checkpoint(ckpt_dir: str | Path, step: int, state: dict[str, Any],
                    keep: int = 2) -> Path:
    """Write `ckpt_<step>.pt` atomically, then point `latest` at it; prune older ones.

    The pointer is written after the checkpoint, so `latest` always names a complete file.
    """
    ckpt_dir = Path(ckpt_dir)
    buf = io.BytesIO()
    torch.save(state, buf)
    path = ckpt_dir / f'{_PREFIX}{step:012d}.pt'
    atomic_write_bytes(path, buf.getvalue())
    atomic_write_text(ckpt_dir / LATEST, path.name + '\n')
    if keep > 0:
        for old in sorted(ckpt_dir.glob(f'{_PREFIX}*.pt'))[:-keep]:
            if old != path:
                old.unlink(missing_ok=True)
    return path


def latest_checkpoint(ckpt_dir: str | Path) -> Path | None:
    """The checkpoint `latest` names, or (pointer missing) the newest complete file, or None."""
    ckpt_dir = Path(ckpt_dir)
    pointer = ckpt_dir / LATEST
    if pointer.is_file():
        candidate = ckpt_dir / pointer.read_text().strip()
        if candidate.is_file():
            return candidate
    found = sorted(ckpt_dir.glob(f'{_PREFIX}*.pt'))
    return found[-1] if found else None


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """Load a checkpoint written by `save_checkpoint` (our own file: full unpickling)."""
    return torch.load(path, map_location='cpu', weights_only=False)
