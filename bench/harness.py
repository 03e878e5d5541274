"""Side-by-side benchmark harness: run peers as child processes pinned to one core.

Why children: each peer gets a fresh interpreter (no shared torch state, fair import cost), can
be pinned to the same core with `taskset`, and runs with one torch/OMP thread. Runs of the two
peers alternate (A B A B ...) so drift on this shared, noisy machine hits both alike; report
medians and the ratio from the same run.
"""
from __future__ import annotations

import json
import os
from pathlib import Path
import shutil
import statistics
import subprocess
import sys
import time

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / 'bench' / 'results'


def child_env() -> dict[str, str]:
    """Environment for a child peer: one thread everywhere, headless plotting.

    PYTHONDONTWRITEBYTECODE is dropped: with it set (as some sandboxes do) every import of the
    editable rl_control source is compiled again in every process (~10 ms a module), while
    SB3's site-packages come precompiled; a normal Python caches the bytecode of both.
    """
    env = dict(os.environ)
    env.pop('PYTHONDONTWRITEBYTECODE', None)
    env.update(OMP_NUM_THREADS='1', MKL_NUM_THREADS='1', MPLBACKEND='Agg',
               PYTHONPATH=str(ROOT / 'src') + os.pathsep + env.get('PYTHONPATH', ''))
    return env


def run_child(args: list[str], cpu: int | None = 0, timeout: float | None = 1800,
              log: Path | None = None) -> dict:
    """Run `python bench/<script> args` on one core; return the JSON of its last stdout line.

    The child sees BENCH_T0, the wall-clock time just before it was spawned, so "time from
    process start" includes interpreter start and imports, as a user would wait for them.
    `log`: also write the child's stdout and stderr there (to follow a long run).
    """
    cmd = [sys.executable, *args]
    if cpu is not None and shutil.which('taskset'):
        cmd = ['taskset', '-c', str(cpu), *cmd]
    env = child_env()
    env['BENCH_T0'] = repr(time.time())
    if log is None:
        proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True,
                              timeout=timeout, check=False)
    else:  # the child writes straight into the log, which can be followed while it runs
        with log.open('w') as f:
            rc = subprocess.run(cmd, cwd=ROOT, env=env, stdout=f, stderr=subprocess.STDOUT,
                                timeout=timeout, check=False).returncode
        text = log.read_text()
        proc = subprocess.CompletedProcess(cmd, rc, text, text)
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith('{')]
    if proc.returncode != 0 or not lines:
        raise RuntimeError(f'child failed ({proc.returncode}): {" ".join(cmd)}\n'
                           f'{proc.stdout[-2000:]}\n{proc.stderr[-4000:]}')
    return json.loads(lines[-1])


def run_timed(args: list[str], cpu: int | None = 0, timeout: float | None = 1800) -> tuple[
        float, str]:
    """Run `python args` on one core; (wall seconds from just before spawn to exit, stdout)."""
    cmd = [sys.executable, *args]
    if cpu is not None and shutil.which('taskset'):
        cmd = ['taskset', '-c', str(cpu), *cmd]
    env = child_env()
    t0 = time.time()
    env['BENCH_T0'] = repr(t0)
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=timeout, check=False)
    wall = time.time() - t0
    if proc.returncode != 0:
        raise RuntimeError(f'child failed ({proc.returncode}): {" ".join(cmd)}\n'
                           f'{proc.stdout[-2000:]}\n{proc.stderr[-4000:]}')
    return wall, proc.stdout


def median(xs: list[float]) -> float:
    """Median that tolerates an empty list (returns nan)."""
    return statistics.median(xs) if xs else float('nan')


def save(name: str, payload: dict) -> Path:
    """Write a result JSON under bench/results/ (ignored by git) and return its path."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f'{name}.json'
    path.write_text(json.dumps(payload, indent=2))
    return path
