"""The launch files, loaded and run with the real ROS 2 `launch` / `launch_ros` API.

`launch` and `launch_ros` come with a ROS distro and are not on PyPI, so on a pip-only machine
(CI) this whole module is skipped with that reason. Where they are installed it checks:
- every launch file loads and declares its documented arguments;
- the arguments become correctly TYPED node parameters (a wrong type makes rclpy refuse the
  parameter at node start, which nothing else would catch before a user's `ros2 launch`);
- demo.launch.py really runs from a colcon install, namespaced, with `ros2 launch` (or a plain
  LaunchService where ros2cli is absent): the simulated Franka publishes joint states, the
  policy server is brought to `active` by the launch file's lifecycle events and sends it
  joint trajectories, the goal topic connects the two, and Ctrl-C (SIGINT) stops everything
  cleanly.
"""
from __future__ import annotations

from collections.abc import Iterator
import importlib.util
import math
import os
from pathlib import Path
import shutil
import signal
import subprocess
import sys
import time
from typing import Any

import pytest

pytest.importorskip(
    'launch', reason='ROS 2 `launch` is not installed (not on PyPI; it comes with a ROS distro)')
pytest.importorskip(
    'launch_ros',
    reason='ROS 2 `launch_ros` is not installed (not on PyPI; it comes with a ROS distro)')

from launch.launch_context import LaunchContext  # noqa: E402
from launch.launch_description_sources import PythonLaunchDescriptionSource  # noqa: E402
from launch.launch_description_sources.python_launch_file_utilities import (  # noqa: E402
    load_python_launch_file_as_module,
)

REPO = Path(__file__).resolve().parents[2]
LAUNCH_DIR = REPO / 'launch'
WS = REPO / 'ros2_ws'
PACKAGE = 'rl_control'

EXPECTED_ARGS = {
    'train.launch.py': {'config', 'out', 'resume', 'namespace', 'use_sim_time', 'task', 'set'},
    'sim.launch.py': {'namespace', 'use_sim_time', 'rate', 'command_topic', 'params_file',
                      'robot', 'fidelity', 'command_type', 'goals_file', 'episodes'},
    'serve.launch.py': {'bundle', 'joint_state_topic', 'command_topic', 'command_type',
                        'command_joints', 'params_file', 'namespace', 'use_sim_time',
                        'autostart', 'robot', 'lead_s', 'clamp_scale'},
    'demo.launch.py': {'bundle', 'use_sim_time', 'namespace', 'robot'},
    'fr3_bringup.launch.py': {'robot_ip', 'arm_id', 'use_fake_hardware', 'namespace', 'bundle',
                              'shadow', 'start_speed'},
}


def _module(name: str) -> Any:
    return load_python_launch_file_as_module(str(LAUNCH_DIR / name))


def _context(**configs: str) -> LaunchContext:
    context = LaunchContext()
    context.launch_configurations.update(configs)
    return context


# ---------------------------------------------------------------------------------------------
# Static: load and resolve, no processes
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize('name', sorted(EXPECTED_ARGS))
def test_launch_file_loads_and_declares_arguments(name: str) -> None:
    source = PythonLaunchDescriptionSource(str(LAUNCH_DIR / name))
    description = source.get_launch_description(LaunchContext())
    args = {a.name: a for a in description.get_launch_arguments()}
    missing = EXPECTED_ARGS[name] - set(args)
    assert not missing, f'{name} does not declare {sorted(missing)}'
    for arg in args.values():
        assert arg.description and arg.description != 'no description given', arg.name


def test_serve_parameters_are_typed_and_only_overrides() -> None:
    serve = _module('serve.launch.py')
    params = serve.server_parameters(_context(
        params_file='/x/policy_server.yaml', command_joints='a, b,c', control_rate_hz='25',
        command_topic='', use_sim_time='True', bundle='/b', lead_s='0.03'))
    assert params[0] == '/x/policy_server.yaml'
    assert params[1] == {'use_sim_time': True, 'autostart': False,
                         'command_joints': ['a', 'b', 'c'], 'control_rate_hz': 25.0,
                         'bundle': '/b', 'lead_s': 0.03}
    yaml_list = serve.server_parameters(_context(command_joints='[fr3_joint2, fr3_joint1]'))
    assert yaml_list[-1]['command_joints'] == ['fr3_joint2', 'fr3_joint1']
    with pytest.raises(ValueError, match='true/false'):
        serve.server_parameters(_context(use_sim_time='ture'))


def test_serve_leaves_the_node_unconfigured_unless_autostart() -> None:
    from launch.actions import LogInfo

    serve = _module('serve.launch.py')
    group = serve._launch_setup(_context())[0]
    entities = group.get_sub_entities()
    assert any(isinstance(e, LogInfo) for e in entities)  # the "left unconfigured" note
    assert len([e for e in serve._launch_setup(_context(autostart='true'))[0]
                .get_sub_entities()]) > len(entities)  # + the lifecycle event handlers


def test_serve_params_file_follows_robot() -> None:
    description = PythonLaunchDescriptionSource(
        str(LAUNCH_DIR / 'serve.launch.py')).get_launch_description(LaunchContext())
    default = {a.name: a for a in description.get_launch_arguments()}['params_file']
    for robot, expected in (('panda', 'policy_server.yaml'), ('fr3', 'policy_server_fr3.yaml')):
        context = _context(robot=robot)
        # FindPackageShare needs an install; substitute the repo as the share directory.
        resolved = os.path.join(*(
            str(REPO) if type(s).__name__ == 'FindPackageShare' else s.perform(context)
            for s in default.default_value[0].substitutions))
        assert resolved.endswith(os.path.join('config', expected)), resolved


def test_sim_parameters_map_use_sim_time_to_publish_clock() -> None:
    sim = _module('sim.launch.py')
    params = sim.sim_parameters(_context(params_file='/x/sim.yaml', use_sim_time='true',
                                         rate='200', episodes='3', seed='', robot='fr3'))
    assert params == ['/x/sim.yaml', {'publish_clock': True, 'use_sim_time': False,
                                      'publish_rate_hz': 200.0, 'episodes': 3,
                                      'robot': 'fr3'}]


def _entities(entities: list) -> list:
    """Every entity under `entities`, depth first (groups opened)."""
    out = []
    for e in entities:
        out.append(e)
        out += _entities(list(getattr(e, 'get_sub_entities', list)() or []))
    return out


def test_demo_and_train_shut_down_when_their_process_exits() -> None:
    from launch.actions import RegisterEventHandler
    from launch.event_handlers import OnProcessExit

    sim = _module('sim.launch.py')
    found = [e for e in _entities(sim._launch_setup(_context(shutdown_on_exit='true')))
             if isinstance(e, RegisterEventHandler)]
    assert len(found) == 1 and isinstance(found[0].event_handler, OnProcessExit)
    assert not [e for e in _entities(sim._launch_setup(_context()))
                if isinstance(e, RegisterEventHandler)]
    train = _module('train.launch.py')
    found = [e for e in _entities(train._launch_setup(_context(config='/c.yaml')))
             if isinstance(e, RegisterEventHandler)]
    assert len(found) == 1 and isinstance(found[0].event_handler, OnProcessExit)


def test_namespaced_lockstep_demo_remaps_the_clock_under_its_namespace() -> None:
    from launch_ros.actions import Node

    sim = _module('sim.launch.py')
    node = next(e for e in _entities(sim._launch_setup(_context(clock_topic='/d/clock')))
                if isinstance(e, Node))
    context = _context()
    remaps = [(''.join(s.perform(context) for s in a), ''.join(s.perform(context) for s in b))
              for a, b in node._Node__remappings]
    assert remaps == [('/clock', '/d/clock')]
    demo = _module('demo.launch.py')
    sim_args, serve_args = demo.demo_arguments(_context(use_sim_time='false', namespace='d'))
    assert sim_args['clock_topic'] == serve_args['clock_topic'] == ''  # real time: no clock


def test_fr3_bringup_spawns_the_shipped_controller_and_a_shadow_server() -> None:
    from launch.actions import IncludeLaunchDescription, LogInfo
    from launch_ros.actions import Node

    bringup = _module('fr3_bringup.launch.py')
    context = _context(robot_ip='10.0.0.2', arm_id='fr3', use_fake_hardware='true',
                       namespace='r1', bundle='/b')
    assert bringup.franka_arguments(context) == {
        'robot_ip': '10.0.0.2', 'use_fake_hardware': 'true', 'namespace': 'r1',
        'robot_type': 'fr3', 'arm_id': 'fr3'}
    args = bringup.spawner_arguments()
    assert args[:2] == ['fr3_position_trajectory_controller', '--param-file']
    assert Path(args[2]).is_file() and args[2].endswith(
        'config/franka_ros2/fr3_position_trajectory_controller.yaml')
    serve = bringup.serve_arguments(context)
    assert serve['shadow'] == 'true' and serve['autostart'] == 'false'
    assert serve['joint_state_topic'] == 'franka/joint_states' and serve['robot'] == 'fr3'
    assert bringup.serve_arguments(_context(shadow='false'))['shadow'] == 'false'
    entities = _entities(bringup._launch_setup(context))
    spawners = [e for e in entities if isinstance(e, Node)]
    assert len(spawners) == 1
    includes = [e for e in entities if isinstance(e, IncludeLaunchDescription)]
    if bringup.franka_bringup_launch() is None:
        assert any(isinstance(e, LogInfo) for e in entities)
        assert len(includes) == 1  # serve.launch.py only
    else:
        assert len(includes) == 2


def test_fr3_bringup_includes_franka_bringup_where_installed() -> None:
    bringup = _module('fr3_bringup.launch.py')
    path = bringup.franka_bringup_launch()
    if path is None:
        pytest.skip('franka_bringup is not installed (franka_ros2)')
    from launch.launch_description_sources import PythonLaunchDescriptionSource as Source

    declared = {a.name for a in Source(path).get_launch_description(
        LaunchContext()).get_launch_arguments()}
    assert {'robot_ip', 'use_fake_hardware', 'namespace'} <= declared
    assert declared & {'robot_type', 'arm_id'}


def test_train_parameters() -> None:
    train = _module('train.launch.py')
    params = train.trainer_parameters(_context(
        config='/c.yaml', out='runs/x', resume='true', set='seed=3, algo_kwargs.tau=[1,2]'))
    assert params == [{'config': '/c.yaml', 'out': 'runs/x', 'resume': True,
                       'use_sim_time': False, 'set': ['seed=3', 'algo_kwargs.tau=[1,2]']}]
    # No out: as `rl-control train`, runs/<config file name>; no set: the parameter is omitted.
    assert train.trainer_parameters(_context(config='/a/pendulum_sac.yaml')) == [
        {'config': '/a/pendulum_sac.yaml', 'out': os.path.join('runs', 'pendulum_sac'),
         'resume': False, 'use_sim_time': False}]


def server_ramp_in() -> float:
    import yaml

    return max(next(iter(yaml.safe_load((REPO / 'config' / name).read_text()).values()))
               ['ros__parameters']['ramp_in_s']
               for name in ('policy_server.yaml', 'policy_server_fr3.yaml'))


def test_demo_wires_both_nodes_into_one_namespace() -> None:
    """No topic names are passed: both nodes' defaults are relative and agree."""
    import dataclasses

    import yaml

    from rl_control.ros.params import SimParams

    demo = _module('demo.launch.py')
    sim, serve = demo.demo_arguments(_context(namespace='arm', use_sim_time='true',
                                              robot='fr3'))
    assert sim['namespace'] == serve['namespace'] == 'arm'
    assert sim['robot'] == serve['robot'] == 'fr3'
    assert sim['command_type'] == serve['command_type'] == 'trajectory'
    assert sim['fidelity'] == 'franka' and sim['goals_file'].endswith('reach_goals.yaml')
    assert serve['trigger'] == 'state' and serve['autostart'] == 'true'
    # the server activates on its own: sim_robot counts episodes only after its ramp-in
    assert float(sim['warmup_s']) >= server_ramp_in() + 0.25
    assert not {'joint_state_topic', 'command_topic', 'goal_topic'} & (set(sim) | set(serve))
    defaults = {f.name: f.default for f in dataclasses.fields(SimParams)}
    server = next(iter(yaml.safe_load((REPO / 'config' / 'policy_server_fr3.yaml')
                                      .read_text()).values()))['ros__parameters']
    from rl_control.robots.bringup import wiring

    # the sim's '' is its topology's: the FR3 as franka_bringup wires it
    assert defaults['joint_state_topic'] == ''
    assert wiring(defaults['topology'], 'fr3').arm_topic == server['joint_state_topic'] == \
        'franka/joint_states'
    assert sim['clock_topic'] == serve['clock_topic'] == '/arm/clock'  # as `rl-control demo`
    assert sim['shutdown_on_exit'] == 'true'
    # the sim's '' derives the same
    assert server['command_topic'] == 'fr3_position_trajectory_controller/joint_trajectory'
    assert defaults['goal_topic'] == 'policy_server/goal' and server['goal_topic'] == '~/goal'


# ---------------------------------------------------------------------------------------------
# Dynamic: demo.launch.py from a colcon install
# ---------------------------------------------------------------------------------------------
RUNNER = r"""
import sys
from launch import LaunchDescription, LaunchService
from launch.actions import IncludeLaunchDescription
from launch.launch_description_sources import PythonLaunchDescriptionSource
args = [tuple(a.split(':=', 1)) for a in sys.argv[2:]]
service = LaunchService()
service.include_launch_description(LaunchDescription([IncludeLaunchDescription(
    PythonLaunchDescriptionSource(sys.argv[1]), launch_arguments=args)]))
sys.exit(service.run())
"""


def _ros2_cli() -> str | None:
    if importlib.util.find_spec('ros2launch') is None:
        return None
    here = Path(sys.executable).with_name('ros2')
    return str(here) if here.exists() else shutil.which('ros2')


def _colcon() -> list[str] | None:
    if importlib.util.find_spec('colcon_core') is not None:
        return [sys.executable, '-c',
                'import sys; from colcon_core.command import main; sys.exit(main())']
    found = shutil.which('colcon')
    return [found] if found else None


@pytest.fixture(scope='module')
def install(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A colcon install of the package, where launch_ros finds executables and share/."""
    colcon = _colcon()
    if colcon is None:
        pytest.skip('colcon is not installed')
    root = tmp_path_factory.mktemp('colcon')
    subprocess.run(
        [*colcon, '--log-base', str(root / 'log'), 'build', '--build-base', str(root / 'build'),
         '--install-base', str(root / 'install')],
        cwd=WS, check=True, capture_output=True, timeout=120)
    return root / 'install'


def _sourced_env(install: Path) -> dict[str, str]:
    """os.environ after `source install/setup.bash` (what a user's shell has)."""
    base = {k: v for k, v in os.environ.items()
            if k not in ('AMENT_PREFIX_PATH', 'COLCON_PREFIX_PATH')}
    out = subprocess.run(['bash', '-c', f'source "{install}/setup.bash" && env -0'],
                         env=base, check=True, capture_output=True, timeout=30).stdout
    env = dict(item.split('=', 1) for item in out.decode().split('\0') if '=' in item)
    env['PYTHONUNBUFFERED'] = '1'
    return env


def _yaml_parameter(name: str, parameter: str) -> Any:
    """`parameter` from config/<name>'s (single) node section; None when absent."""
    import yaml

    path = REPO / 'config' / name
    if not path.is_file():
        return None
    for section in (yaml.safe_load(path.read_text()) or {}).values():
        return (section.get('ros__parameters') or {}).get(parameter)
    return None


class Observer:
    """A private rclpy context watching the demo's topics and the server's lifecycle state."""

    def __init__(self, namespace: str) -> None:
        from lifecycle_msgs.srv import GetState
        import rclpy
        from rclpy.executors import SingleThreadedExecutor
        from rclpy.qos import qos_profile_sensor_data
        from sensor_msgs.msg import JointState
        from trajectory_msgs.msg import JointTrajectory

        self.ns = f'/{namespace}'
        self.context = rclpy.Context()
        rclpy.init(context=self.context)
        self.node = rclpy.create_node('launch_test_observer', context=self.context)
        self.executor = SingleThreadedExecutor(context=self.context)
        self.executor.add_node(self.node)
        self.joint_states: list[Any] = []
        self.commands: list[Any] = []
        # Best effort subscribers match both reliable and best-effort publishers.
        self.node.create_subscription(JointState, f'{self.ns}/joint_states',
                                      self.joint_states.append, qos_profile_sensor_data)
        self.node.create_subscription(JointTrajectory,
                                      f'{self.ns}/panda_position_trajectory_controller/joint_trajectory',
                                      self.commands.append, qos_profile_sensor_data)
        self.get_state = self.node.create_client(GetState, f'{self.ns}/policy_server/get_state')
        self.GetState = GetState
        self.state = ''

    def poll_state(self) -> None:
        if not self.get_state.service_is_ready():
            return
        future = self.get_state.call_async(self.GetState.Request())
        self.executor.spin_until_future_complete(future, timeout_sec=2.0)
        if future.done() and future.result() is not None:
            self.state = future.result().current_state.label

    def parameter(self, node: str, name: str) -> Any:
        """A parameter's value read over `<ns>/<node>/get_parameters` (None if unavailable)."""
        from rcl_interfaces.srv import GetParameters
        from rclpy.parameter import parameter_value_to_python

        client = self.node.create_client(GetParameters, f'{self.ns}/{node}/get_parameters')
        try:
            if not client.wait_for_service(timeout_sec=5.0):
                return None
            future = client.call_async(GetParameters.Request(names=[name]))
            self.executor.spin_until_future_complete(future, timeout_sec=5.0)
            result = future.result() if future.done() else None
            return parameter_value_to_python(result.values[0]) if result else None
        finally:
            self.node.destroy_client(client)

    def goal_wired(self) -> bool:
        topic = f'{self.ns}/policy_server/goal'
        return (self.node.count_publishers(topic) >= 1
                and self.node.count_subscribers(topic) >= 1)

    def close(self) -> None:
        self.executor.shutdown()
        self.node.destroy_node()
        self.context.try_shutdown()


def _default_sigint() -> None:
    """In the child: a shell that ran pytest in the background leaves SIGINT ignored, and an
    ignored SIGINT is inherited, so the Ctrl-C under test would never arrive."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _stop(proc: subprocess.Popen[bytes], timeout_s: float = 30.0) -> int:
    """Ctrl-C the whole launch (as a terminal would); its exit code, -9 if it had to be killed."""
    try:
        os.killpg(proc.pid, signal.SIGINT)
        return proc.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        return -9


@pytest.fixture
def observer() -> Iterator[Observer]:
    pytest.importorskip('rclpy', reason='rclpy is not installed')
    obs = Observer(f'demo_{os.getpid()}')
    yield obs
    obs.close()


@pytest.fixture
def bundle_args() -> list[str]:
    """The shipped bundle (the demo's default), or RL_CONTROL_TEST_BUNDLE, e.g. a quick run."""
    bundle = os.environ.get('RL_CONTROL_TEST_BUNDLE', '')
    if bundle:
        return [f'bundle:={bundle}']
    if not (REPO / 'models' / 'panda_reach_sac' / 'policy.yaml').is_file():
        pytest.skip('the shipped bundle models/panda_reach_sac is not in this checkout')
    return []


@pytest.mark.ros
def test_demo_launch_runs(bundle_args: list[str], install: Path, observer: Observer) -> None:
    """`ros2 launch rl_control demo.launch.py` where ros2cli is installed, else LaunchService."""
    namespace = observer.ns.lstrip('/')
    args = [f'namespace:={namespace}', *bundle_args]
    ros2 = _ros2_cli()
    runner = 'ros2-launch' if ros2 else 'launch-service'
    if ros2:
        cmd = [ros2, 'launch', PACKAGE, 'demo.launch.py', *args]
    else:
        launch_file = install / PACKAGE / 'share' / PACKAGE / 'launch' / 'demo.launch.py'
        cmd = [sys.executable, '-c', RUNNER, str(launch_file), *args]
    # Output to a file, not a pipe: a full pipe nobody reads would stall the launch.
    log_path = install.parent / f'{runner}.log'
    log = log_path.open('wb')
    proc = subprocess.Popen(cmd, env=_sourced_env(install), cwd=install.parent,
                            stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
                            preexec_fn=_default_sigint)
    start = time.monotonic()
    up_s = float('nan')
    goal_wired = False
    try:
        deadline = start + 60.0
        while time.monotonic() < deadline and proc.poll() is None:
            observer.executor.spin_once(timeout_sec=0.1)
            if observer.state != 'active':
                observer.poll_state()
            goal_wired = observer.goal_wired()
            if (observer.state == 'active' and len(observer.joint_states) >= 10
                    and len(observer.commands) >= 5 and goal_wired):
                break
        up_s = time.monotonic() - start
        # A value only config/policy_server.yaml sets must reach the NAMESPACED node.
        file_topic = _yaml_parameter('policy_server.yaml', 'command_topic')
        node_topic = observer.parameter('policy_server', 'command_topic')
    finally:
        stop_start = time.monotonic()
        rc = _stop(proc)
        log.close()
    out = log_path.read_text(errors='replace')
    timing = f'up in {up_s:.1f} s, stopped in {time.monotonic() - stop_start:.1f} s'
    print(f'{runner}: {timing}')
    report = (f'{timing} state={observer.state!r} joint_states={len(observer.joint_states)} '
              f'commands={len(observer.commands)} rc={rc}\n--- launch output ---\n{out}')
    assert observer.state == 'active', report
    assert len(observer.joint_states) >= 10, report
    assert len(observer.commands) >= 5, report
    assert goal_wired, f'sim_robot goals do not reach the server ~/goal in the namespace\n{report}'
    if file_topic is not None:
        assert node_topic == file_topic, (
            f'params_file not applied in namespace /{namespace}: command_topic '
            f'{node_topic!r} != {file_topic!r} from config/policy_server.yaml\n{report}')
    assert all(len(m.joint_names) == 7 and all(math.isfinite(v) for p in m.points
                                               for v in p.positions)
               for m in observer.commands), report
    assert all(all(v == 0.0 for v in m.points[-1].velocities) for m in observer.commands)
    assert rc != -9, f'launch did not stop on SIGINT within 30 s\n{report}'
    # Ctrl-C reaches every process twice (terminal process group + launch forwarding it); a
    # node must still finish cleanly, not die of the second SIGINT.
    assert 'process has died' not in out and 'Traceback' not in out, report


@pytest.mark.ros
def test_train_launch_trains_a_bundle(install: Path, tmp_path: Path) -> None:
    """train.launch.py with typed overrides (`set` is a string array) ends with a bundle."""
    pytest.importorskip('rclpy', reason='rclpy is not installed')
    ros2 = _ros2_cli()
    out_dir = tmp_path / 'run'
    args = [f'out:={out_dir}', f'namespace:=train_{os.getpid()}',
            'set:=total_steps=200,eval.every=200,eval.episodes=1,algo_kwargs.batch_size=32']
    if ros2:
        cmd = [ros2, 'launch', PACKAGE, 'train.launch.py', *args]
    else:
        launch_file = install / PACKAGE / 'share' / PACKAGE / 'launch' / 'train.launch.py'
        cmd = [sys.executable, '-c', RUNNER, str(launch_file), *args]
    proc = subprocess.run(cmd, env=_sourced_env(install), cwd=tmp_path, capture_output=True,
                          text=True, timeout=240, check=False)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out
    assert 'process has finished cleanly' in out, out
    assert (out_dir / 'bundle' / 'policy.yaml').is_file(), out
