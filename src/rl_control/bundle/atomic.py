"""Atomic file writes (stdlib only): the helpers checkpoints and policy bundles share.

Why a module of its own: bundle/io.py is on the policy server's import path, which must not
import torch (seconds of node start-up; test_serving_imports.py), and train/persistence.py
(which does) writes checkpoints with the same helpers.

Every file is written to a temporary file in the same directory, fsynced, then `os.replace`d
over the target (atomic on POSIX), and the directory is fsynced: a crash or SIGKILL mid-write
leaves at worst a stray `*.tmp` file and the previous version intact, never a torn one.
"""
from __future__ import annotations

import os
from pathlib import Path
import tempfile


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    """Write `data` to `path` so that readers see the old file or the whole new one."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f'.{path.name}.', suffix='.tmp', dir=path.parent)
    try:
        os.fchmod(fd, 0o644)  # mkstemp creates 0600; results are meant to be shared
        with os.fdopen(fd, 'wb') as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        # A Python-level failure cleans up; a hard kill leaves the .tmp, never a torn target.
        Path(tmp).unlink(missing_ok=True)
        raise
    _fsync_dir(path.parent)


def atomic_write_text(path: str | Path, text: str) -> None:
    """`atomic_write_bytes` for UTF-8 text."""
    atomic_write_bytes(path, text.encode('utf-8'))


def _fsync_dir(folder: Path) -> None:
    """Make the rename durable; best effort (some filesystems refuse fsync on a directory)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
