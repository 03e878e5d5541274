from franka_helpers import ruckig_velocity_ramp
import numpy as np
import pytest

from rl_control.robots import franka_limits as fl
from rl_control.robots.franka import FrankaArm, brake_time_bound
from rl_control.robots.profiles import FR3, PANDA

DT = 1e-3


def _unit(j, value):
    v = np.zeros(7)
    v[j] = value
    return v


def _feed(arm, samples, t0=0.0):
    for k, v in enumerate(samples):
        arm.submit(t0 + (k + 1) * DT, v)
    return t0 + len(samples) * DT


@pytest.mark.parametrize('profile', [PANDA, FR3])
def test_reflex_brakes_ignores_commands_and_recover_does_not_resume_the_held_command(profile):
    arm = FrankaArm(profile, 'velocity')
    ramp = ruckig_velocity_ramp(profile, 0, 1.0)
    t = _feed(arm, ramp)
    arm.step(len(ramp) + 10)
    assert arm.state()['mode'] == 'move' and arm.state()['qd'][0] == pytest.approx(1.0)
    arm.submit(arm.time, _unit(0, 1.0) + _unit(2, 0.3))     # step on joint 3
    arm.step(1)
    s = arm.state()
    assert s['mode'] == 'reflex' and s['reflex'] == fl.VELOCITY_DISCONTINUITY
    assert s['reflex_violation'].joint == 2 and s['reflex_time'] == pytest.approx(arm.time)
    log = arm.reflex_log  # libfranka's ControlException.log: the ticks before the error
    assert len(log['ticks']) == 50 and log['ticks'][-1]['t'] == pytest.approx(arm.time)
    assert log['ticks'][-1]['command'][2] == pytest.approx(0.3)  # the offending sample
    assert log['ticks'][-2]['command'][2] == 0.0
    assert log['commands'][-1] == {'t': pytest.approx(arm.time), 'arrival': pytest.approx(
        arm.time - DT), 'refused': None}
    for k in range(200):                               # a host insisting: ignored
        arm.submit(arm.time + k * DT, _unit(0, 1.0))
    bound = brake_time_bound(profile, s['qd'])
    arm.step(int(np.ceil(bound / DT)))
    s = arm.state()
    assert np.max(np.abs(s['qd'])) < 1e-3 and s['at_rest'] and s['mode'] == 'reflex'
    arm.step(250)
    assert arm.state()['ignored'] == 200 and arm.state()['at_rest']
    for k in range(5):                                 # sent in the reflex, not yet arrived
        arm.submit(arm.time + (k + 1) * DT, _unit(0, 1.0))
    arm.recover()
    s = arm.state()
    assert s['mode'] == 'idle' and s['reflex'] is None and s['reflex_count'] == 1
    assert s['ignored'] == 205  # dropped: the recovery re-activates the controller
    assert np.allclose(s['q_ref'], s['q']) and not np.any(s['qd_ref'])
    arm.step(50)                                       # the held 1 rad/s is NOT resumed
    assert arm.state()['at_rest'] and arm.state()['mode'] == 'idle'
    _feed(arm, ramp, arm.time)
    arm.step(len(ramp) + 5)
    s = arm.state()
    assert s['mode'] == 'move' and s['reflex'] is None and s['qd'][0] == pytest.approx(1.0)
    assert t > 0


def test_a_late_host_changes_nothing():
    ramp = ruckig_velocity_ramp(PANDA, 3, -0.4) + [_unit(3, -0.4)] * 30
    live = FrankaArm(PANDA, 'velocity')
    batch = FrankaArm(PANDA, 'velocity')
    for k, v in enumerate(ramp):            # a punctual host: submit, step one tick
        live.submit((k + 0.5) * DT, v)
        live.step(1)
    for k, v in enumerate(ramp):            # a late host: everything at once, then 80 ticks
        batch.submit((k + 0.5) * DT, v)
    batch.step(len(ramp))
    a, b = live.state(), batch.state()
    assert np.array_equal(a['q'], b['q']) and np.array_equal(a['qd_ref'], b['qd_ref'])
    assert a['reflex'] is b['reflex'] is None


def test_forward_controller_refuses_nan_and_wrong_length_without_partial_application():
    arm = FrankaArm(PANDA, 'velocity')
    ramp = ruckig_velocity_ramp(PANDA, 0, 0.2)
    _feed(arm, ramp)
    arm.step(len(ramp))
    arm.submit(arm.time, [np.nan] + [0.0] * 6)
    arm.submit(arm.time + 5 * DT, [0.0] * 6)
    arm.step(20)
    s = arm.state()
    assert s['dropped'] == 1 and s['command_errors'] > 0 and s['reflex'] is None
    assert s['qd'][0] == pytest.approx(0.2)          # the last good command keeps running
    assert arm.controller.last_error == 'command size (6) does not match number of interfaces (7)'


def test_torque_rate_limiter_of_franka_ros2_and_without_it():
    limited = FrankaArm(PANDA, 'effort')              # franka_ros2 default: limiter on
    limited.submit(0.0, _unit(4, 1.5))
    limited.step(1)
    assert limited.state()['tau_ref'][4] == pytest.approx(1.0, abs=1e-5)
    limited.step(1)
    assert limited.state()['tau_ref'][4] == pytest.approx(1.5) and limited.reflex is None
    raw = FrankaArm(PANDA, 'effort', torque_rate_limiter=False)
    raw.submit(0.0, _unit(4, 1.5))
    raw.step(1)
    assert raw.state()['reflex'] == fl.TORQUE_DISCONTINUITY
    ok = FrankaArm(PANDA, 'effort', torque_rate_limiter=False)
    for k in range(26):                               # 0.5 Nm/ms up to 13 Nm > tau_max 12
        ok.submit((k + 1) * DT, _unit(4, 0.5 * (k + 1)))
    ok.step(30)
    s = ok.state()
    assert s['reflex'] is None and s['torque_clipped'] > 0      # clipped, not a reflex


def test_zero_torque_floats_and_gripper_reports_an_open_hand():
    arm = FrankaArm(FR3, 'effort')
    arm.step(100)
    s = arm.state()
    assert s['at_rest'] and np.allclose(s['q'], FR3.home) and s['mode'] == 'idle'
    names, q, qd, eff = arm.gripper_state()
    assert names == ('fr3_finger_joint1', 'fr3_finger_joint2') and q.tolist() == [0.04, 0.04]
    assert arm.joint_state()[0] == FR3.joint_names


def test_mujoco_tracks_a_ramp_and_brakes():
    pytest.importorskip('mujoco')
    from rl_control.robots.physics import MujocoTracking
    arm = FrankaArm(PANDA, 'velocity', physics=MujocoTracking(PANDA))
    ramp = ruckig_velocity_ramp(PANDA, 0, 0.3)
    _feed(arm, ramp)
    arm.step(len(ramp) + 150)
    s = arm.state()
    assert s['reflex'] is None and s['qd'][0] == pytest.approx(0.3, abs=0.02)
    assert np.max(np.abs(s['q'] - s['q_ref'])) < 0.01
    arm.submit(arm.time, _unit(1, 0.3) + _unit(0, 0.3))
    # MuJoCo's arm settles on the stopped brake reference within ~100 ms (see MujocoTracking)
    arm.step(int(np.ceil(brake_time_bound(PANDA, s['qd']) / DT)) + 100)
    s = arm.state()
    assert s['reflex'] == fl.VELOCITY_DISCONTINUITY and np.max(np.abs(s['qd'])) < 1e-3
    effort = FrankaArm(PANDA, 'effort', physics=MujocoTracking(PANDA))
    effort.step(200)                                  # zero torque: gravity-compensated float
    assert np.max(np.abs(effort.state()['qd'])) < 1e-2


def test_ideal_arm_takes_a_velocity_step_and_reset_puts_it_at_rest_elsewhere():
    arm = FrankaArm(PANDA, 'velocity', check_limits=False)
    cmd = np.zeros(7)
    cmd[0] = 0.5
    arm.submit(0.0, cmd)
    arm.step(20)
    st = arm.state()
    assert st['reflex'] is None and st['qd'][0] == pytest.approx(0.5)
    q = PANDA.home + 0.1
    arm.reset(q)
    st = arm.state()
    assert st['mode'] == 'idle' and np.allclose(st['q'], q) and np.all(st['qd'] == 0)
