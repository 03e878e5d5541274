"""The safety filter, without ROS: every stage on its own and in order."""
import math

import numpy as np
import pytest

from rl_control.serve import safety
from rl_control.serve.safety import SafetyConfig, SafetyFilter

N = 3
LOW = [-1.0, -2.0, -0.5]
HIGH = [1.0, 2.0, 0.5]
PERIOD = 0.04


def make(**kw) -> SafetyFilter:
    cfg = dict(low=LOW, high=HIGH, period_s=PERIOD, ramp_in_s=0.0, rate_limit=0.0,
               stale_periods=2, max_state_age_s=0.0)
    cfg.update(kw)
    f = SafetyFilter(SafetyConfig(**cfg))
    f.activate(0.0)
    return f


def test_passes_a_valid_command_unchanged():
    f = make()
    f.note_state(0.0)
    r = f.filter(0.01, np.array([0.1, -0.2, 0.3]))
    assert r.reason == safety.OK
    np.testing.assert_allclose(r.command, [0.1, -0.2, 0.3])
    assert not r.clamped and not r.rate_limited


def test_clamps_per_joint_with_scale():
    f = make(clamp_scale=0.5)
    f.note_state(0.0)
    r = f.filter(0.01, np.array([5.0, -5.0, 0.2]))
    np.testing.assert_allclose(r.command, [0.5, -1.0, 0.2])
    assert r.clamped and f.counts['clamped'] == 1


def test_inactive_and_no_state_give_zero():
    f = SafetyFilter(SafetyConfig(low=LOW, high=HIGH, period_s=PERIOD))
    f.note_state(0.0)
    assert f.filter(0.0, np.ones(N)).reason == safety.INACTIVE
    f.activate(0.0)
    g = make()
    r = g.filter(0.0, np.ones(N) * 0.1)
    assert r.reason == safety.NO_STATE and not r.command.any()


def test_watchdog_zeroes_after_stale_periods_and_recovers():
    f = make()
    f.note_state(1.0)
    assert f.filter(1.0 + 1.9 * PERIOD, np.full(N, 0.1)).reason == safety.OK
    r = f.filter(1.0 + 2.1 * PERIOD, np.full(N, 0.1))
    assert r.reason == safety.STALE_STATE and not r.command.any()
    f.note_state(2.0)
    assert f.filter(2.0, np.full(N, 0.1)).reason == safety.OK


def test_old_header_stamp_is_stale_even_if_fresh_arrival():
    f = make(max_state_age_s=0.1)
    f.note_state(5.0, stamp=4.5)
    assert f.filter(5.0, np.full(N, 0.1)).reason == safety.OLD_STAMP
    f.note_state(5.0, stamp=4.95)
    assert f.filter(5.0, np.full(N, 0.1)).reason == safety.OK
    f.note_state(5.0, stamp=0.0)  # empty header: age check skipped
    assert f.filter(5.0, np.full(N, 0.1)).reason == safety.OK


def test_nan_state_is_dropped_until_valid_state_returns():
    f = make()
    f.note_state(0.0)
    f.invalidate_state()
    r = f.filter(0.01, np.full(N, 0.1))
    assert r.reason == safety.BAD_STATE and not r.command.any()
    assert f.counts[safety.BAD_STATE] >= 1
    f.note_state(0.02)
    assert f.filter(0.02, np.full(N, 0.1)).reason == safety.OK


@pytest.mark.parametrize('bad', [math.nan, math.inf, -math.inf])
def test_non_finite_action_gives_zero(bad):
    f = make()
    f.note_state(0.0)
    r = f.filter(0.0, np.array([0.1, bad, 0.1]))
    assert r.reason == safety.BAD_ACTION and not r.command.any()


def test_missing_goal_gives_zero_with_reason():
    f = make()
    f.note_state(0.0)
    r = f.filter(0.0, None, missing_reason=safety.NO_GOAL)
    assert r.reason == safety.NO_GOAL and not r.command.any()


def test_ramp_in_scales_linearly_from_activation():
    f = make(ramp_in_s=1.0)
    f.activate(10.0)
    f.note_state(10.0)
    np.testing.assert_allclose(f.filter(10.0, np.full(N, 0.4)).command, 0.0)
    f.note_state(10.25)
    np.testing.assert_allclose(f.filter(10.25, np.full(N, 0.4)).command, 0.1)
    f.note_state(11.5)
    np.testing.assert_allclose(f.filter(11.5, np.full(N, 0.4)).command, 0.4)


def test_rate_limit_per_second_scaled_by_tick():
    f = make(rate_limit=[1.0, 10.0, 0.0])  # 0: joint unlimited
    t = 0.0
    f.note_state(t)
    r = f.filter(t, np.array([1.0, 1.0, 0.5]))  # first tick uses dt = period
    np.testing.assert_allclose(r.command, [0.04, 0.4, 0.5])
    assert r.rate_limited
    t += 0.02
    f.note_state(t)
    r = f.filter(t, np.array([1.0, 1.0, 0.5]))
    np.testing.assert_allclose(r.command, [0.06, 0.6, 0.5])
    t += 1.0  # a long gap does not allow a big step: dt is capped at one period
    f.note_state(t)
    np.testing.assert_allclose(f.filter(t, np.array([1.0, 1.0, 0.5])).command, [0.1, 1.0, 0.5])


def test_stop_is_immediate_and_restart_is_rate_limited():
    f = make(rate_limit=1.0)
    f.note_state(0.0)
    for k in range(40):
        f.note_state(k * PERIOD)
        f.filter(k * PERIOD, np.full(N, 0.4))
    t = 40 * PERIOD
    r = f.filter(t + 1.0, np.full(N, 0.4))  # stale: no state for 1 s
    assert r.reason == safety.STALE_STATE and not r.command.any()
    f.note_state(t + 1.04)
    r = f.filter(t + 1.04, np.full(N, 0.4))
    np.testing.assert_allclose(r.command, 0.04)  # starts again from zero


def test_estop_latches_until_reset():
    f = make()
    f.note_state(0.0)
    f.estop()
    for t in (0.0, 0.01, 0.02):
        f.note_state(t)
        r = f.filter(t, np.full(N, 0.3))
        assert r.reason == safety.ESTOP and not r.command.any()
    assert f.estopped
    f.reset()
    assert f.filter(0.02, np.full(N, 0.3)).reason == safety.OK


def test_reset_restarts_ramp_in():
    f = make(ramp_in_s=1.0)
    f.note_state(5.0)
    f.estop()
    f.reset(now=5.0)
    f.note_state(5.5)
    np.testing.assert_allclose(f.filter(5.5, np.full(N, 0.2)).command, 0.1)


def test_deactivate_gives_zero():
    f = make()
    f.note_state(0.0)
    f.deactivate()
    assert f.filter(0.0, np.full(N, 0.3)).reason == safety.INACTIVE


def test_config_validation():
    with pytest.raises(ValueError):
        SafetyConfig(low=[1.0], high=[0.0], period_s=0.04)
    with pytest.raises(ValueError):
        SafetyConfig(low=[0.0], high=[1.0], period_s=0.04, clamp_scale=1.5)
    with pytest.raises(ValueError):
        SafetyConfig(low=[0.0], high=[1.0], period_s=0.04, rate_limit=-1.0)


def test_all_finite():
    assert safety.all_finite([1.0, 2.0], None)
    assert not safety.all_finite([1.0, math.nan])


def test_two_ticks_at_the_same_instant_stay_finite():
    f = make(rate_limit=[1.0, 0.0, 0.0])
    f.note_state(1.0)
    f.filter(1.0, np.array([0.5, 0.5, 0.5]))
    r = f.filter(1.0, np.array([0.5, 0.5, 0.5]))  # dt = 0 (e.g. lockstep sim time)
    assert np.all(np.isfinite(r.command))
    np.testing.assert_allclose(r.command, [0.04, 0.5, 0.5], atol=1e-8)


def test_stamp_slightly_ahead_counts_as_arrival_but_never_more_than_a_period():
    f = make()
    f.note_state(1.0, stamp=1.04)  # the sim clock message not processed yet
    assert f.filter(1.04 + 1.4 * PERIOD, np.full(N, 0.1)).reason == safety.OK
    g = make()
    g.note_state(1.0, stamp=100.0)  # a robot clock far ahead: capped at one period
    assert g.filter(1.0 + PERIOD + 2.1 * PERIOD, np.full(N, 0.1)).reason == safety.STALE_STATE


def test_clock_stepping_back_stops_until_a_fresh_state():
    """An NTP step back must not hide a dead joint-state stream behind a 'future' arrival."""
    f = make()
    f.note_state(1000.0)
    assert f.filter(1000.01, np.array([0.1, 0.1, 0.1])).reason == safety.OK
    # The clock jumps back 5 s and no state arrives any more: stop at once.
    r = f.filter(995.0, np.array([0.1, 0.1, 0.1]))
    assert r.reason == safety.STALE_STATE and not r.command.any()
    f.note_state(995.02)  # a fresh state re-anchors the watchdog
    assert f.filter(995.03, np.array([0.1, 0.1, 0.1])).reason == safety.OK
    # Jitter of less than a period (a tick that read the clock just before the state) is fine.
    f.note_state(996.0)
    assert f.filter(996.0 - PERIOD / 2, np.array([0.1, 0.1, 0.1])).reason == safety.OK
