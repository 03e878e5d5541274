"""docs/ARCHITECTURE.md, "Add a command interface": a forward position controller, one entry.

ros2_controllers' forward_command_controller on the position interface (franka_hardware
exports it) takes a Float64MultiArray of joint positions and writes it every cycle. Every part
it needs exists already in some layer (the velocity action type and its Ruckig shaping, the
forward controller and the position hardware interface, the serving loop's motion stream that
samples the plan's reference, the Float64MultiArray message), so adding it is this one
registration; the shipped bundle then reaches a goal through it on the simulated Franka.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from rl_control.robots.command_interfaces import (
    COMMAND_INTERFACES,
    CommandInterface,
    register_command_interface,
)

POSITION = CommandInterface(
    'position', action_type='joint_velocity', controller='forward_command_controller',
    hardware='position', output='motion_stream', message='Float64MultiArray',
    topic='position_controller/commands', streamed=True)
BUNDLE = Path(__file__).resolve().parents[2] / 'models' / 'panda_reach_sac'
GOAL = np.array([0.5, -0.12, 0.05])


@pytest.fixture
def position():
    yield register_command_interface(POSITION)  # the one registry line
    del COMMAND_INTERFACES['position']  # (other tests do not expect it)


def test_every_layer_has_its_part(position):
    from rl_control.contract.actions import ACTION_TYPES
    from rl_control.serve.outputs import OUTPUTS
    from rl_control.serve.settings import ServeSettings

    assert position.action_type in ACTION_TYPES and position.output in OUTPUTS
    assert position.hardware_interface.sets_position
    assert ServeSettings(command_type='position').default_command_topic() == \
        'position_controller/commands'
    assert 'position' in ServeSettings.__dataclass_fields__['command_type'].metadata['choices']
    pytest.importorskip('rclpy')
    from rl_control.ros.conversions import COMMAND_MESSAGES

    msg = COMMAND_MESSAGES[position.message]
    np.testing.assert_array_equal(msg.decode(msg.encode(np.arange(7.0))), np.arange(7.0))


def test_the_shipped_bundle_reaches_a_goal_through_it_and_stops_without_a_reflex(position):
    from rl_control.bundle import load_bundle
    from rl_control.robots.franka import FrankaArm
    from rl_control.robots.physics import mujoco_physics
    from rl_control.robots.profiles import PANDA
    from rl_control.serve.loop import ServingLoop
    from rl_control.serve.settings import ServeSettings

    spec, policy = load_bundle(BUNDLE)
    loop = ServingLoop(spec, policy, ServeSettings(command_type='position'))
    assert loop.output.streams and not loop.output.starts_moves
    arm = FrankaArm(PANDA, 'position', physics=mujoco_physics(PANDA))
    arm.settle()
    assert np.linalg.norm(PANDA.ee_position(arm.state()['q']) - GOAL) > 0.2
    loop.activate(arm.time)
    assert loop.on_goal('panda_link0', GOAL) is None
    closest, t_next = np.inf, arm.time
    for k in range(4500):  # 4.5 s: states and the stream at 1 kHz, a tick every 40 ms
        t = arm.time
        names, q, qd, _ = arm.joint_state()
        loop.on_state(t, t, list(names), q, qd, t)
        if t >= t_next - 1e-9:
            t_next = t + loop.tick_s
            loop.tick(t, t)
        if k == 4000:
            loop.deactivate()  # a stop: the stream brakes the plan to rest
            loop.tick(t, t)
        cmd = loop.stream(t)
        if cmd is not None:
            arm.submit(t, cmd)  # a Float64MultiArray of positions
        arm.step(1)
        closest = min(closest, float(np.linalg.norm(PANDA.ee_position(arm.state()['q']) - GOAL)))
    st = arm.state()
    assert st['reflex'] is None and st['dropped'] == 0 and st['command_errors'] == 0
    assert closest < 0.02  # reached (the deactivation at 4 s ends the episode: no hold asked)
    assert loop.stopped(arm.time) and st['at_rest']


def test_the_shipped_interfaces_name_parts_every_layer_has():
    from rl_control.contract.actions import ACTION_TYPES
    from rl_control.serve.outputs import OUTPUTS

    assert sorted(COMMAND_INTERFACES) == ['effort', 'trajectory', 'velocity']
    for iface in COMMAND_INTERFACES.values():
        assert iface.action_type in ACTION_TYPES and iface.output in OUTPUTS, iface
    pytest.importorskip('rclpy')
    from rl_control.ros.conversions import COMMAND_MESSAGES

    assert all(i.message in COMMAND_MESSAGES for i in COMMAND_INTERFACES.values())
