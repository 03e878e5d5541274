"""`rl-control demo` end to end: separate sim and server processes over real DDS."""
from __future__ import annotations

import json
from pathlib import Path
import subprocess
import sys

import pytest

pytestmark = pytest.mark.ros


def run_demo(args: list[str], timeout: float) -> tuple[dict, str]:
    proc = subprocess.run([sys.executable, '-m', 'rl_control.ros.demo', *args],
                          capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-4000:]
    last = proc.stdout.strip().splitlines()[-1]
    return json.loads(last), proc.stderr


def test_demo_plumbing_lockstep_json_and_plot(test_bundle: Path, tmp_path: Path) -> None:
    summary, log = run_demo(['--bundle', str(test_bundle), '--episodes', '3', '--json',
                             '--lockstep', '--out', str(tmp_path)], timeout=120)
    assert summary['episodes'] == 3
    assert 0.0 <= summary['success_rate'] <= 1.0
    assert summary['latency_ms_p50'] > 0 and summary['latency_ms_p99'] >= summary[
        'latency_ms_p50']
    assert Path(summary['plot']).stat().st_size > 10_000
    saved = json.loads((tmp_path / 'demo_results.json').read_text())
    assert len(saved['episodes']) == 3 and all(len(e['distances']) == 50
                                               for e in saved['episodes'])
    assert 'zero command sent' in (tmp_path / 'policy_server.log').read_text()


def test_demo_missing_bundle_is_a_clear_error(tmp_path: Path) -> None:
    proc = subprocess.run([sys.executable, '-m', 'rl_control.ros.demo', '--bundle',
                           str(tmp_path / 'nope'), '--json'], capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode == 2 and 'nope' in proc.stderr


@pytest.mark.slow
def test_shipped_bundle_reaches_goals_served_against_sim_robot(shipped_bundle: Path,
                                                               tmp_path: Path) -> None:
    """Real time: the sim on a wall clock, the server on its 25 Hz timer (what a robot sees)."""
    summary, log = run_demo(['--bundle', str(shipped_bundle), '--episodes', '10', '--json',
                             '--out', str(tmp_path)], timeout=200)
    assert summary['episodes'] == 10
    assert summary['success_rate'] >= 0.9, log[-3000:]


def test_shipped_bundle_lockstep_matches_training_conditions(shipped_bundle: Path,
                                                             tmp_path: Path) -> None:
    """Lockstep on /clock: independent of host load; 20 episodes in a few seconds."""
    summary, log = run_demo(['--bundle', str(shipped_bundle), '--episodes', '20', '--json',
                             '--lockstep', '--seed', '1', '--out', str(tmp_path)], timeout=200)
    assert summary['episodes'] == 20
    assert summary['success_rate'] >= 0.9, log[-3000:]


def test_served_lockstep_rollouts_equal_the_training_env(test_bundle: Path,
                                                         tmp_path: Path) -> None:
    """One policy, sim or 'hardware': the same bundle stepped in the gymnasium env and served
    over DDS against sim_robot (lockstep, ramp-in and rate limit off) follows the same path."""
    import numpy as np

    from rl_control.bundle.io import load_bundle
    from rl_control.envs.factory import make_env, policy_input

    summary, _ = run_demo(['--bundle', str(test_bundle), '--episodes', '3', '--json',
                           '--lockstep', '--seed', '5', '--out', str(tmp_path),
                           '--server-param', 'ramp_in_s:=0.0',
                           '--server-param', 'rate_limit:=[0.0]'], timeout=120)
    episodes = json.loads((tmp_path / 'demo_results.json').read_text())['episodes']
    _spec, policy = load_bundle(test_bundle)
    env = make_env('rl_control/PandaJointReach-v0', seed=0)
    for ep in episodes:
        obs, _ = env.reset(options={'q': ep['start_q'], 'goal': ep['goal']})
        dist = []
        for _ in range(len(ep['distances'])):
            obs, _r, _term, _trunc, info = env.step(policy.act(policy_input(obs)))
            dist.append(info['distance'])
        np.testing.assert_allclose(ep["distances"], dist, atol=2e-5)  # JSON keeps 5 decimals
