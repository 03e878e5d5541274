"""Bad input and faults in the pure serving loop: never a command outside the limits, never dead.

Each case is what a careless neighbour on the network or a misconfigured bridge sends: a joint
state with an absurd velocity or position (deg/s for rad/s), a policy that raises, a goal left
over from before a deactivation.
"""
import math

import numpy as np
import pytest
from test_serving_loop import ARM, GOAL, feed, make, spec

from rl_control.contract.shaper import Limits, MotionState, Shaper, ShaperConfig, ShaperError
from rl_control.robots.profiles import PANDA
from rl_control.serve import diagnostics
from rl_control.serve.loop import ServeError, ServingLoop
from rl_control.serve.settings import ServeSettings


def _assert_inside_limits(msg):
    pos = np.array([p.positions for p in msg.points])
    vel = np.array([p.velocities for p in msg.points])
    idx = [ARM.index(n) for n in msg.joint_names]
    assert np.all(pos >= PANDA.q_min[idx] - 1e-9) and np.all(pos <= PANDA.q_max[idx] + 1e-9), \
        f'positions outside the limits: max |q| {np.abs(pos).max(0)}'
    assert np.all(np.abs(vel) <= PANDA.qd_max[idx] + 1e-9), \
        f'velocities outside the limits: {np.abs(vel).max(0)} > {PANDA.qd_max[idx]}'


def _serving(t_end=0.4):
    loop = make(ramp_in_s=0.0)
    assert loop.on_goal('panda_link0', GOAL) is None
    t = 0.0
    while t < t_end - 1e-9:
        feed(loop, t)
        out = loop.tick(t, t)
        t += 0.04
    assert out.reason == 'ok'
    return loop, t


@pytest.mark.parametrize('bad', ['3 rad/s', '20 rad/s', '1e6 rad/s', '1e13 rad/s', 'deg/s',
                                 'position 19.8 rad'])
def test_an_implausible_state_is_refused_and_serving_resumes_when_good_states_return(bad):
    loop, t = _serving()
    ref = loop.shaper.reference(t)
    q, qd = ref.q.copy(), ref.qd.copy()
    q[0] += 0.05  # off the plan: a re-anchor would start from this state
    if bad == 'deg/s':
        qd = np.degrees(qd)
    elif bad.startswith('position'):
        q[0] = 19.8
    else:
        qd[0] = float(bad.split()[0])
    sent = []
    for _ in range(3):  # a few such messages, then a tick
        feed(loop, t, q, qd)
        out = loop.tick(t, t)
        assert out.reason == 'implausible_state'
        if out.trajectory is not None:
            sent.append(out.trajectory)
        t += 0.04
    assert sent, 'a brake from the last plausible reference'
    for msg in sent:
        _assert_inside_limits(msg)
        assert np.all(np.array(msg.points[-1].velocities) == 0.0)
    level, message, _hw, values = diagnostics.report(loop, True, '', 'panda',
                                                     diagnostics.LatencyStats(), t, t)
    assert level == diagnostics.ERROR and 'implausible_state' in message
    joint = 'panda_joint1' if bad != 'deg/s' else None
    assert 'implausible joint state' in values['state_error']
    if joint:
        assert joint in values['state_error']
    # plausible states again: re-anchor and serve on, no reset
    moving = []
    for _ in range(15):
        feed(loop, t)
        out = loop.tick(t, t)
        assert out.reason == 'ok'
        _assert_inside_limits(out.trajectory)
        moving.append(np.abs(out.plan.at(out.plan.t0 + 0.02).qd).max())
        t += 0.04
    assert max(moving) > 0.1
    assert loop.failure is None


def test_whatever_the_shaper_is_anchored_on_no_command_leaves_the_limits():
    """A plausible state just above the velocity limit and at the position limit."""
    loop = make(ramp_in_s=0.0)
    loop.on_goal('panda_link0', GOAL)
    q = PANDA.home.copy()
    q[0] = PANDA.q_max[0] + 0.05
    qd = np.zeros(7)
    qd[1] = 1.2 * PANDA.qd_max[1]
    t = 0.0
    for _ in range(10):
        feed(loop, t, q, qd)
        out = loop.tick(t, t)
        if out.trajectory is not None:
            _assert_inside_limits(out.trajectory)
        t += 0.04


def test_ruckig_errors_are_shaper_errors_not_a_crash():
    shaper = Shaper(Limits.from_profile(PANDA), ShaperConfig())
    start = MotionState(PANDA.home.copy(), np.zeros(7), np.zeros(7))
    for v in (1e6, 1e13):
        start.qd[0] = v
        with pytest.raises(ShaperError, match='Ruckig could not plan'):
            shaper._ruckig(start, np.zeros(7))


class _Raising:
    """A policy that raises on its `fail_on`-th call (the dry run is call 1)."""

    def __init__(self, fail_on):
        self.calls, self.fail_on = 0, fail_on

    def act(self, obs):
        self.calls += 1
        if self.calls == self.fail_on:
            raise RuntimeError('actor exploded')
        return np.full(7, 0.3, np.float32)


def test_an_exception_in_a_tick_brakes_latches_the_error_and_reset_lifts_it():
    loop = ServingLoop(spec(), _Raising(fail_on=12), ServeSettings(ramp_in_s=0.0))
    loop.activate(0.0)
    loop.on_goal('panda_link0', GOAL)
    t, outs = 0.0, []
    for _ in range(20):
        feed(loop, t)
        outs.append(loop.tick(t, t))
        t += 0.04
    reasons = [o.reason for o in outs]
    k = reasons.index('internal_error')
    assert set(reasons[k:]) == {'internal_error'}, 'latched'
    brake = outs[k]
    assert brake.trajectory is not None and brake.plan.braking
    assert np.all(np.array(brake.trajectory.points[-1].velocities) == 0.0)
    assert all(o.trajectory is None or o.plan.braking for o in outs[k:])
    level, message, _hw, _v = diagnostics.report(loop, True, '', 'panda',
                                                 diagnostics.LatencyStats(), t, t)
    assert level == diagnostics.ERROR and 'actor exploded' in message
    loop.reset(t)
    for _ in range(3):
        feed(loop, t)
        out = loop.tick(t, t)
        t += 0.04
    assert out.reason == 'ok' and not out.plan.braking


def test_a_goal_does_not_survive_deactivate_and_activate():
    loop, t = _serving()
    loop.deactivate()
    feed(loop, t)
    loop.tick(t, t)
    loop.activate(t)
    for _ in range(5):
        t += 0.04
        feed(loop, t)
        out = loop.tick(t, t)
    assert out.reason == 'no_goal' and loop.goals.goal is None


def test_a_nan_in_the_bundles_goal_region_is_refused_naming_it():
    bad = spec(goal_region={'low': [0.45, math.nan, 0.0], 'high': [0.75, 0.15, 0.3]})
    with pytest.raises(ServeError, match='goal_region'):
        ServingLoop(bad, _Raising(0), ServeSettings())


def test_the_command_check_names_the_joint_and_value():
    from rl_control.robots.trajectory import JointTrajectory, JointTrajectoryPoint
    from rl_control.serve.guards import CommandLimitError, check_trajectory

    lim = (PANDA.q_min, PANDA.q_max, PANDA.qd_max)
    ok = JointTrajectoryPoint(0.0, list(PANDA.home), [0.0] * 7, [0.0] * 7)
    fast = JointTrajectoryPoint(0.004, list(PANDA.home), [0.0, 3.0, *[0.0] * 5], [0.0] * 7)
    check_trajectory(JointTrajectory(ARM, [ok], 0.0), ARM, *lim)
    with pytest.raises(CommandLimitError, match='point 1 of panda_joint2: velocity 3 exceeds'):
        check_trajectory(JointTrajectory(ARM, [ok, fast], 0.0), ARM, *lim)
