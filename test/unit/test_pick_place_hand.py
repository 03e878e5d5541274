"""The Franka hand's franka_gripper semantics (robots/franka_hand.py, contract/gripper.py) and
the object tracker's delay and noise (robots/tracker.py), for the pick-and-place task."""
import numpy as np
import pytest

from rl_control.contract.gripper import GripperSpec, GripperSwitch
from rl_control.robots.franka_hand import GRASP, HAND, MOVE, FrankaHand, GripperCommand
from rl_control.robots.hand_cell import CellPhysics
from rl_control.robots.profiles import get_profile
from rl_control.robots.tracker import ObjectTracker, PoseHistory


# -- the gripper: franka_gripper semantics ------------------------------------------------------
def test_gripper_commands_respect_the_hands_limits():
    GripperCommand(MOVE, 0.0)
    GripperCommand(GRASP, 0.08, 0.1, 70.0)
    for bad in ({'width': 0.081}, {'width': -0.001}, {'speed': 0.0}, {'speed': 0.11},
                {'force': 71.0}, {'action': 'squeeze'}):
        kw = {'action': GRASP, 'width': 0.04, **bad}
        with pytest.raises(ValueError):
            GripperCommand(**kw)
    cmd = GripperCommand(GRASP, 0.02, 0.05, 30.0, 0.01, 0.02)
    assert GripperCommand.from_json(cmd.to_json()) == cmd
    with pytest.raises(ValueError, match='unknown'):
        GripperCommand.from_json('{"action": "move", "width": 0.02, "torque": 1}')
    with pytest.raises(ValueError):
        GripperSpec(hysteresis=1.0)
    with pytest.raises(ValueError):
        GripperSpec(force=80.0)  # the close command would exceed 70 N


def _run_hand(hand, t0, t1, width_of_target, dt=0.001):
    """Advance the hand from t0 to t1 with fingers at `width_of_target(target)`; the targets."""
    out, width = [], hand.target
    for k in range(int(round((t1 - t0) / dt))):
        t = t0 + k * dt
        target, force = hand.update(t, width, dt)
        width = width_of_target(target)
        out.append((t, target, force))
    return np.array(out)


def test_a_move_starts_after_its_latency_and_runs_at_its_speed_to_the_end():
    hand = FrankaHand(latency_s=0.05)
    hand.command(0.0, GripperCommand(MOVE, 0.0, 0.1))
    assert hand.busy
    trace = _run_hand(hand, 0.0, 1.2, lambda target: target)
    t, target = trace[:, 0], trace[:, 1]
    assert np.all(target[t < 0.05] == HAND.max_width)  # latency: nothing yet
    rate = np.diff(target) / 0.001
    assert rate.min() >= -0.1 - 1e-9  # never faster than 0.1 m/s of width
    # 8 cm at 0.1 m/s: 0.8 s, after the latency.
    assert target[np.searchsorted(t, 0.45)] == pytest.approx(0.08 - 0.1 * 0.4, abs=2e-4)
    assert hand.results[-1] == (MOVE, True) and not hand.busy
    assert target[-1] == 0.0


def test_a_grasp_squeezes_an_object_inside_its_epsilon_and_stops_on_one_outside():
    obj = 0.04
    hand = FrankaHand(latency_s=0.02)
    hand.command(0.0, GripperSpec(force=20.0).close_command())
    trace = _run_hand(hand, 0.0, 1.0, lambda target: max(target, obj))
    assert hand.results[-1] == (GRASP, True) and hand.grasped
    assert hand.target < obj and trace[-1, 2] == 20.0  # keeps squeezing with the force
    # A grasp for a 2 cm object (epsilon 5 mm) on the 4 cm one fails and stops where it is.
    hand = FrankaHand(latency_s=0.02)
    hand.command(0.0, GripperCommand(GRASP, 0.02, 0.1, 20.0, 0.005, 0.005))
    _run_hand(hand, 0.0, 1.0, lambda target: max(target, obj))
    assert hand.results[-1] == (GRASP, False) and not hand.grasped
    assert hand.target == pytest.approx(obj)


def test_a_command_sent_while_one_runs_waits_and_the_newest_wins():
    hand = FrankaHand(latency_s=0.01)
    hand.command(0.0, GripperCommand(MOVE, 0.04, 0.1))
    _run_hand(hand, 0.0, 0.1, lambda target: target)  # running, halfway
    hand.command(0.1, GripperCommand(MOVE, 0.0, 0.1))
    hand.command(0.1, GripperCommand(MOVE, 0.06, 0.1))  # replaces the waiting one
    trace = _run_hand(hand, 0.1, 1.0, lambda target: target)
    assert [r[0] for r in hand.results] == [MOVE, MOVE] and hand.commands == 3
    assert trace[:, 1].min() == pytest.approx(0.04, abs=1e-9)  # the first ran to its end
    assert hand.target == pytest.approx(0.06)


def test_the_switch_has_hysteresis_and_sends_only_on_a_change():
    spec = GripperSpec(hysteresis=0.3)
    switch = GripperSwitch(spec)
    sent = [switch.update(g) for g in (0.0, 0.2, 0.29, 0.31, 0.9, 0.0, -0.29, -0.31, -1.0, 0.29)]
    kinds = [None if c is None else c.action for c in sent]
    assert kinds == [None, None, None, GRASP, None, None, None, MOVE, None, None]
    assert sent[3] == spec.close_command() and sent[3].force == 20.0
    assert sent[7] == spec.open_command() and sent[7].width == HAND.max_width
    assert switch.value == -1.0


def test_the_simulated_fingers_close_no_faster_than_the_hand_after_the_latency():
    cell = CellPhysics(get_profile('panda'), timestep=0.002, hand_latency_s=0.05)
    home = cell.sim.profile.home
    cell.reset(home)
    cell.hand.command(0.0, GripperCommand(MOVE, 0.0, 0.05))
    widths = []
    for _ in range(1000):  # 2 s
        cell.set_reference(home, np.zeros(7), np.zeros(7))
        cell.step(0.002)
        widths.append(cell.width())
    w = np.array(widths)
    assert np.all(w[:24] > 0.08 - 1e-4)  # the first 48 ms: not started
    assert np.diff(w).min() / 0.002 >= -0.05 * 1.1  # the commanded 0.05 m/s, not more
    assert w[-1] < 1e-3 and cell.hand.results[-1] == (MOVE, True)


# -- the tracker --------------------------------------------------------------------------------
def _moving_history(seconds=1.0, dt=0.002):
    """The true pose: x = 0.1 t m, no rotation."""
    h = PoseHistory(span_s=2.0)
    for k in range(int(round(seconds / dt)) + 1):
        h.add(k * dt, np.r_[0.1 * k * dt, 0.0, 0.0, 0.0, 0.0, 0.0, 1.0])
    return h


def test_the_tracker_reports_frames_at_its_rate_late_by_its_delay():
    h = _moving_history()
    tr = ObjectTracker(rate_hz=30.0, delay_s=0.05, position_noise=0.0, orientation_noise=0.0)
    for t in np.arange(0.1, 1.0, 0.007):
        stamp, pose = tr.measure(t, h)
        assert stamp <= t - 0.05 + 1e-9 and t - stamp < 0.05 + 1 / 30 + 1e-9
        assert stamp * 30.0 == pytest.approx(round(stamp * 30.0))  # a frame time
        assert pose[0] == pytest.approx(0.1 * stamp, abs=0.1 * 0.002 + 1e-12)
    s1, p1 = tr.measure(0.5, h)
    s2, p2 = tr.measure(0.5 + 0.5 / 30, h)
    assert s2 - s1 == pytest.approx(1 / 30, abs=1e-9) or s2 == s1
    assert PoseHistory.at(h, 0.3)[0] == pytest.approx(0.03)


def test_the_tracker_noise_has_its_size_and_is_drawn_once_per_frame():
    h = _moving_history(seconds=0.2)
    sigma, sigma_rot = 0.002, 0.02
    tr = ObjectTracker(30.0, 0.0, sigma, sigma_rot, rng=np.random.default_rng(3))
    errors, angles = [], []
    for _ in range(3000):
        tr.reset()
        stamp, pose = tr.measure(0.1, h)
        assert np.array_equal(tr.measure(0.1 + 0.01, h)[1], pose)  # same frame, same message
        errors.append(pose[:3] - [0.1 * stamp, 0.0, 0.0])
        assert np.linalg.norm(pose[3:]) == pytest.approx(1.0, abs=1e-9)
        angles.append(2 * np.arccos(min(abs(pose[6]), 1.0)))
    errors = np.array(errors)
    np.testing.assert_allclose(errors.std(axis=0), sigma, rtol=0.1)
    assert np.abs(errors.mean(axis=0)).max() < 3 * sigma / np.sqrt(3000) * 2
    # The angle of a rotation vector with N(0, s) components: mean s * sqrt(8 / pi).
    assert np.mean(angles) == pytest.approx(sigma_rot * np.sqrt(8 / np.pi), rel=0.1)


def test_the_cells_cameras_keep_their_orientation() -> None:
    """The cameras of pick_place_cell.xml (given by `xyaxes`) look where that file says once
    the cell is built onto the arm (they looked straight down into the dark before)."""
    import mujoco

    from rl_control.robots.hand_cell import _asset, cell_model
    from rl_control.robots.profiles import get_profile

    alone = mujoco.MjModel.from_xml_path(_asset('pick_place_cell.xml'))
    built = cell_model(get_profile('panda'))
    for i in range(alone.ncam):
        j = mujoco.mj_name2id(built, mujoco.mjtObj.mjOBJ_CAMERA, alone.camera(i).name)
        np.testing.assert_allclose(built.cam_quat[j], alone.cam_quat[i], atol=1e-9)
        np.testing.assert_allclose(built.cam_pos[j], alone.cam_pos[i], atol=1e-9)
