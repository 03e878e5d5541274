"""The command path against the Franka-faithful robot: shaper -> messages -> JTC -> 1 kHz check.

The robot model (robots/franka.py) is the independent oracle: a reflex or a rejected message
here is one a real arm would raise.
"""
import numpy as np
import pytest

from rl_control.contract.shaper import Limits, Shaper, ShaperConfig
from rl_control.robots.franka import FrankaArm
from rl_control.robots.profiles import FR3, PANDA
from rl_control.serve.commands import trajectory_message

PERM = np.arange(7)


def drive(profile, targets, latency, cfg=None, stop_after=None, **jtc):
    """Tick at 25 Hz; each message arrives `latency(k)` after its tick. Returns the arm."""
    cfg = cfg or ShaperConfig()
    arm = FrankaArm(profile, 'trajectory', **jtc)
    shaper = Shaper(Limits.from_profile(profile), cfg,
                    velocity_limits=profile.shaping_velocity_limits)
    shaper.anchor(arm.time, arm.state()['q'])
    period = cfg.period_s
    n_ticks = len(targets) if stop_after is None else stop_after
    for k in range(n_ticks):
        now = arm.time
        prev = shaper.plan
        plan = shaper.step(now, targets[k])
        msg = trajectory_message(plan, prev, now, cfg.sample_s, profile.joint_names, PERM)
        arm.submit(now + latency(k), msg)
        arm.step(round(period / arm.dt))
    return arm, shaper


@pytest.mark.parametrize('profile', [PANDA, FR3], ids=['panda', 'fr3'])
@pytest.mark.parametrize('desired', [False, True], ids=['measured', 'desired'])
def test_a_jumping_policy_with_jittery_latency_raises_no_reflex(profile, desired):
    rng = np.random.default_rng(1)
    targets = rng.uniform(-1.0, 1.0, (75, 7)) * profile.qd_max * 0.5
    jitter = rng.uniform(0.0, 0.018, 75)  # below the 20 ms lead
    arm, _ = drive(profile, targets, lambda k: jitter[k],
                   interpolate_from_desired_state=desired, allow_trajectory_replacement=False)
    st = arm.state()
    assert st['reflex'] is None, st['reflex_violation']
    assert st['rejected'] == 0, st['rejections']
    assert np.abs(st['qd']).max() > 0.1  # it really moved


def test_messages_that_stop_coming_leave_the_arm_at_rest_within_limits():
    rng = np.random.default_rng(2)
    targets = rng.uniform(-1.0, 1.0, (30, 7)) * FR3.qd_max * 0.6
    arm, shaper = drive(FR3, targets, lambda k: 0.005, stop_after=20,
                        allow_trajectory_replacement=False)
    assert np.abs(arm.state()['qd']).max() > 0.1
    rest_at = shaper.plan.end
    arm.step(round((rest_at - arm.time) / arm.dt) + 5)
    st = arm.state()
    assert st['reflex'] is None and st['rejected'] == 0
    assert np.abs(st['qd_ref']).max() == 0.0 and np.abs(st['qd']).max() < 1e-3


def test_late_messages_are_what_breaks_it():
    """A message arriving after its plan start steps the reference: the lead must cover it."""
    rng = np.random.default_rng(3)
    targets = rng.uniform(-1.0, 1.0, (40, 7)) * FR3.qd_max * 0.5
    arm, _ = drive(FR3, targets, lambda k: 0.035, allow_trajectory_replacement=False)
    assert arm.state()['reflex'] is not None


def test_head_blending_is_why_the_controller_yaml_turns_it_off():
    """ros2_controllers HEAD blends a new message into the active one (#2419) and re-times a
    message stamped in the past to start now: the stream then steps. Up to Kilted (and at HEAD
    with allow_trajectory_replacement: false) replacement is exact."""
    rng = np.random.default_rng(4)
    targets = rng.uniform(-1.0, 1.0, (30, 7)) * FR3.qd_max * 0.5
    arm, _ = drive(FR3, targets, lambda k: 0.005, allow_trajectory_replacement=True)
    assert arm.state()['reflex'] is not None
