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

from rl_control.ros.processes import start_node, stop_process  # noqa: E402

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


def make_test_bundle(out_dir: Path, seed: int = 0, hidden: int = 32,
                     joint_velocities: bool = True) -> Path:
    """A Panda-reach bundle with a random actor, written by the real bundle code.

    `joint_velocities=False`: its observation has no joint_vel term.
    """
    from rl_control.bundle.io import save_bundle
    from rl_control.contract.spec import RobotContract
    from rl_control.envs.panda_reach import panda_contract

    contract = panda_contract()
    if not joint_velocities:
        contract = RobotContract(contract.obs_spec.without('joint_vel'), contract.act_spec,
                                 contract.control_period_s)
    meta = {'env_id': 'rl_control/PandaJointReach-v0', 'env_kwargs': {}, 'time_limit': None,
            'goal_env': True, 'obs_dim': contract.obs_spec.size,
            'act_dim': contract.act_spec.size, 'contract': contract,
            'obs_terms': [{'name': 'observation', 'size': contract.obs_spec.size - 3},
                          {'name': 'desired_goal', 'size': 3}],
            'action_low': [-1.0] * 7, 'action_high': [1.0] * 7}
    agent = _RandomActor(contract.obs_spec.size, contract.act_spec.size, hidden, seed)
    return save_bundle(out_dir, agent, None, meta, {'algo': 'sac', 'seed': seed}, None,
                       'test fixture (random actor)')


def make_pick_bundle(out_dir: Path,
                     shape: Callable[[_RandomActor, Any], None] | None = None) -> Path:
    """A FrankaPickPlace-v1 bundle, written by the real bundle code.

    Its actor holds the arm still and closes the hand, unless `shape(agent, contract)` sets
    its weights otherwise (plumbing only: no pick-and-place bundle is trained).
    """
    import gymnasium as gym

    from rl_control.bundle.io import save_bundle

    env = gym.make('rl_control/FrankaPickPlace-v1')
    u = env.unwrapped
    c = u.contract
    meta = {'env_id': 'rl_control/FrankaPickPlace-v1', 'env_kwargs': {}, 'time_limit': None,
            'goal_env': True, 'obs_dim': c.obs_spec.size, 'act_dim': c.act_spec.size,
            'contract': c, 'robot_task': u.robot_task,
            'obs_terms': [{'name': 'observation', 'size': c.obs_spec.size - 3},
                          {'name': 'desired_goal', 'size': 3}],
            'action_low': [-1.0] * c.act_spec.size, 'action_high': [1.0] * c.act_spec.size}
    env.close()
    agent = _RandomActor(c.obs_spec.size, c.act_spec.size, 16, 0)
    if shape is None:
        agent.weights['l1.weight'][:] = 0.0
        agent.weights['l1.bias'][:] = [0.0, 0.0, 0.0, 5.0]  # tanh: stay, gripper entry ~ +1
    else:
        shape(agent, c)
    return save_bundle(out_dir, agent, None, meta, {'algo': 'sac'}, None, 'test (fixed actor)')


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
        self.clients: dict[tuple[Any, str], Any] = {}
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
        # One client per service, kept: a fresh client's reply reader may not be matched by
        # the server yet, and Fast DDS then drops the reply (ros2/rmw_fastrtps#467).
        client = self.clients.get((srv_type, name))
        if client is None:
            client = self.clients[(srv_type, name)] = self.node.create_client(srv_type, name)
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


from tracking import PANDA_ARM, PANDA_HOME, TrackingRobot, sample_trajectory  # noqa: E402,F401,I001


def traj_after(rec: list[tuple[float, Any]], since: float) -> list[tuple[float, Any]]:
    return [(t, m) for t, m in list(rec) if t >= since]


def last_velocities(msg: Any) -> np.ndarray:
    return np.array(msg.points[-1].velocities)


def peak_speed(msg: Any) -> float:
    """The largest |velocity| among a trajectory message's waypoints."""
    return float(max(np.abs(p.velocities).max() for p in msg.points))


def server_diag(probe: Probe, topic: str = '/diagnostics',
                name: str = 'policy_server: policy') -> dict[str, Any]:
    """The newest policy-server status on /diagnostics: KeyValues plus _level, _message."""
    from rl_control.ros.conversions import diagnostic_values

    for _t, arr in reversed(probe.snapshot(topic)):
        for st in arr.status:
            if st.name.endswith(name):
                return {**diagnostic_values(st), '_level': st.level[0] if isinstance(
                    st.level, bytes) else int(st.level), '_message': st.message}
    return {}


def reference_speed(robot: TrackingRobot, t_from: float, t_to: float, dt: float = 0.002
                    ) -> tuple[np.ndarray, np.ndarray]:
    """(steady-clock times, max |qd|) of the controller's reference: at each time, the newest
    trajectory received by then, sampled at that time (a JTC replaces its trajectory on each
    message)."""
    off = robot.now() - time.monotonic()
    msgs = list(robot.commands)
    times, speeds = np.arange(t_from, t_to, dt), []
    k = -1
    for t in times:
        while k + 1 < len(msgs) and msgs[k + 1][0] <= t:
            k += 1
        speeds.append(0.0 if k < 0 else float(np.abs(sample_trajectory(msgs[k][1],
                                                                        t + off)[1]).max()))
    return times, np.array(speeds)


def computed_at(robot: TrackingRobot, msg: Any, off: float) -> float:
    """When the server computed a trajectory, on the steady clock: its stamp (a moving message
    is stamped at its prefix start, the last 4 ms grid time before the tick; one from rest at
    the plan start, the tick + lead), so transport delays on a loaded host do not count."""
    return msg.header.stamp.sec + msg.header.stamp.nanosec * 1e-9 - off


def assert_brakes_to_rest(robot: TrackingRobot, t_event: float, window_s: float,
                          quiet_after_s: float | None = None, react_from_s: float = 0.0,
                          qdd_min: float = 7.5, settle_s: float = 1.0,
                          by_arrival: bool = False) -> float:
    """The server reacts to an event at `t_event` (steady clock) with a brake, as the commands
    show: a message computed in (t_event + react_from_s, t_event + window_s]; from the first
    message computed after t_event + quiet_after_s (default: the window; earlier ones may be
    ordinary ticks) on, the controller's reference only slows down (2 cm/s of jerk-limited
    slack), and it is at rest within the braking time its speed implies (0.7 x the smallest
    acceleration limit, + 0.1 s). Returns the time to rest after the event.
    `by_arrival`: judge by arrival times (the server's clock is a sim clock that stopped).
    """
    off = robot.now() - time.monotonic()
    msgs = list(robot.commands)
    quiet = window_s if quiet_after_s is None else quiet_after_s
    computed = [(t, t if by_arrival else computed_at(robot, m, off)) for t, m in msgs]
    react = [c - t_event for _t, c in computed  # (a prefix starts up to 4 ms before its tick)
             if t_event + react_from_s - 0.004 < c <= t_event + window_s + 0.004]
    assert react, (f'no message computed within {window_s:.3f} s of the event: '
                   f'{[round(c - t_event, 3) for _t, c in computed if c > t_event][:5]}')
    later = [t for t, c in computed if c >= t_event + quiet]
    start = later[0] if later else max(t_event + quiet, msgs[-1][0])
    times, v = reference_speed(robot, start, t_event + window_s + settle_s)
    floor = np.minimum.accumulate(v)
    up = np.flatnonzero(v > floor + 0.02)
    assert not up.size, (f'the reference sped up again {times[up[0]] - t_event:.3f} s after '
                         f'the event: {np.round(v[max(0, up[0] - 20):up[0] + 5], 3)}')
    at_rest = np.flatnonzero(v == 0.0)
    assert at_rest.size, f'not at rest {settle_s} s after the event (speed {v[-1]:.3f})'
    t_rest = times[at_rest[0]] - t_event
    _t, v_event = reference_speed(robot, t_event, t_event + 0.001)
    bound = window_s + v_event[0] / (0.7 * qdd_min) + 0.1
    assert t_rest <= bound, f'at rest after {t_rest:.3f} s > {bound:.3f} s'
    for _t, m in msgs:  # and every message ends at rest (a JTC accepts it)
        assert np.all(np.array(m.points[-1].velocities) == 0.0)
    return float(t_rest)
