"""The gap report: a recording replayed through the MuJoCo twin; latency found, twins agree."""
import numpy as np
import pytest

pytest.importorskip('rosbags')

from rl_control.contract.shaper import Limits, Shaper, ShaperConfig  # noqa: E402
from rl_control.envs.gap import from_recording  # noqa: E402
from rl_control.robots.franka import FrankaArm  # noqa: E402
from rl_control.robots.physics import mujoco_physics  # noqa: E402
from rl_control.robots.profiles import PANDA  # noqa: E402
from rl_control.robots.recording import BagRecorder  # noqa: E402
from rl_control.serve.commands import trajectory_message  # noqa: E402


def _messages():
    from rosbags.typesys import Stores, get_typestore

    store = get_typestore(Stores.ROS2_KILTED)
    return store, store.types


def record_session(root, delay_s=0.0, seconds=2.0, reset_k=None, goals=False, speed=0.4):
    """A served session on the Franka model, recorded as the policy server would.

    `reset_k`: at that tick the arm is put back at home (an episode reset), its state goes
    out, and the shaper starts over there. `goals`: the goal heard every tick (a new one from
    the reset on) and the measured velocities recorded, as sim_robot sends them."""
    store, T = _messages()
    arm = FrankaArm(PANDA, 'trajectory', physics=mujoco_physics(PANDA))
    shaper = Shaper(Limits.from_profile(PANDA), ShaperConfig())
    shaper.anchor(0.0, PANDA.home)
    rec = BagRecorder(root, segment_s=0.5, clock=lambda: arm.time)
    history = []
    rng = np.random.default_rng(0)
    t0_ns = 10**12

    def stamp(t):
        ns = t0_ns + int(round(t * 1e9))
        return T['builtin_interfaces/msg/Time'](sec=ns // 10**9, nanosec=ns % 10**9)

    v = rng.uniform(-speed, speed, 7)
    for k in range(int(seconds / 0.04)):
        now = arm.time
        prev = shaper.plan
        if k % 10 == 0:
            v = rng.uniform(-speed, speed, 7)
        if k == reset_k:  # the new state goes out, then the server plans from it
            arm.reset(PANDA.home)
            history.append((now, arm.state()['q'], arm.state()['qd']))
            shaper.anchor(now, PANDA.home)
            prev = shaper.plan
        if goals:
            x = 0.5 if reset_k is None or k < reset_k else 0.4
            goal = T['geometry_msgs/msg/PointStamped'](
                header=T['std_msgs/msg/Header'](stamp=stamp(now), frame_id='panda_link0'),
                point=T['geometry_msgs/msg/Point'](x=x, y=0.0, z=0.3))
            rec.write('goal', 'geometry_msgs/msg/PointStamped', t0_ns + int(now * 1e9),
                      store.serialize_cdr(goal, 'geometry_msgs/msg/PointStamped'))
        plan = shaper.step(now, v)
        msg = trajectory_message(plan, prev, now, 0.004, PANDA.joint_names, np.arange(7))
        arm.submit(now, msg)
        pts = [T['trajectory_msgs/msg/JointTrajectoryPoint'](
            positions=np.array(p.positions), velocities=np.array(p.velocities),
            accelerations=np.array(p.accelerations), effort=np.zeros(0),
            time_from_start=T['builtin_interfaces/msg/Duration'](
                sec=int(p.time_from_start), nanosec=int(round(p.time_from_start % 1 * 1e9))))
            for p in msg.points]
        traj = T['trajectory_msgs/msg/JointTrajectory'](
            header=T['std_msgs/msg/Header'](stamp=stamp(msg.stamp), frame_id=''),
            joint_names=list(msg.joint_names), points=pts)
        rec.write('cmd', 'trajectory_msgs/msg/JointTrajectory', t0_ns + int(now * 1e9),
                  store.serialize_cdr(traj, 'trajectory_msgs/msg/JointTrajectory'))
        for _ in range(10):
            arm.step(4)
            history.append((arm.time, arm.state()['q'], arm.state()['qd']))
    for t, q_now, qd in history:  # the state at t is recorded delay_s later
        q = q_now if delay_s == 0 else _at(history, t - delay_s)
        js = T['sensor_msgs/msg/JointState'](
            header=T['std_msgs/msg/Header'](stamp=stamp(t), frame_id=''),
            name=list(PANDA.joint_names), position=q,
            velocity=qd if goals else np.zeros(7), effort=np.zeros(7))
        rec.write('joint_states', 'sensor_msgs/msg/JointState', t0_ns + int(round(t * 1e9)),
                  store.serialize_cdr(js, 'sensor_msgs/msg/JointState'))
    rec.close()


def _at(history, t):
    ts = np.array([h[0] for h in history])
    qs = np.array([h[1] for h in history])
    return np.array([np.interp(t, ts, qs[:, j]) for j in range(7)])


def test_the_twin_of_the_same_model_tracks_the_recording(tmp_path):
    record_session(tmp_path)
    report = from_recording(tmp_path).report()
    assert report['ok'] and max(report['rms_rad']) < 2e-3 and report['twin_reflexes'] == 0
    assert report['latency_s'] == pytest.approx(0.0, abs=0.003)


def test_a_late_arm_shows_as_latency_and_tracking_error(tmp_path):
    record_session(tmp_path, delay_s=0.03)
    report = from_recording(tmp_path).report(rms_threshold=0.002)
    assert report['latency_s'] == pytest.approx(0.03, abs=0.004)
    assert not report['ok']


def test_an_episode_reset_restarts_the_twin_instead_of_counting_as_a_gap(tmp_path):
    record_session(tmp_path, reset_k=25)
    trace = from_recording(tmp_path)
    report = trace.report()
    assert any('1 jumps' in n for n in report['notes']), report['notes']
    assert report['ok'] and max(report['rms_rad']) < 2e-3 and report['twin_reflexes'] == 0


@pytest.mark.parametrize('reset_k', [1, 2])
def test_a_reset_early_in_a_motion_is_told_by_the_new_goal_and_the_arm_at_exact_rest(
        tmp_path, reset_k):
    """Too small a jump to see (the arm had just started, slowly), but sim_robot dropped the
    commands in flight: the goal that changed and the velocities exactly 0 mark the reset."""
    record_session(tmp_path, reset_k=reset_k, goals=True, speed=0.02)
    report = from_recording(tmp_path).report()
    assert report['twin_reflexes'] == 0 and report['ok'], report
    assert max(report['rms_rad']) < 2e-3, report
    assert any('1 jumps' in n for n in report['notes']), report['notes']
