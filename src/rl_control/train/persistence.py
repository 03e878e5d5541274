"""Crash-safe training checkpoints, the `latest` pointer, and what may resume what.

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

__all__ = ['CHECKPOINT_FORMAT', 'LATEST', 'ResumeError', 'atomic_write_bytes',
           'atomic_write_text', 'check_resumable', 'latest_checkpoint', 'load_checkpoint',
           'load_object_state', 'object_state', 'rng_state', 'save_checkpoint', 'set_rng_state']

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


CHECKPOINT_FORMAT = 'rl_control.checkpoint/2'

# What must not change between a checkpoint and the config that resumes it: the task and the
# learner. total_steps, eval settings and checkpoint cadence may change.
MUST_MATCH = ('env', 'algo', 'n_envs', 'env_kwargs', 'time_limit', 'normalize_obs',
              'normalize_reward', 'her', 'algo_kwargs')


class ResumeError(ValueError):
    """A checkpoint that cannot continue this config (different task or learner, old format)."""


def check_resumable(state: dict[str, Any], config: dict[str, Any], path: Path) -> None:
    """Refuse a checkpoint of another format, task or learner, naming what differs."""
    fmt = state.get('format')
    if fmt != CHECKPOINT_FORMAT:
        raise ResumeError(f'{path}: cannot resume: checkpoint format {fmt!r} is not '
                          f'{CHECKPOINT_FORMAT!r} (written by another rl_control version)')
    saved = state['config']
    diff = [k for k in MUST_MATCH if saved.get(k) != config.get(k)]
    if diff:
        raise ResumeError(f'{path}: cannot resume: the config differs from the checkpoint\'s '
                          f'in {", ".join(diff)} (saved: '
                          f'{ {k: saved.get(k) for k in diff} })')


def object_state(obj: Any) -> Any:
    """The object's state_dict(), or else its attributes minus callables (None for None).

    Callables are dropped because e.g. a HER buffer's compute_reward is a bound method of an
    unpicklable simulator env.
    """
    if obj is None:
        return None
    if hasattr(obj, 'state_dict'):
        return obj.state_dict()
    return {k: v for k, v in vars(obj).items() if not callable(v)}


def load_object_state(obj: Any, state: Any) -> None:
    """Inverse of `object_state` (no-op when either is None)."""
    if obj is None or state is None:
        return
    if hasattr(obj, 'load_state_dict'):
        obj.load_state_dict(state)
    else:
        vars(obj).update(state)


def run_state(run: Any) -> dict[str, Any]:
    """A checkpoint's content for a `learn.Trainer` (see learn.py: "Exact resume")."""
    from rl_control.envs.snapshot import vector_env_state

    keep_buffer = run.buffer is not None and run.cfg.save_replay_buffer
    return {
        'format': CHECKPOINT_FORMAT,
        'config': run.cfg.to_dict(),
        'agent': run.agent.state_dict(),
        'normalizer': object_state(run.normalizer),
        'reward_scaler': object_state(run.reward_scaler),
        'buffer': object_state(run.buffer) if keep_buffer else None,
        'collector': run.collector.state_dict(),
        'envs': vector_env_state(run.envs) if run.snapshots else None,
        'episodes': run.stats.state_dict(),
        'rng': rng_state(),
        'counters': {'env_steps': run.env_steps, 'segment': run.segment,
                     'n_evals': run.n_evals, 'wall_s': run.wall_s()},
        'last_metrics': dict(run.last_metrics),
        'last_eval': run.last_eval, 'best_eval': run.best_eval,
    }


def restore_run(run: Any, state: dict[str, Any]) -> None:
    """Inverse of `run_state` on a freshly built Trainer of the same config."""
    from rl_control.envs.snapshot import set_vector_env_state

    run.agent.load_state_dict(state['agent'])
    load_object_state(run.normalizer, state['normalizer'])
    load_object_state(run.reward_scaler, state['reward_scaler'])
    if run.buffer is not None and state['buffer'] is not None:
        load_object_state(run.buffer, state['buffer'])
    run.stats.load_state_dict(state['episodes'])
    set_rng_state(state['rng'])
    c = state['counters']
    run.env_steps, run.segment = c['env_steps'], c['segment']
    run.n_evals, run.wall_offset = c['n_evals'], c['wall_s']
    run.last_metrics = state['last_metrics']
    run.last_eval, run.best_eval = state['last_eval'], state['best_eval']
    run.collector.load_state_dict(state['collector'])
    if state['envs'] is not None:
        set_vector_env_state(run.envs, state['envs'])
        run.restored_envs = True
