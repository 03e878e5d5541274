import math

import numpy as np
import pytest

from rl_control.robots.fr3 import libfranka_lower_velocity as fr3_libfranka_lower_velocity
from rl_control.robots.fr3 import libfranka_upper_velocity as fr3_libfranka_upper_velocity
from rl_control.robots.franka_limits import K_LIMIT_EPS
from rl_control.robots.profiles import FR3, PANDA, get_profile


def test_exact_project_values():
    assert PANDA.qd_max.tolist() == [2.175] * 4 + [2.61] * 3
    assert PANDA.qddd_max.tolist() == [7500, 3750, 5000, 6250, 7500, 10000, 10000]
    assert PANDA.qdd_max.tolist() == [15, 7.5, 10, 12.5, 15, 20, 20]
    assert FR3.q_min[5] == 0.5445 and FR3.q_max[3] == -0.1518
    assert FR3.qdd_max.tolist() == [10] * 7 and FR3.qddd_max.tolist() == [5000] * 7
    assert FR3.joint_names[0] == 'fr3_joint1' and FR3.base_frame == 'fr3_link0'
    assert PANDA.finger_joint_names == ('panda_finger_joint1', 'panda_finger_joint2')
    for p in (PANDA, FR3):
        assert np.all(p.q_min < p.home) and np.all(p.home < p.q_max)
        assert p.tau_max.tolist() == [87] * 4 + [12] * 3 and p.dtau_max.tolist() == [1000] * 7
        with pytest.raises(ValueError):
            p.q_min[0] = 0.0          # read-only arrays: a profile cannot be edited by accident


def test_get_profile_names_valid_ones():
    assert get_profile('FR3') is FR3
    with pytest.raises(ValueError, match=r"\['fr3', 'panda'\]"):
        get_profile('ur5')


def _cpp_upper(q):
    """libfranka 0.15.0 computeUpperLimitsJointVelocity, transcribed independently, scalar."""
    def f(cap, off, k, ref, qi):
        return min(cap, max(0.0, off + math.sqrt(max(0.0, k * (ref - qi))))) - K_LIMIT_EPS
    return [f(2.62, -0.30, 12.0, 2.75010, q[0]), f(2.62, -0.20, 5.17, 1.79180, q[1]),
            f(2.62, -0.20, 7.00, 2.90650, q[2]), f(2.62, -0.30, 8.00, -0.1458, q[3]),
            f(5.26, -0.35, 34.0, 2.81010, q[4]), f(4.18, -0.35, 11.0, 4.52050, q[5]),
            f(5.26, -0.35, 34.0, 3.01960, q[6])]


def _cpp_lower(q):
    def f(cap, off, k, ref, qi):
        return max(-cap, min(0.0, off - math.sqrt(max(0.0, k * (ref + qi))))) + K_LIMIT_EPS
    return [f(2.62, 0.30, 12.0, 2.750100, q[0]), f(2.62, 0.20, 5.17, 1.791800, q[1]),
            f(2.62, 0.20, 7.00, 2.906500, q[2]), f(2.62, 0.30, 8.00, 3.048100, q[3]),
            f(5.26, 0.35, 34.0, 2.810100, q[4]), f(4.18, 0.35, 11.0, -0.54092, q[5]),
            f(5.26, 0.35, 34.0, 3.019600, q[6])]


@pytest.mark.parametrize('q', [FR3.home, FR3.q_max - 0.05, FR3.q_min + 0.05,
                               0.5 * (FR3.q_min + FR3.q_max), FR3.q_max])
def test_fr3_velocity_limits_match_libfranka(q):
    lo, hi = FR3.shaping_velocity_limits(q)
    assert np.allclose(hi, _cpp_upper(q), rtol=0, atol=1e-12)
    assert np.allclose(lo, _cpp_lower(q), rtol=0, atol=1e-12)
    assert np.allclose(hi, fr3_libfranka_upper_velocity(q)) and np.allclose(
        lo, fr3_libfranka_lower_velocity(q))
    nlo, nhi = FR3.velocity_limits(q)      # the robot's bound: libfranka's without kLimitEps
    assert np.allclose(nhi - hi, K_LIMIT_EPS) and np.allclose(lo - nlo, K_LIMIT_EPS)


def test_fr3_velocity_limit_hand_values():
    _, hi = FR3.velocity_limits(FR3.home)
    # joint 2 at 0.41: -0.2 + sqrt(5.17 * (1.7918 - 0.41)) = 2.47281 < 2.62
    assert hi[1] == pytest.approx(-0.2 + math.sqrt(5.17 * (1.7918 - 0.41)), abs=1e-12)
    assert hi[0] == pytest.approx(2.62)
    _, hi_edge = FR3.velocity_limits(FR3.q_max)
    assert np.all(hi_edge < 0.6)            # the allowed speed towards a limit shrinks there
    lo_p, hi_p = PANDA.velocity_limits(FR3.q_max)
    assert np.array_equal(hi_p, PANDA.qd_max) and np.array_equal(lo_p, -PANDA.qd_max)
    # Panda band libfranka 0.9.2 targets: 2.175 - kLimitEps - 3 * 1e-3 * (15 - kLimitEps)
    assert PANDA.shaping_velocity_limits(PANDA.home)[1][0] == pytest.approx(2.129003)
