import numpy as np
import pytest

from rl_control.robots import franka_limits as fl
from rl_control.robots.franka import FrankaArm
from rl_control.robots.jtc import JointTrajectoryController
from rl_control.robots.profiles import PANDA
from rl_control.robots.trajectory import (
    NS,
    JointTrajectory,
    JointTrajectoryPoint,
    Point,
    interpolate_between_points,
)

DT = 1e-3
NAMES = PANDA.joint_names
HOME = PANDA.home


def _pt(t, dq0=0.0, v=(), a=()):
    q = HOME.copy()
    q[0] += dq0
    return JointTrajectoryPoint(t, q.tolist(), list(v), list(a))


def _vel(v0):
    return [v0] + [0.0] * 6


# -- validation ------------------------------------------------------------------------------
def test_nonzero_final_velocity_rejected_then_accepted_with_the_option():
    msg = JointTrajectory(NAMES, [_pt(0.5, 0.05, _vel(0.1))])
    arm = FrankaArm(PANDA, 'trajectory')
    arm.submit(0.0, msg)
    arm.step(5)
    s = arm.state()
    assert s['rejected'] == 1 and s['mode'] == 'idle'
    assert s['rejections'][0][1] == ('Velocity of last trajectory point of joint panda_joint1 '
                                      'is not zero: 0.100000000000000')
    ok = FrankaArm(PANDA, 'trajectory', allow_nonzero_velocity_at_trajectory_end=True)
    ok.submit(0.0, msg)
    ok.step(5)
    assert ok.state()['rejected'] == 0 and ok.state()['mode'] == 'move'


@pytest.mark.parametrize('msg, text', [
    (JointTrajectory(NAMES, [_pt(0.1), _pt(0.1)]),
     'Time between points 0 and 1 is not strictly increasing, it is 0.100000 and 0.100000 '
     'respectively'),
    (JointTrajectory(NAMES, [_pt(0.2), _pt(0.1, 0.1)]),
     'Time between points 0 and 1 is not strictly increasing, it is 0.200000 and 0.100000 '
     'respectively'),
    (JointTrajectory(NAMES[:6], [_pt(0.1)]),
     "Joints on incoming trajectory don't match the controller joints."),
    (JointTrajectory(NAMES, []), 'Empty trajectory received.'),
    # unknown joint is reported before the (also wrong) final velocity: the C++ order
    (JointTrajectory(('fr3_joint1',) + NAMES[1:], [_pt(0.1, 0, _vel(1.0))]),
     "Incoming joint fr3_joint1 doesn't match the controller's joints."),
    (JointTrajectory(NAMES, [JointTrajectoryPoint(0.1, HOME[:6].tolist())]),
     'Mismatch between joint_names size (7) and positions (6) at point #0.'),
    (JointTrajectory(NAMES, [JointTrajectoryPoint(0.1, HOME.tolist(), [0.0] * 3)]),
     'Mismatch between joint_names size (7) and velocities (3) at point #0.'),
    (JointTrajectory(NAMES, [JointTrajectoryPoint(0.1, HOME.tolist(), effort=[0.0] * 7)]),
     "Trajectories with effort fields are only supported for controllers using the 'effort' "
     "command interface."),
])
def test_rejections_carry_the_controller_log_text(msg, text):
    jtc = JointTrajectoryController(NAMES)
    assert jtc.on_message(msg, 0.3) == text and jtc.rejected == [(0.3, text)]


def test_trajectory_ending_in_the_past_is_rejected():
    arm = FrankaArm(PANDA, 'trajectory')
    arm.step(1000)
    arm.submit(arm.time, JointTrajectory(NAMES, [_pt(0.2, 0.01)], stamp=0.5))
    later = _pt(0.6, 0.005, [0.0] * 7)        # cubic from rest: no reflex of its own
    arm.submit(arm.time, JointTrajectory(NAMES, [later], stamp=0.5))
    arm.step(2)
    s = arm.state()
    assert s['rejected'] == 1 and s['rejections'][0][1] == (
        'Received trajectory with non-zero start time (0.500000) that ends in the past '
        '(0.700000)')
    assert s['mode'] == 'move'             # the second one ends at 1.1 s > now: accepted


def test_nan_positions_pass_validation_and_stop_the_arm():
    # validate_trajectory_msg has no finiteness check; franka_hardware's write() refuses the NaN
    arm = FrankaArm(PANDA, 'trajectory')
    q = HOME.copy()
    q[2] = np.nan
    arm.submit(0.0, JointTrajectory(NAMES, [JointTrajectoryPoint(0.2, q.tolist())]))
    arm.step(3)
    s = arm.state()
    assert s['rejected'] == 0 and s['reflex'] == fl.NON_FINITE_COMMAND
    assert s['reflex_violation'].joint == 2


# -- interpolation -----------------------------------------------------------------------------
def _cubic(p0, v0, p1, v1, T, s):
    u = s / T
    return ((2 * u**3 - 3 * u**2 + 1) * p0 + (u**3 - 2 * u**2 + u) * T * v0
            + (-2 * u**3 + 3 * u**2) * p1 + (u**3 - u**2) * T * v1)


def _quintic(p0, v0, a0, p1, v1, a1, T, s):
    rows = [[1, 0, 0, 0, 0, 0], [0, 1, 0, 0, 0, 0], [0, 0, 2, 0, 0, 0],
            [1, T, T**2, T**3, T**4, T**5], [0, 1, 2 * T, 3 * T**2, 4 * T**3, 5 * T**4],
            [0, 0, 2, 6 * T, 12 * T**2, 20 * T**3]]
    c = np.linalg.solve(np.array(rows, dtype=float), [p0, v0, a0, p1, v1, a1])
    return sum(c[i] * s**i for i in range(6))


def test_cubic_and_quintic_match_the_analytic_spline_mid_segment():
    a = Point([0.2], [0.5], [1.0])
    b = Point([0.9], [-0.3], [-2.0])
    T, s = 0.7, 0.29
    cubic = interpolate_between_points(0, Point([0.2], [0.5]), int(T * NS), Point([0.9], [-0.3]),
                                       int(s * NS))
    assert cubic.positions[0] == pytest.approx(_cubic(0.2, 0.5, 0.9, -0.3, T, s), abs=1e-12)
    quintic = interpolate_between_points(0, a, int(T * NS), b, int(s * NS))
    assert quintic.positions[0] == pytest.approx(
        _quintic(0.2, 0.5, 1.0, 0.9, -0.3, -2.0, T, s), abs=1e-12)
    linear = interpolate_between_points(0, Point([0.2], [0.5]), int(T * NS), Point([0.9]),
                                        int(s * NS))
    assert linear.positions[0] == pytest.approx(0.2 + 0.7 * s / T) and not linear.accelerations[0]


def test_the_command_is_the_spline_one_period_ahead_and_the_last_point_is_held():
    # from rest at home to home + 0.1 on joint 1 in 0.5 s, quintic (pos, vel, acc given)
    msg = JointTrajectory(NAMES, [_pt(0.5, 0.1, [0.0] * 7, [0.0] * 7)])
    arm = FrankaArm(PANDA, 'trajectory')
    arm.submit(0.0005, msg)            # installed at the 1 ms tick: start = 1 ms
    arm.step(201)                    # tick 201 (0.201 s) writes the sample at 0.202 s
    expected = _quintic(0.0, 0.0, 0.0, 0.1, 0.0, 0.0, 0.5, 0.202 - 0.001)
    assert arm.state()['q_ref'][0] - HOME[0] == pytest.approx(expected, abs=1e-12)
    arm.step(400)
    s = arm.state()
    assert s['reflex'] is None and s['q_ref'][0] == pytest.approx(HOME[0] + 0.1, abs=1e-15)
    arm.step(300)
    assert arm.state()['q_ref'][0] == pytest.approx(HOME[0] + 0.1, abs=1e-15)
    assert not np.any(arm.state()['qd_ref'])


# -- overlapping streams -----------------------------------------------------------------------
B, W = 0.05, np.pi          # plan: joint 1 moves B (w t - sin w t): starts at rest, smooth


def _plan(t):
    return B * (W * t - np.sin(W * t)), B * W * (1 - np.cos(W * t)), B * W**2 * np.sin(W * t)


def _stream(arm, start_of, n=50, stamp_lead=None, quintic=True):
    """A 50 Hz policy: every 20 ms a 100 ms plan chunk, points every 10 ms from `start_of`."""
    knots = np.arange(0.0, 0.101, 0.01)
    for k in range(n):
        arrival = k * 0.02 + (0.0003 if k % 2 else 0.0008)      # jitter inside the tick
        stamp = 0.0
        start = start_of(arrival)
        if stamp_lead is not None and k > 0:
            stamp = start = np.ceil(arrival / DT) * DT + stamp_lead
        pts = []
        for i, tf in enumerate(knots):
            p, v, a = _plan(start + tf)
            if i == len(knots) - 1:
                v = a = 0.0                  # the controller rejects a moving final point
            pts.append(_pt(float(tf), p, _vel(v), _vel(a) if quintic else ()))
        arm.submit(arrival, JointTrajectory(NAMES, pts, stamp=float(stamp)))
    arm.step(20 * n)
    return arm.state()


# HEAD's blending with the project's earlier recommendation (start from the desired state)
HEAD = {'allow_trajectory_replacement': True, 'interpolate_from_desired_state': True}


def _install_tick(arrival):
    return np.ceil(arrival / DT - 1e-9) * DT       # the first 1 ms tick at or after arrival


def _rounded(arrival):
    return np.round(arrival / 5e-4) * 5e-4         # start time rounded to half a millisecond


@pytest.mark.parametrize('quintic', [True, False])
def test_stream_planned_for_the_install_tick_blends_without_a_reflex(quintic):
    arm = FrankaArm(PANDA, 'trajectory', **HEAD)
    s = _stream(arm, _install_tick, quintic=quintic)
    assert s['reflex'] is None and s['rejected'] == 0 and arm.controller.blends == 49
    assert s['q_ref'][0] - HOME[0] == pytest.approx(_plan(1.0 + 0.001)[0], abs=1e-6)


@pytest.mark.parametrize('quintic', [True, False])
def test_stream_with_start_rounded_by_half_a_millisecond_trips_the_checker(quintic):
    """The shaper's failure mode: its first point belongs 0 or 0.5 ms off the install tick.

    Each re-plan then steps the reference by v * 0.5 ms inside one period: an acceleration spike
    of ~v * 500 / s that the finite differences see (here its jerk, > 7500 rad/s^3 on joint 1).
    """
    arm = FrankaArm(PANDA, 'trajectory', **HEAD)
    s = _stream(arm, _rounded, quintic=quintic)
    assert s['reflex'] in (fl.ACCELERATION_DISCONTINUITY, fl.VELOCITY_DISCONTINUITY)
    tick = round(s['reflex_time'] / DT)
    assert (tick - 1) % 20 in (0, 1)               # at (or right after) a hand-over
    assert s['reflex_violation'].joint == 0


def test_head_future_stamped_replan_moves_two_periods_in_one():
    """HEAD samples the command at t + dt but files it as the state at t (#1306 + #780).

    A future-stamped re-plan starts its first segment from that state, one period early, so at
    velocity v the first command moves 2 v dt: jerk ~ 2 v / dt^2 even for a perfect plan.
    Starting from the measured state (interpolate_from_desired_state=False) avoids it when the
    arm tracks exactly (ExactTracking); a real arm's tracking error would be injected instead.
    """
    arm = FrankaArm(PANDA, 'trajectory', **HEAD)
    s = _stream(arm, _install_tick, stamp_lead=0.005)
    assert s['reflex'] == fl.ACCELERATION_DISCONTINUITY
    v = _plan(s['reflex_time'])[1]
    assert abs(s['reflex_violation'].value) == pytest.approx(2 * v / DT**2, rel=0.15)
    measured = FrankaArm(PANDA, 'trajectory', allow_trajectory_replacement=True)
    assert _stream(measured, _install_tick, stamp_lead=0.005)['reflex'] is None


# -- partial goals -----------------------------------------------------------------------------
def _drive(jtc, t0, t1, q):
    for k in range(t0, t1):
        out = jtc.update(k * 1_000_000, 1_000_000, q, np.zeros(7))
        q = out if out is not None else q
    return q


@pytest.mark.parametrize('replacement', [True, False])
def test_partial_goal_omitted_joint(replacement):
    jtc = JointTrajectoryController(NAMES, allow_partial_joints_goal=True,
                                    allow_trajectory_replacement=replacement)
    jtc.activate(HOME, np.zeros(7))
    q = _drive(jtc, 1, 2, HOME)
    full = JointTrajectory(NAMES, [_pt(0.0), _pt(1.0, 0.2)])       # joint 1: +0.2 in 1 s
    jtc.on_message(full, 0.0015)
    q = _drive(jtc, 2, 300, q)
    partial = JointTrajectory(NAMES[1:2], [JointTrajectoryPoint(0.0, [HOME[1]]),
                                           JointTrajectoryPoint(0.5, [HOME[1] + 0.1])])
    jtc.on_message(partial, 0.2995)
    command_before = q[0]
    _drive(jtc, 300, 301, q)
    first = jtc.traj.msg.points[0].positions[0]
    if replacement:
        # blended: joint 1 keeps following the old trajectory, but it is sampled at the cursor
        # (the previous cycle, 299 ms) and placed at 300 ms: one period late (HEAD)
        old_at_299 = HOME[0] + 0.2 * 0.297      # the old line started at 2 ms
        assert first == pytest.approx(old_at_299, abs=1e-12)
        mid, last = jtc.traj.msg.points[1], jtc.traj.msg.points[-1]
        assert mid.positions[0] == pytest.approx(HOME[0] + 0.2 * 0.797, abs=1e-12)
        # the old final point is appended, joint 2 held at its new target: joint 1 finishes
        assert last.positions[:2] == pytest.approx([HOME[0] + 0.2, HOME[1] + 0.1])
    else:
        # legacy fill_partial_goal: joint 1 holds the last position command
        assert first == pytest.approx(command_before) and jtc.blends == 0
