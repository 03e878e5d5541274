"""Bring-up on a real FR3, without ROS: move to start, the robot's errors, the joint-state wiring.

The move to start runs the serving loop against the Franka-faithful arm (robots/franka.py: the
JTC as ros2_controllers runs it, libfranka's 1 kHz limit checks, MuJoCo tracking) in lockstep:
the arm is stepped 40 ms at a time and its measured state fed back, so it takes seconds.
"""
import numpy as np
import pytest
from test_serving_loop import GOAL, ConstPolicy, spec

from rl_control.robots.bringup import Republisher, wiring
from rl_control.robots.franka import FrankaArm
from rl_control.robots.physics import mujoco_physics
from rl_control.robots.profiles import FR3
from rl_control.serve.loop import MOVE_TO_START, ServingLoop
from rl_control.serve.robot_errors import ROBOT_ERROR
from rl_control.serve.settings import ServeSettings
from rl_control.serve.sources import StateRate, slow_source


def fr3_loop(action=(0.0,) * 7, ramp_in_s=0.0, **over):
    return ServingLoop(spec(robot='fr3', **over), ConstPolicy(action),
                       ServeSettings(robot='fr3', ramp_in_s=ramp_in_s))


def feed(loop, arm):
    t = arm.time
    names, q, qd, _ = arm.joint_state()
    loop.on_state(t, t, list(names), q, qd, t)
    return t, q, qd


def run_move(loop, arm, speed):
    """Send the move to start to the arm; step it until the loop answers; (answer, message)."""
    t, _q, _qd = feed(loop, arm)
    out = loop.move_to_start(t, t, speed)
    assert not isinstance(out, str), out
    assert out.reason == MOVE_TO_START and out.trajectory.points[-1].velocities == [0.0] * 7
    arm.submit(t + 0.001, out.trajectory)
    answer = None
    while answer is None:
        arm.step(40)
        t, q, qd = feed(loop, arm)
        tick = loop.tick(t, t)
        assert tick.trajectory is None and tick.reason == MOVE_TO_START, tick.reason
        answer = loop.start_move.check(t, q, qd)
    return answer, out


def test_move_to_start_from_20_random_poses_within_the_limits():
    arm = FrankaArm(FR3, 'trajectory', physics=mujoco_physics(FR3))
    rng = np.random.default_rng(18)
    speed = ServeSettings().start_speed
    for _ in range(20):
        arm.reset(rng.uniform(FR3.q_min + 0.05, FR3.q_max - 0.05))
        arm.settle()
        loop = fr3_loop()
        loop.activate(arm.time)
        (ok, message), _out = run_move(loop, arm, speed)
        assert ok, message
        assert arm.reflex_count == 0, arm.state()['reflex']
        assert np.abs(arm.joint_state()[1] - FR3.home).max() <= 1e-3


def test_start_pose_comes_from_the_bundle_else_home():
    assert np.array_equal(fr3_loop().start_q, FR3.home)
    pose = [0.1, 0.2, 0.0, -2.0, 0.0, 2.2, 0.7]
    assert np.array_equal(fr3_loop(start_pose=pose).start_q, pose)


def test_move_to_start_refuses_while_a_goal_is_served_and_a_goal_interrupts_it():
    arm = FrankaArm(FR3, 'trajectory')
    loop = fr3_loop(action=(0.2,) * 7)
    t, _q, _qd = feed(loop, arm)
    assert 'not active' in loop.move_to_start(t, t, 0.2)
    loop.activate(t)
    assert loop.on_goal('fr3_link0', GOAL) is None
    assert 'a goal is being served' in loop.move_to_start(t, t, 0.2)
    loop.goals.goal = None  # (as after the goal was withdrawn)
    arm.reset(FR3.home + 0.3)
    t, _q, _qd = feed(loop, arm)
    out = loop.move_to_start(t, t, 0.2)
    assert not isinstance(out, str), out
    loop.on_goal('fr3_link0', GOAL)
    arm.step(40)
    t, q, qd = feed(loop, arm)
    tick = loop.tick(t, t)
    assert tick.trajectory is not None  # the policy plans on, from the move's reference
    ok, message = loop.start_move.check(t, q, qd)
    assert not ok and 'a goal arrived' in message


def test_shadow_move_to_start_says_the_arm_did_not_move():
    arm = FrankaArm(FR3, 'trajectory')
    arm.reset(FR3.home + 0.05)
    loop = fr3_loop()
    t, _q, _qd = feed(loop, arm)
    loop.activate(t)
    out = loop.move_to_start(t, t, 1.0, shadow=True)
    end = out.plan.end
    arm.step(round((end - t) / arm.dt) + 1)
    t, q, qd = feed(loop, arm)
    ok, message = loop.start_move.check(t, q, qd)
    assert not ok and message.startswith('shadow mode')


def test_reflex_brakes_and_waits_then_recovery_reanchors_on_the_measured_state():
    arm = FrankaArm(FR3, 'trajectory')
    loop = fr3_loop(action=(0.5,) * 7, ramp_in_s=0.5)
    t, _q, _qd = feed(loop, arm)
    loop.activate(t)
    loop.on_goal('fr3_link0', GOAL)
    for _ in range(5):
        t, _q, _qd = feed(loop, arm)
        out = loop.tick(t, t)
        arm.submit(t + 0.001, out.trajectory)
        arm.step(40)
    loop.robot_state(t, 4, ['joint_reflex'])  # ROBOT_MODE_REFLEX
    t, _q, _qd = feed(loop, arm)
    out = loop.tick(t, t)
    assert out.reason == ROBOT_ERROR and out.plan.braking  # a brake, not a new target
    assert out.trajectory is None  # not sent: it could reach the controller after recovery
    assert loop.values(t)['robot_error'] == 'reflex: joint_reflex'
    arm.reset(FR3.home + 0.1)  # the robot stopped elsewhere than the plan
    anchors = loop.reanchors
    loop.robot_state(t, 1, [])  # ROBOT_MODE_IDLE: recovered
    t_recovered = t
    assert loop.reanchors == anchors + 1 and not loop.shaper.anchored
    arm.step(40)
    t, q, _qd = feed(loop, arm)
    out = loop.tick(t, t)
    assert out.reason == 'ok'
    np.testing.assert_allclose(out.trajectory.points[0].positions, q, atol=1e-12)
    # the ramp-in starts over
    assert loop.safety.filter(t, np.ones(7)).ramp == pytest.approx((t - t_recovered) / 0.5)


@pytest.mark.parametrize('delay_ms', [0, 20, 80])
def test_a_recovery_asked_for_while_the_arm_still_stops_waits_for_rest_and_raises_nothing(
        delay_ms):
    """The sim's MuJoCo arm rings for ~0.1 s after its brake; a host that recovers at once
    (the DDS bring-up test does when the server reports the reflex) must not get a reflex from
    the re-activated controller."""
    arm = FrankaArm(FR3, 'trajectory', physics=mujoco_physics(FR3))
    arm.settle()
    loop = fr3_loop(action=(0.5,) * 7)
    t, _q, _qd = feed(loop, arm)
    loop.activate(t)
    loop.on_goal('fr3_link0', GOAL)

    def serve(ticks: int) -> None:
        for _ in range(ticks):
            if loop.robot.mode != 1 and arm.state()['mode'] != 'reflex':
                loop.robot_state(arm.time, 1, [])  # ROBOT_MODE_IDLE, as the broadcaster says
            t, _q, _qd = feed(loop, arm)
            out = loop.tick(t, t)
            if out.trajectory is not None:
                arm.submit(t + 0.001, out.trajectory)
            arm.step(40)

    serve(8)
    assert np.max(np.abs(arm.state()['qd'])) > 0.3  # moving
    arm.inject_reflex()
    arm.step(delay_ms)
    loop.robot_state(arm.time, 4, ['joint_reflex'])  # ROBOT_MODE_REFLEX
    done_now, pending = arm.recover(), arm.state()
    serve(30)
    s = arm.state()
    assert s['reflex_count'] == 1, arm.reflex_history
    assert done_now is False and pending['mode'] == 'reflex' and pending['recover_pending']
    assert s['mode'] == 'move' and not s['recover_pending']
    assert np.max(np.abs(s['qd'])) > 0.1  # served again after the recovery


def test_joint_state_wiring_as_franka_bringup():
    fr3 = wiring('auto', 'fr3')
    assert (fr3.arm_topic, fr3.merged_topic, fr3.merged_rate_hz) == (
        'franka/joint_states', 'joint_states', 30.0)
    assert wiring('auto', 'panda').merged_topic == ''
    with pytest.raises(ValueError):
        wiring('moveit', 'fr3')
    rep = Republisher(30.0)
    rep.offer_gripper(('fr3_finger_joint1', 'fr3_finger_joint2'), np.full(2, 0.04),
                      np.zeros(2), np.zeros(2))
    fired = []
    for k in range(1000):
        rep.offer_arm(FR3.joint_names, FR3.home + k, np.zeros(7), np.zeros(7))
        if rep.due(k * 1e-3):
            fired.append(k)
    assert set(np.diff(fired)) == {33}  # every 1/30 s on the 1 ms grid
    names, q, _qd, _eff = rep.merged()
    assert names == [*FR3.joint_names, 'fr3_finger_joint1', 'fr3_finger_joint2']
    assert q[0] == FR3.home[0] + 999 and q[-1] == 0.04


def test_a_slow_joint_state_source_is_named_with_its_rate():
    rate = StateRate()
    for k in range(31):
        rate.add(k / 30)
    measured = rate.rate(1.0)
    assert measured == pytest.approx(30.0)
    text = slow_source(measured, 100.0, '/joint_states')
    assert '/joint_states at 30 Hz' in text and 'franka/joint_states' in text
    fast = StateRate()
    for k in range(1001):
        fast.add(k / 1000)
    assert slow_source(fast.rate(1.0), 100.0, '/franka/joint_states') is None
