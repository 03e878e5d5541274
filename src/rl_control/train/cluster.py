"""Ray for sweeps and multi-seed runs: a private local Ray by default, a cluster by address.

Ray and Optuna are the optional `sweep` extra, imported only inside these functions: `import
rl_control`, training and the serving path never load them, and a command that needs them
fails with one line naming the extra (`MissingExtra`).

Local Ray (no address) is started with `address='local'`, so a sweep never silently attaches
to some other Ray cluster running on the machine, with all cores (or `cpus`), no dashboard and
a small object store (trials exchange only small dicts). With an address it connects to that
cluster; every node must have this package installed the same way (the trainables are
imported by name), and run directories are written on the node a trial ran on (use shared
storage for `--out` to see them all from the driver; the tables come back through Ray anyway).
"""
from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
import importlib
import os
from typing import Any

EXTRA = 'sweep'
INSTALL_HINT = "pip install -e '.[sweep]'"
OBJECT_STORE_BYTES = 200 * 1024 * 1024


class MissingExtra(RuntimeError):
    """Ray (or Optuna) is not installed; the message says how to install the extra."""


def require(command: str, modules: tuple[str, ...] = ('ray',)) -> None:
    """Fail with one line naming the extra when any of `modules` is missing."""
    for name in modules:
        try:
            importlib.import_module(name)
        except ImportError as exc:
            raise MissingExtra(f'`{command}` needs the `{EXTRA}` extra ({name} is not '
                               f'installed: {exc}); install it with {INSTALL_HINT}') from None


@contextmanager
def ray_session(address: str | None = None, cpus: int | None = None) -> Iterator[Any]:
    """Ray for the duration of the block; shut down after, unless it was already running.

    An already initialized Ray (a test fixture, a notebook, a caller running several sweeps)
    is used as it is and left running: whoever started it stops it.
    """
    import ray

    if ray.is_initialized():
        yield ray
        return
    env = {'OMP_NUM_THREADS': os.environ.get('OMP_NUM_THREADS', '1'), 'MPLBACKEND': 'Agg'}
    common: dict[str, Any] = {'include_dashboard': False, 'log_to_driver': False,
                              'logging_level': 'WARNING',
                              'runtime_env': {'env_vars': env}}
    if address:
        ray.init(address=address, **common)
    else:
        ray.init(address='local', num_cpus=cpus or os.cpu_count() or 1,
                 object_store_memory=OBJECT_STORE_BYTES, **common)
    try:
        yield ray
    finally:
        ray.shutdown()


def cpus_per_run(cfg: Any) -> int:
    """CPUs one training run keeps busy: its torch threads, or one per async env worker.

    Capped at the CPUs of the running Ray cluster (so a 4-env async run still schedules on a
    2-core machine, where its workers then share the cores).
    """
    import ray

    threads = cfg.threads if cfg.threads > 0 else 1
    workers = cfg.n_envs if cfg.vec_env == 'async' else 1
    total = int(ray.cluster_resources().get('CPU', 1)) if ray.is_initialized() else 1
    return max(1, min(max(threads, workers), total))
