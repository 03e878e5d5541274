"""Fixtures for tests that run nodes as separate processes over real DDS.

test/conftest.py already put this run on a private ROS_DOMAIN_ID with localhost-only
discovery; child processes inherit os.environ. Every child is started in its own session and
stopped (SIGINT, then SIGKILL) in a finally block, and dies with the test process anyway
(PR_SET_PDEATHSIG), so no node outlives a test.
"""
from __future__ import annotations

from collections.abc import Callable, Iterator
import os
from pathlib import Path
import sys
import threading
import time
from typing import Any

import numpy as np
import pytest

rclpy = pytest.importorskip('rclpy', reason='ROS 2 Python packages (rclpy) are not installed')

from rl_control.ros.demo import start_node, stop_process  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
SHIPPED_BUNDLE = REPO / 'models' / 'panda_reach_sac'


# --------------------------------------------------------------------------------------------
# bundles
# --------------------------------------------------------------------------------------------
class _RandomActor:
    """A tiny randomly initialised MLP actor, exported like a trained one (plumbing only)."""

    def __init__(self, obs_dim: int, act_dim: int, hidden: int, seed: int) -> None:
        rng = np.random.default_rng(seed)
        self.layers = [[obs_dim, hidden], [hidden, act_dim]]
        self.weights = {}
        for i, (n_in, n_out) in enumerate(self.layers):
            self.weights[f'l{i}.weight'] = rng.normal(0, 1 / np.sqrt(n_in), (n_out, n_in))
            self.weights[f'l{i}.bias'] = rng.normal(0, 0.1, n_out)

    def export_actor(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        return ({'kind': 'mlp', 'layers': self.layers, 'activation': 'relu',
                 'output': 'tanh'}, self.weights)


def make_test_bundle(out_dir: Path, seed: int = 0, hidden: int = 32) -> Path:
    """A Panda-reach bundle with a random actor, written by the real bundle code."""
    from rl_control.bundle.io import save_bundle
    from rl_control.envs.panda_reach import panda_contract

    contract = panda_contract()
    meta = {'env_id': 'rl_control/PandaJointReach-v0', 'env_kwargs': {}, 'time_limit': None,
            'goal_env': True, 'obs_dim': contract.obs_spec.size,
            'act_dim': contract.act_spec.size, 'contract': contract,
            'obs_terms': [{'name': 'observation', 'size': contract.obs_spec.size - 3},
                          {'name': 'desired_goal', 'size': 3}],
            'action_low': [-1.0] * 7, 'action_high': [1.0] * 7}
    agent = _RandomActor(contract.obs_spec.size, contract.act_spec.size, hidden, seed)
    return save_bundle(out_dir, agent, None, meta, {'algo': 'sac', 'seed': seed}, None,
                       'test fixture (random actor)')


@pytest.fixture(scope='session')
def test_bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_test_bundle(tmp_path_factory.mktemp('bundle') / 'random_actor')


@pytest.fixture(scope='session')
def shipped_bundle() -> Path:
    if not (SHIPPED_BUNDLE / 'policy.yaml').is_file():
        pytest.skip(f'shipped bundle {SHIPPED_BUNDLE} not present yet')
    return SHIPPED_BUNDLE


# --------------------------------------------------------------------------------------------
# processes
# --------------------------------------------------------------------------------------------
class Nodes:
    """Starts node processes; `stop_all` (called by the fixture) stops every one of them."""

    def __init__(self, log_dir: Path) -> None:
        self.log_dir = log_dir
        self.procs: list[Any] = []

    def start(self, module: str, params: dict[str, Any], name: str | None = None,
              extra_ros: list[str] | None = None) -> Any:
        name = name or module.rsplit('.', 1)[-1]
        log = self.log_dir / f'{name}.log'
        proc = start_node(module, params, log, dict(os.environ), extra_ros or [])
        self.procs.append(proc)
        return proc

    def log(self, proc: Any) -> str:
        try:
            return Path(proc.log_path).read_text()
        except OSError:
            return ''

    def stop(self, proc: Any, timeout: float = 5.0) -> int | None:
        return stop_process(proc, timeout)

    def stop_all(self) -> None:
        for p in reversed(self.procs):
            stop_process(p, 5.0)


@pytest.fixture
def nodes(tmp_path: Path) -> Iterator[Nodes]:
    n = Nodes(tmp_path)
    try:
        yield n
    finally:
        n.stop_all()


def server_params(bundle: Path, **over: Any) -> dict[str, Any]:
    """policy_server parameters for tests: private topic names, autostart."""
    p: dict[str, Any] = {'bundle': str(bundle), 'autostart': True,
                         'joint_state_topic': '/test/joint_states',
                         'command_topic': '/test/commands', 'goal_topic': '/test/goal',
                         'diagnostics_period_s': 0.5}
    p.update(over)
    return p


# --------------------------------------------------------------------------------------------
# the test's own rclpy node
# --------------------------------------------------------------------------------------------
class Probe:
    """A test-side rclpy node spinning in a thread: publishes inputs, records outputs."""

    def __init__(self) -> None:
        from rclpy.executors import SingleThreadedExecutor
        from rclpy.node import Node

        self.node = Node(f'probe_{os.getpid()}_{time.monotonic_ns() % 100000}')
        self.records: dict[str, list[tuple[float, Any]]] = {}
        self.lock = threading.Lock()
        self.executor = SingleThreadedExecutor()
        self.executor.add_node(self.node)
        self._thread = threading.Thread(target=self.executor.spin, daemon=True)
        self._thread.start()

    def record(self, msg_type: Any, topic: str, qos: Any) -> list[tuple[float, Any]]:
        rec: list[tuple[float, Any]] = []
        self.records[topic] = rec

        def cb(msg: Any) -> None:
            with self.lock:
                rec.append((time.monotonic(), msg))

        self.node.create_subscription(msg_type, topic, cb, qos)
        return rec

    def publisher(self, msg_type: Any, topic: str, qos: Any) -> Any:
        return self.node.create_publisher(msg_type, topic, qos)

    def call(self, srv_type: Any, name: str, timeout: float = 10.0) -> Any:
        client = self.node.create_client(srv_type, name)
        assert client.wait_for_service(timeout_sec=timeout), f'{name} not available'
        fut = client.call_async(srv_type.Request())
        end = time.monotonic() + timeout
        while not fut.done() and time.monotonic() < end:
            time.sleep(0.01)
        assert fut.done(), f'{name} did not answer'
        return fut.result()

    def snapshot(self, topic: str) -> list[tuple[float, Any]]:
        with self.lock:
            return list(self.records[topic])

    def close(self) -> None:
        self.executor.shutdown(timeout_sec=1.0)
        self._thread.join(timeout=2.0)
        self.node.destroy_node()


@pytest.fixture(scope='session')
def ros_context() -> Iterator[None]:
    from rclpy.signals import SignalHandlerOptions

    rclpy.init(signal_handler_options=SignalHandlerOptions.NO)
    try:
        yield
    finally:
        rclpy.shutdown()


@pytest.fixture
def probe(ros_context: None) -> Iterator[Probe]:
    p = Probe()
    try:
        yield p
    finally:
        p.close()


def wait_for(pred: Callable[[], Any], timeout: float, what: str = 'condition',
             procs: list[Any] | None = None, period: float = 0.02) -> Any:
    """Poll `pred` until truthy; fail with `what` (and a dead child's exit) on timeout."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        v = pred()
        if v:
            return v
        for p in procs or []:
            if p.poll() is not None:
                log = Path(p.log_path).read_text() if getattr(p, 'log_path', None) else ''
                pytest.fail(f'{p.args[3]} exited ({p.returncode}) while waiting for {what}:\n'
                            f'{log[-3000:]}')
        time.sleep(period)
    pytest.fail(f'timed out after {timeout} s waiting for {what}')


PYTHON = sys.executable
