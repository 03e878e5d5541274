from franka_helpers import ruckig_velocity_ramp
import numpy as np
import pytest

from rl_control.robots import franka_limits as fl
from rl_control.robots.franka import FrankaArm
from rl_control.robots.profiles import FR3, PANDA

DT = 1e-3


def _unit(j, value):
    v = np.zeros(7)
    v[j] = value
    return v


def test_velocity_step_held_by_forward_controller_reflexes_at_first_tick():
    arm = FrankaArm(PANDA, 'velocity')
    arm.submit(0.0, _unit(0, 0.5))
    arm.step(10)
    s = arm.state()
    assert s['reflex'] == fl.VELOCITY_DISCONTINUITY
    assert s['reflex_time'] == pytest.approx(DT)          # the first tick
    assert s['reflex_violation'].value == pytest.approx(500.0)   # 0.5 rad/s in 1 ms
    assert fl.ACCELERATION_DISCONTINUITY in s['reflex_errors']   # the bitset has both


@pytest.mark.parametrize('profile', [PANDA, FR3])
def test_ruckig_velocity_ramp_passes_on_the_velocity_interface(profile):
    ramp = ruckig_velocity_ramp(profile, 1, 0.5)
    arm = FrankaArm(profile, 'velocity')
    for k, v in enumerate(ramp):
        arm.submit(k * DT + 0.0004, v)     # arrives mid-tick, applied at tick k + 1
    arm.step(len(ramp) + 50)
    s = arm.state()
    assert s['reflex'] is None and s['mode'] == 'move'
    assert s['qd_ref'][1] == pytest.approx(0.5)


def test_position_stream_integrated_from_the_ramp_passes():
    ramp = ruckig_velocity_ramp(PANDA, 1, 0.5) + [_unit(1, 0.5)] * 100
    checker = fl.FrankaLimitChecker(PANDA, 'position')
    q = PANDA.home.copy()
    checker.reset(q)
    for v in ramp:
        q = q + v * DT
        assert checker.check(q) is None
    assert checker.dq_d[1] == pytest.approx(0.5)
    # the same stream, but the position starts with a 1 ms gap (one sample lost): caught
    checker.reset(PANDA.home)
    assert checker.check(PANDA.home + 2 * ramp[5] * DT).name == fl.VELOCITY_DISCONTINUITY


def test_jerk_only_violation_is_acceleration_discontinuity():
    # joint 2 of a Panda: acceleration step 0 -> 5 rad/s^2 is inside 7.5, its jerk 5000 > 3750
    checker = fl.FrankaLimitChecker(PANDA, 'velocity')
    v = checker.check(_unit(1, 5.0 * DT))
    assert v.name == fl.ACCELERATION_DISCONTINUITY and v.joint == 1
    assert v.value == pytest.approx(5000.0) and v.limit == 3750.0
    checker.reset(PANDA.home)
    assert checker.check(_unit(1, 3.0 * DT)) is None       # jerk 3000 < 3750


def test_acceleration_violation_is_velocity_discontinuity():
    checker = fl.FrankaLimitChecker(FR3, 'velocity')
    v = 0.0
    for k in range(200):         # jerk-limited ramp of the acceleration towards 12 > 10 rad/s^2
        a = min(12.0, 4000.0 * (k + 1) * DT)
        v += a * DT
        found = checker.check(_unit(0, v))
        if found:
            break
    assert found.name == fl.VELOCITY_DISCONTINUITY and found.quantity == 'acceleration'
    assert abs(found.value) >= 10.0


def test_velocity_limit_violation():
    ramp = ruckig_velocity_ramp(PANDA, 0, 2.3)     # beyond 2.175, acc / jerk inside
    arm = FrankaArm(PANDA, 'velocity')
    for k, v in enumerate(ramp):
        arm.submit((k + 1) * DT, v)
    arm.step(len(ramp) + 5)
    s = arm.state()
    assert s['reflex'] == fl.VELOCITY_LIMITS
    assert s['reflex_violation'].limit == pytest.approx(2.175)


def test_fr3_velocity_limit_is_position_dependent():
    q0 = FR3.home.copy()
    q0[0] = FR3.q_max[0] - 0.1          # allowed speed here: -0.3 + sqrt(12 * 0.1064) ~ 0.83
    arm = FrankaArm(FR3, 'velocity', q0=q0)
    ramp = ruckig_velocity_ramp(FR3, 0, 1.5)      # fine at home, too fast this close to the limit
    for k, v in enumerate(ramp):
        arm.submit((k + 1) * DT, v)
    arm.step(len(ramp))
    assert arm.state()['reflex'] == fl.VELOCITY_LIMITS


def test_position_limit_violation_on_the_velocity_interface():
    q0 = PANDA.home.copy()
    q0[0] = PANDA.q_max[0] - 0.002
    arm = FrankaArm(PANDA, 'velocity', q0=q0)
    ramp = ruckig_velocity_ramp(PANDA, 0, 0.2)
    for k, v in enumerate(ramp + [_unit(0, 0.2)]):
        arm.submit((k + 1) * DT, v)
    arm.step(len(ramp) + 20)
    s = arm.state()
    assert s['reflex'] == fl.POSITION_LIMITS
    assert s['reflex_violation'].limit == PANDA.q_max[0]


def test_torque_rate():
    checker = fl.FrankaLimitChecker(PANDA, 'effort')
    found = checker.check(_unit(3, 1.5))              # 1.5 Nm in 1 ms = 1500 Nm/s from rest
    assert found.name == fl.TORQUE_DISCONTINUITY and found.value == pytest.approx(1500.0)
    checker.reset(PANDA.home)
    tau = 0.0
    for _ in range(100):                               # 0.5 Nm/ms ramp to 50 Nm
        tau += 0.5
        assert checker.check(_unit(3, tau)) is None


def test_measured_limits_and_non_finite():
    checker = fl.FrankaLimitChecker(PANDA, 'position')
    q = PANDA.home.copy()
    q[6] = PANDA.q_max[6] + 1e-4
    assert checker.check_measured(q, np.zeros(7)).name == fl.MEASURED_POSITION_LIMITS
    assert checker.check_measured(PANDA.home, _unit(4, -2.7)).name == fl.MEASURED_VELOCITY
    assert checker.check_measured(PANDA.home, np.zeros(7)) is None
    assert checker.check(np.full(7, np.nan)).name == fl.NON_FINITE_COMMAND


@pytest.mark.parametrize('interface', ['position', 'effort'])
def test_check_batch_judges_as_sample_by_sample_checks(interface):
    rng = np.random.default_rng(0)
    base = PANDA.home if interface == 'position' else np.zeros(7)
    scale = 1e-4 if interface == 'position' else 0.3
    samples = base + np.cumsum(rng.normal(0, scale, (200, 7)), axis=0)
    samples[120, 2] += 0.01 if interface == 'position' else 5.0  # one jump
    a = fl.FrankaLimitChecker(PANDA, interface)
    b = fl.FrankaLimitChecker(PANDA, interface)
    a.reset(PANDA.home)
    b.reset(PANDA.home)
    seq = [(i, v) for i, v in ((i, a.check(s, enforce=False)) for i, s in enumerate(samples))
           if v is not None]
    got = b.check_batch(samples)
    assert seq and got is not None and got[0] == seq[0][0] and got[1] == seq[0][1]
    assert np.array_equal(a.q_d, b.q_d) and np.array_equal(a.tau_d, b.tau_d)
