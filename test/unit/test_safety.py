"""The safety gate: e-stop latch, inactive, bad targets, clamp (live speed scaling), ramp-in."""
import numpy as np
import pytest

from rl_control.serve import safety
from rl_control.serve.safety import SafetyFilter

LOW, HIGH = -np.ones(3), np.ones(3)


def gate(**kw):
    f = SafetyFilter(LOW, HIGH, **kw)
    f.activate(0.0)
    return f


def test_inactive_and_estop_stop_until_lifted():
    f = SafetyFilter(LOW, HIGH, ramp_in_s=0.0)
    assert f.filter(0.0, np.zeros(3)).reason == safety.INACTIVE
    f.activate(0.0)
    assert f.filter(0.1, np.full(3, 0.5)).reason == safety.OK
    f.estop()
    for t in (0.2, 5.0):  # nothing but reset lifts it
        r = f.filter(t, np.full(3, 0.5))
        assert r.command is None and r.reason == safety.ESTOP
    f.reset(6.0)
    assert f.filter(6.1, np.full(3, 0.5)).reason == safety.OK
    f.deactivate()
    assert f.filter(7.0, np.full(3, 0.5)).reason == safety.INACTIVE
    assert f.counts[safety.ESTOP] == 2


@pytest.mark.parametrize('target', [None, np.array([0.1, np.nan, 0.0]),
                                    np.array([np.inf, 0.0, 0.0])])
def test_a_missing_or_non_finite_target_is_a_stop(target):
    r = gate().filter(1.0, target)
    assert r.command is None and r.reason == safety.BAD_ACTION


def test_a_host_reason_is_a_stop_with_that_reason():
    r = gate().filter(1.0, np.zeros(3), 'stale_state')
    assert r.command is None and r.reason == 'stale_state'


def test_clamp_to_the_limits_and_live_speed_scaling():
    f = gate(ramp_in_s=0.0)
    r = f.filter(1.0, np.array([2.0, -0.5, -3.0]))
    np.testing.assert_array_equal(r.command, [1.0, -0.5, -1.0])
    assert r.clamped and f.counts['clamped'] == 1
    f.set_clamp_scale(0.25)
    np.testing.assert_array_equal(f.filter(1.1, np.array([2.0, -0.5, 0.1])).command,
                                  [0.25, -0.25, 0.1])
    with pytest.raises(ValueError, match='clamp_scale'):
        f.set_clamp_scale(1.5)


def test_ramp_in_after_activation_and_after_reset():
    f = gate(ramp_in_s=1.0)
    np.testing.assert_allclose(f.filter(0.25, np.ones(3)).command, 0.25)
    np.testing.assert_allclose(f.filter(2.0, np.ones(3)).command, 1.0)
    f.estop()
    f.reset(3.0)
    r = f.filter(3.5, np.ones(3))
    assert r.ramp == pytest.approx(0.5)


def test_limits_must_be_ordered():
    with pytest.raises(ValueError, match='low <= high'):
        SafetyFilter(HIGH, LOW)
