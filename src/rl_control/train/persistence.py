"""Crash-safe training checkpoints, the `latest` pointer, and what may resume what.

Every file is written to a temporary file in the same directory, fsynced, then `os.replace`d
over the target (atomic on POSIX), and the directory is fsynced: a crash or SIGKILL mid-save
leaves at worst a stray `*.tmp` file and the previous checkpoint intact, never a torn one.

Loading never executes code from the file: a checkpoint is read with
`torch.load(weights_only=True)` (torch/serialization.py, `_weights_only_unpickler`), which builds
only tensors, plain Python containers and numbers, and the numpy arrays, scalars and dtypes
allowed here (`SAFE_GLOBALS`); env snapshots are plain data (envs/snapshot.py). The `latest`
pointer must name a checkpoint file in the same folder. A `latest` that cannot be read (a torn
copy, a full disk) falls back to the previous checkpoint with a warning.

A run directory is locked while a run writes it (`RunLock`: an flock on `<out>/.lock`, released
by the kernel when the process dies, so a lock left by a dead process is taken over): two runs
on one `--out` would race on the progress file and prune each other's checkpoints.
"""
from __future__ import annotations

from collections.abc import Callable
import io
import os
from pathlib import Path
import random
import re
from typing import Any

import numpy as np
import torch

# Re-exported: the atomic writers live in the torch-free bundle/atomic.py (serving path).
from rl_control.bundle.atomic import atomic_write_bytes, atomic_write_text

__all__ = ['CHECKPOINT_FORMAT', 'LATEST', 'ResumeError', 'RunLock', 'RunLockError',
           'atomic_write_bytes', 'atomic_write_text', 'check_resumable', 'latest_checkpoint',
           'load_checkpoint', 'load_latest', 'load_object_state', 'object_state', 'rng_state',
           'save_checkpoint', 'set_rng_state']

LATEST = 'latest'
_PREFIX = 'ckpt_'
_NAME = re.compile(r'ckpt_\d+\.pt')


def _safe_globals() -> list[Any]:
    """The numpy globals a checkpoint may name: arrays, scalars and dtypes, nothing callable else.

    Listed under the module names numpy 1.x and 2.x pickle them with (`numpy.core` became
    `numpy._core`).
    """
    core = getattr(np, '_core', None) or np.core
    rec, scalar = core.multiarray._reconstruct, core.multiarray.scalar
    out: list[Any] = [np.ndarray, np.dtype]
    for mod in ('numpy.core.multiarray', 'numpy._core.multiarray'):
        out += [(rec, f'{mod}._reconstruct'), (scalar, f'{mod}.scalar')]
    out += [getattr(np.dtypes, n) for n in dir(np.dtypes) if n.endswith('DType')]
    return out


SAFE_GLOBALS = _safe_globals()


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
    """The checkpoint `latest` names, or (pointer missing) the newest complete file, or None.

    The pointer must name a `ckpt_<step>.pt` file in `ckpt_dir` (no path: a pointer to
    anywhere else is refused, not followed).
    """
    ckpt_dir = Path(ckpt_dir)
    pointer = ckpt_dir / LATEST
    if pointer.is_file():
        name = pointer.read_text().strip()
        if not _NAME.fullmatch(name):
            raise ResumeError(f'{pointer}: names {name!r}, not a checkpoint file in '
                              f'{ckpt_dir} (ckpt_<step>.pt)')
        candidate = ckpt_dir / name
        if candidate.is_file():
            return candidate
    found = _checkpoints(ckpt_dir)
    return found[-1] if found else None


def _checkpoints(ckpt_dir: Path) -> list[Path]:
    return sorted(p for p in ckpt_dir.glob(f'{_PREFIX}*.pt') if _NAME.fullmatch(p.name))


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """Load a checkpoint written by `save_checkpoint`; nothing in it is executed."""
    with torch.serialization.safe_globals(SAFE_GLOBALS):
        state = torch.load(path, map_location='cpu', weights_only=True)
    if not isinstance(state, dict):
        raise ResumeError(f'{path}: not an rl_control checkpoint (a {type(state).__name__})')
    return state


def load_latest(ckpt_dir: str | Path, warn: Callable[[str], None]
                ) -> tuple[Path, dict[str, Any]] | None:
    """(path, state) of `latest`, or of the newest older checkpoint that loads; None: none.

    An unreadable `latest` (torn, truncated, not a checkpoint) is reported through `warn` and
    the previous checkpoint is used; when none loads, a ResumeError names the first failure.
    """
    first = latest_checkpoint(ckpt_dir)
    if first is None:
        return None
    older = [p for p in reversed(_checkpoints(Path(ckpt_dir))) if p.name < first.name]
    failure = ''
    for path in [first, *older]:
        try:
            state = load_checkpoint(path)
        except Exception as exc:  # noqa: BLE001 - torch/zip/pickle raise anything on a bad file
            why = f'{path}: unreadable checkpoint ({type(exc).__name__}: ' \
                  f'{" ".join(str(exc).split())[:200]})'
            failure = failure or why
            warn(f'{why}; trying the previous one')
            continue
        if path != first:
            warn(f'resuming from {path} instead of {first}')
        return path, state
    raise ResumeError(f'{failure}, and no older checkpoint loads')


CHECKPOINT_FORMAT = 'rl_control.checkpoint/2'

# What must not change between a checkpoint and the config that resumes it: the task, the
# learner and the seed (a run records its seed; another seed would be recorded for a run it did
# not start). total_steps, eval settings and checkpoint cadence may change.
MUST_MATCH = ('env', 'algo', 'seed', 'n_envs', 'env_kwargs', 'time_limit', 'normalize_obs',
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


class RunLockError(ValueError):
    """Another live process is writing the run directory; the message names it."""


class RunLock:
    """An exclusive lock on a run directory for as long as a run writes it (module docstring).

    `fcntl.flock` on `<out>/.lock`, which holds the owner's pid for the message: the kernel
    drops the lock when its process dies, so a lock file left by a dead process is simply
    locked again.
    """

    def __init__(self, run_dir: str | Path) -> None:
        self.path = Path(run_dir) / '.lock'
        self._fd: int | None = None

    def __enter__(self) -> RunLock:
        import fcntl

        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            owner = os.read(fd, 64).decode(errors='replace').strip() or '?'
            os.close(fd)
            raise RunLockError(f'{self.path.parent}: another run (pid {owner}) is writing this '
                               f'run directory (lock {self.path}); wait for it or use another '
                               '--out') from None
        os.ftruncate(fd, 0)
        os.write(fd, f'{os.getpid()}\n'.encode())
        self._fd = fd
        return self

    def __exit__(self, *exc: object) -> None:
        if self._fd is not None:
            os.close(self._fd)  # releases the lock; the file stays (harmless, reused)
            self._fd = None
