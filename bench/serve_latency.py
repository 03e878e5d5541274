"""JointState -> command latency of the policy server vs. a minimal rclpy echo node.

Both run as separate processes over real DDS (private domain, localhost). A driver node in this
process plays the robot at up to 1 kHz, ping-pong style: it publishes a JointState, waits for
the command it causes, records the round trip, and paces the next state to the next 1 ms slot.
The round trip includes the driver's own publish/receive cost, identical for both targets, so
the ratio compares what the server adds on top of the cheapest possible rclpy node.

- policy server: `trigger: state` (computes on each joint state), control_rate_hz 1000, the
  full safety filter on (watchdog relaxed to 50 ms so pacing hiccups do not inject zeros).
- echo node: subscribes JointState, publishes Float64MultiArray of the positions.

    .venv/bin/python bench/serve_latency.py [--bundle models/panda_reach_sac] [--n 5000]
        [--executor single|events|both] [--json out.json]

Targets: p99 <= 1 ms and <= 1.3x the echo node.

`--executor events` uses rclpy.experimental.EventsExecutor in both nodes. In the rclpy 9.1.2
PyPI build used here it delivers no subscription callbacks (and the process ignores SIGTERM),
so the default is SingleThreadedExecutor; the option is kept for ROS distros where it works.
"""
from __future__ import annotations

import argparse
import json
import os
from pathlib import Path
import random
import sys
import tempfile
import time

import numpy as np

REPO = Path(__file__).resolve().parents[1]
ARM = [f'panda_joint{i}' for i in range(1, 8)]
HOME = [0.0, 0.41, 0.0, -1.85, 0.0, 2.26, 0.79]


def echo_main(executor_kind: str) -> None:
    """The reference: the least an rclpy node can do between a JointState and a command."""
    import rclpy
    from rclpy.node import Node
    from sensor_msgs.msg import JointState
    from std_msgs.msg import Float64MultiArray

    from rl_control.ros import qos
    from rl_control.ros.policy_server import make_executor

    rclpy.init()
    node = Node('echo')
    pub = node.create_publisher(Float64MultiArray, '/bench/commands', qos.COMMAND)

    def cb(msg: JointState) -> None:
        out = Float64MultiArray()
        out.data = list(msg.position[:7])
        pub.publish(out)

    node.create_subscription(JointState, '/bench/joint_states', cb, qos.SENSOR)
    ex = make_executor(executor_kind)
    ex.add_node(node)
    try:
        ex.spin()
    except (KeyboardInterrupt, Exception):  # noqa: BLE001
        pass


def random_bundle(folder: Path) -> Path:
    """A Panda-reach bundle with a random 256x256 actor (same cost as a trained one)."""
    from rl_control.bundle.io import save_bundle
    from rl_control.envs.panda_reach import panda_contract

    c = panda_contract()
    rng = np.random.default_rng(0)
    layers = [[c.obs_spec.size, 256], [256, 256], [256, 7]]
    weights = {}
    for i, (a, b) in enumerate(layers):
        weights[f'l{i}.weight'] = rng.normal(0, 1 / np.sqrt(a), (b, a))
        weights[f'l{i}.bias'] = np.zeros(b)

    class Actor:
        def export_actor(self):  # noqa: ANN202
            return {'kind': 'mlp', 'layers': layers, 'activation': 'relu',
                    'output': 'tanh'}, weights

    meta = {'env_id': 'rl_control/PandaJointReach-v0', 'env_kwargs': {}, 'contract': c,
            'obs_terms': [], 'action_low': [-1.0] * 7, 'action_high': [1.0] * 7, 'act_dim': 7}
    return save_bundle(folder, Actor(), None, meta, {'algo': 'sac'}, None, 'bench')


class Driver:
    """Ping-pong driver: one JointState out, wait for one command back."""

    def __init__(self) -> None:
        import rclpy
        from rclpy.node import Node
        from sensor_msgs.msg import JointState
        from std_msgs.msg import Float64MultiArray

        from rl_control.ros import qos

        self.rclpy = rclpy
        self.node = Node('bench_driver')
        self.pub = self.node.create_publisher(JointState, '/bench/joint_states', qos.SENSOR)
        self.got = 0
        self.node.create_subscription(Float64MultiArray, '/bench/commands', self._cb,
                                      qos.COMMAND)
        from diagnostic_msgs.msg import DiagnosticArray

        from rl_control.ros.conversions import diagnostic_values

        self.diag: dict[str, str] = {}

        def on_diag(arr: DiagnosticArray) -> None:
            for st in arr.status:
                if st.name.endswith('policy_server: policy'):
                    self.diag = diagnostic_values(st)

        self.node.create_subscription(DiagnosticArray, '/diagnostics', on_diag,
                                      qos.DIAGNOSTICS)
        self.JointState = JointState
        self.executor = rclpy.executors.SingleThreadedExecutor()
        self.executor.add_node(self.node)

    def _cb(self, msg: object) -> None:
        self.got += 1

    def wait_connected(self, timeout: float = 30.0) -> None:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if (self.pub.get_subscription_count() > 0
                    and self.node.count_publishers('/bench/commands') > 0):
                return
            self.executor.spin_once(timeout_sec=0.05)
        raise RuntimeError('target node not discovered')

    def run(self, n: int, rate_hz: float, warmup: int) -> dict[str, float]:
        msg = self.JointState()
        msg.name = ARM
        rng = np.random.default_rng(1)
        period = 1.0 / rate_hz
        lat: list[float] = []
        lost = 0
        goal_set_time = time.perf_counter()
        t_next = time.perf_counter()
        t_start = None
        for i in range(n + warmup):
            if i == warmup:
                t_start = time.perf_counter()
            while True:  # drain anything late
                before = self.got
                self.executor.spin_once(timeout_sec=0)
                if self.got == before:
                    break
            q = np.asarray(HOME) + rng.uniform(-0.1, 0.1, 7)
            msg.position = q.tolist()
            msg.velocity = [0.0] * 7
            msg.header.stamp = self.node.get_clock().now().to_msg()
            target = self.got + 1
            t0 = time.perf_counter()
            self.pub.publish(msg)
            deadline = t0 + 0.05
            while self.got < target and time.perf_counter() < deadline:
                self.executor.spin_once(timeout_sec=0.01)
            t1 = time.perf_counter()
            if self.got >= target:
                if i >= warmup:
                    lat.append(t1 - t0)
            elif i >= warmup:
                lost += 1
            t_next += period
            now = time.perf_counter()
            if t_next > now:
                time.sleep(max(0.0, t_next - now - 0.0002))
                while time.perf_counter() < t_next:
                    pass
            else:
                t_next = now  # behind: do not burst to catch up
        del goal_set_time
        elapsed = time.perf_counter() - (t_start or time.perf_counter())
        a = np.asarray(lat) * 1e3
        return {'n': len(lat), 'lost': lost, 'rate_hz': len(lat) / elapsed,
                'p50_ms': float(np.percentile(a, 50)), 'p90_ms': float(np.percentile(a, 90)),
                'p99_ms': float(np.percentile(a, 99)), 'max_ms': float(a.max())}


def publish_goal(driver: Driver) -> None:
    from geometry_msgs.msg import PointStamped

    from rl_control.ros import qos
    from rl_control.ros.conversions import point_stamped

    pub = driver.node.create_publisher(PointStamped, '/bench/goal', qos.GOAL)
    end = time.monotonic() + 10
    while pub.get_subscription_count() == 0 and time.monotonic() < end:
        driver.executor.spin_once(timeout_sec=0.05)
    pub.publish(point_stamped([0.6, 0.0, 0.2], 'panda_link0'))
    driver.executor.spin_once(timeout_sec=0.2)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--bundle', default='', help='default: models/panda_reach_sac if present, '
                    'else a random 256x256 actor')
    ap.add_argument('--n', type=int, default=5000)
    ap.add_argument('--warmup', type=int, default=500)
    ap.add_argument('--rate', type=float, default=1000.0)
    ap.add_argument('--executor', default='single', choices=['single', 'events', 'both'],
                    help='events: experimental, see the module docstring')
    ap.add_argument('--json', default='')
    ap.add_argument('--echo-node', default='', help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.echo_node:
        echo_main(args.echo_node)
        return 0

    os.environ['ROS_DOMAIN_ID'] = str(random.SystemRandom().randint(101, 199))
    os.environ['ROS_AUTOMATIC_DISCOVERY_RANGE'] = 'LOCALHOST'
    os.environ['ROS_LOCALHOST_ONLY'] = '1'
    sys.path.insert(0, str(REPO / 'src'))
    import rclpy
    import rclpy.executors
    from rclpy.signals import SignalHandlerOptions

    from rl_control.ros.processes import start_node, stop_process

    tmp = Path(tempfile.mkdtemp(prefix='serve_latency_'))
    bundle = args.bundle or (str(REPO / 'models' / 'panda_reach_sac')
                             if (REPO / 'models' / 'panda_reach_sac' / 'policy.yaml').is_file()
                             else str(random_bundle(tmp / 'random_actor')))
    kinds = ['single', 'events'] if args.executor == 'both' else [args.executor]
    rclpy.init(signal_handler_options=SignalHandlerOptions.NO)
    driver = Driver()
    rows: dict[str, dict[str, float]] = {}
    try:
        for kind in kinds:
            env = dict(os.environ, RL_CONTROL_EXECUTOR=kind)
            import subprocess

            echo = subprocess.Popen([sys.executable, __file__, '--echo-node', kind], env=env,
                                    stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT,
                                    start_new_session=True)
            try:
                driver.wait_connected()
                rows[f'echo ({kind})'] = driver.run(args.n, args.rate, args.warmup)
            finally:
                stop_process(echo)
            driver.executor.spin_once(timeout_sec=0.5)
            server = start_node('rl_control.ros.policy_server', {
                'bundle': bundle, 'autostart': True, 'trigger': 'state',
                'control_rate_hz': args.rate, 'stale_periods': 50.0,
                'joint_state_topic': '/bench/joint_states', 'command_topic': '/bench/commands',
                'goal_topic': '/bench/goal', 'ramp_in_s': 0.0}, tmp / f'server_{kind}.log', env)
            try:
                driver.wait_connected()
                publish_goal(driver)
                driver.diag = {}
                row = driver.run(args.n, args.rate, args.warmup)
                end = time.monotonic() + 3.0
                while time.monotonic() < end and not driver.diag.get('latency_samples_total'):
                    driver.executor.spin_once(timeout_sec=0.1)
                driver.executor.spin_once(timeout_sec=1.1)  # the newest window
                for k in ('latency_ms_p50_total', 'latency_ms_p99_total',
                          'compute_ms_p50_total', 'compute_ms_p99_total'):
                    row['server_' + k] = float(driver.diag.get(k, 'nan'))
                rows[f'policy_server ({kind})'] = row
            finally:
                stop_process(server)
            driver.executor.spin_once(timeout_sec=0.5)
    finally:
        driver.node.destroy_node()
        rclpy.shutdown()

    print(f'bundle: {bundle}\n{args.n} pings at {args.rate:g} Hz target, round trip '
          f'driver -> node -> driver over DDS (localhost)')
    print(f"{'target':28s} {'rate_hz':>8s} {'p50_ms':>7s} {'p90_ms':>7s} {'p99_ms':>7s} "
          f"{'max_ms':>7s} {'lost':>5s}")
    for name, r in rows.items():
        print(f"{name:28s} {r['rate_hz']:8.1f} {r['p50_ms']:7.3f} {r['p90_ms']:7.3f} "
              f"{r['p99_ms']:7.3f} {r['max_ms']:7.3f} {r['lost']:5d}")
    for kind in kinds:
        r = rows[f'policy_server ({kind})']
        print(f"policy_server ({kind}) inside the node: state received -> command published "
              f"p50 {r['server_latency_ms_p50_total']:.3f} ms, p99 "
              f"{r['server_latency_ms_p99_total']:.3f} ms; tick compute p50 "
              f"{r['server_compute_ms_p50_total']:.3f} ms, p99 "
              f"{r['server_compute_ms_p99_total']:.3f} ms")
    for kind in kinds:
        e, s = rows[f'echo ({kind})'], rows[f'policy_server ({kind})']
        print(f'{kind}: policy_server / echo: p50 x{s["p50_ms"] / e["p50_ms"]:.2f}, '
              f'p99 x{s["p99_ms"] / e["p99_ms"]:.2f}')
    if args.json:
        Path(args.json).write_text(json.dumps({'bundle': bundle, 'rows': rows}, indent=1))
    return 0


if __name__ == '__main__':
    sys.exit(main())
