"""Node processes for the demo and the ROS benchmark: start, stop, a private ROS domain.

Each node runs as `python -m <module> --ros-args ...` in its own session with its output in a
log file. A child gets SIGTERM from the kernel if its parent dies (PR_SET_PDEATHSIG), so no
node outlives the process that started it, even on SIGKILL; `stop_process` sends SIGINT (the
policy server brakes to rest first), then SIGKILL after a timeout.
"""
from __future__ import annotations

from collections.abc import Sequence
import json
import os
from pathlib import Path
import random
import signal
import subprocess
import sys
import time
from typing import Any


def ros_args(params: dict[str, Any], params_file: str | None = None) -> list[str]:
    """`--ros-args [--params-file F] -p name:=value ...` (lists/bools in YAML syntax).

    The file comes first: rcl lets whichever source comes LAST win, and `-p` must override it.
    """
    out = ['--ros-args'] + (['--params-file', params_file] if params_file else [])
    for k, v in params.items():
        if isinstance(v, bool):
            s = 'true' if v else 'false'
        elif isinstance(v, list | tuple):
            s = '[' + ', '.join(json.dumps(x) for x in v) + ']'
        else:
            s = str(v) or "''"  # rcl cannot parse `-p name:=` (an empty value)
        out += ['-p', f'{k}:={s}']
    return out


def _load_prctl() -> Any:
    try:
        import ctypes

        return ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):  # not Linux: the finally blocks still clean up
        return None


# Resolved here, in the parent: between fork and exec (where the parent's other threads, e.g.
# DDS, may hold locks) the child must do as little as possible, so it only makes this call.
_PRCTL = _load_prctl()


def _die_with_parent() -> None:
    """Child side of fork: SIGTERM when the parent dies (PR_SET_PDEATHSIG = 1)."""
    if _PRCTL is not None:
        _PRCTL(1, signal.SIGTERM)


def start_node(module: str, params: dict[str, Any], log_path: str | Path | None = None,
               env: dict[str, str] | None = None, extra_ros: Sequence[str] = (),
               params_file: str | None = None) -> subprocess.Popen:
    """Start `python -m module --ros-args -p ...` in its own session, output to `log_path`.

    `extra_ros` are further ROS arguments (`-p name:=value`, `-r from:=to`).
    """
    cmd = [sys.executable, '-u', '-m', module, *ros_args(params, params_file), *extra_ros]
    out: Any = subprocess.DEVNULL
    if log_path is not None:
        out = open(log_path, 'w')  # noqa: SIM115 - owned by the child for its lifetime
    proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=env,  # noqa: PLW1509
                            start_new_session=True, preexec_fn=_die_with_parent)
    proc.log_path = log_path  # type: ignore[attr-defined]
    if log_path is not None:
        out.close()  # the child holds its own descriptor
    return proc


def stop_process(proc: subprocess.Popen, timeout: float = 5.0) -> int | None:
    """SIGINT, wait up to `timeout`, then SIGKILL; returns the exit code."""
    if proc.poll() is None:
        try:
            proc.send_signal(signal.SIGINT)
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5.0)
        except ProcessLookupError:
            pass
    return proc.returncode


def private_env(domain_id: int | None = None) -> dict[str, str]:
    """os.environ with a private ROS domain and localhost-only discovery."""
    env = dict(os.environ)
    env['ROS_DOMAIN_ID'] = str(domain_id if domain_id is not None
                               else random.SystemRandom().randint(101, 199))
    env['ROS_AUTOMATIC_DISCOVERY_RANGE'] = 'LOCALHOST'
    env['ROS_LOCALHOST_ONLY'] = '1'
    env.setdefault('OMP_NUM_THREADS', '1')
    env.setdefault('PYTHONUNBUFFERED', '1')
    return env


def spin_until(node: Any, pred: Any, timeout: float, procs: Sequence[subprocess.Popen] = ()
               ) -> bool:
    """Spin `node` until pred() or timeout; RuntimeError early if a child process died."""
    import rclpy

    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if pred():
            return True
        for p in procs:
            if p.poll() is not None:
                raise RuntimeError(f'{p.args[3]} exited with {p.returncode}; log: '
                                   f'{getattr(p, "log_path", None)}')
        rclpy.spin_once(node, timeout_sec=0.05)
    return pred()
