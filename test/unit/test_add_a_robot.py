"""docs/ARCHITECTURE.md, "Add a robot": a 6-joint arm that is no Franka, added in this one file.

Its description is a hand-written MJCF (written into the test's tmp dir) and one
`RobotProfile`; `register_robot` makes it a robot every layer knows. Then the reach env trains
on it and the serving loop drives its simulated arm to a goal, with nothing else changed.
"""
from __future__ import annotations

import numpy as np
import pytest

from rl_control.robots import profiles
from rl_control.robots.kinematics import MujocoKinematics
from rl_control.robots.physics import mujoco_tracking
from rl_control.robots.robot import RobotProfile

MJCF = """<mujoco model="arm6">
  <compiler angle="radian" autolimits="true"/>
  <option timestep="0.002" integrator="implicitfast"><flag contact="disable"/></option>
  <default>
    <joint armature="0.1" damping="0.5"/>
    <geom type="capsule" size="0.04" contype="0" conaffinity="0"/>
  </default>
  <worldbody>
    <body name="arm6_link1" pos="0 0 0.3" gravcomp="1">
      <inertial pos="0 0 0" mass="3" diaginertia="0.02 0.02 0.01"/>
      <joint name="arm6_joint1" axis="0 0 1" range="-2.8 2.8"/>
      <body name="arm6_link2" gravcomp="1">
        <inertial pos="0 0 0.2" mass="3" diaginertia="0.04 0.04 0.01"/>
        <joint name="arm6_joint2" axis="0 1 0" range="-1.8 1.8"/>
        <geom fromto="0 0 0 0 0 0.4"/>
        <body name="arm6_link3" pos="0 0 0.4" gravcomp="1">
          <inertial pos="0 0 0.2" mass="2" diaginertia="0.03 0.03 0.01"/>
          <joint name="arm6_joint3" axis="0 1 0" range="-2.6 2.6"/>
          <geom fromto="0 0 0 0 0 0.4"/>
          <body name="arm6_link4" pos="0 0 0.4" gravcomp="1">
            <inertial pos="0 0 0.03" mass="1" diaginertia="0.005 0.005 0.005"/>
            <joint name="arm6_joint4" axis="0 0 1" range="-2.8 2.8"/>
            <body name="arm6_link5" pos="0 0 0.05" gravcomp="1">
              <inertial pos="0 0 0.05" mass="1" diaginertia="0.005 0.005 0.005"/>
              <joint name="arm6_joint5" axis="0 1 0" range="-2.0 2.0"/>
              <geom fromto="0 0 0 0 0 0.1"/>
              <body name="arm6_link6" pos="0 0 0.1" gravcomp="1">
                <inertial pos="0 0 0.02" mass="0.5" diaginertia="0.002 0.002 0.002"/>
                <joint name="arm6_joint6" axis="0 0 1" range="-2.8 2.8"/>
                <site name="ee" pos="0 0 0.05"/>
              </body>
            </body>
          </body>
        </body>
      </body>
    </body>
  </worldbody>
  <actuator>
    <velocity joint="arm6_joint1" kv="200"/>
    <velocity joint="arm6_joint2" kv="200"/>
    <velocity joint="arm6_joint3" kv="200"/>
    <velocity joint="arm6_joint4" kv="50"/>
    <velocity joint="arm6_joint5" kv="50"/>
    <velocity joint="arm6_joint6" kv="50"/>
  </actuator>
</mujoco>
"""
GOAL = np.array([0.55, 0.1, 0.15])


def arm6(model: str) -> RobotProfile:
    """The robot: its joints, limits, home pose, kinematics and model (one description)."""
    return RobotProfile(
        name='arm6', joint_names=tuple(f'arm6_joint{i}' for i in range(1, 7)),
        base_frame='arm6_base',
        q_min=np.array([-2.8, -1.8, -2.6, -2.8, -2.0, -2.8]),
        q_max=np.array([2.8, 1.8, 2.6, 2.8, 2.0, 2.8]),
        qd_max=np.full(6, 2.0), qdd_max=np.full(6, 10.0), qddd_max=np.full(6, 5000.0),
        tau_max=np.array([50.0, 50.0, 50.0, 20.0, 20.0, 20.0]), dtau_max=np.full(6, 1000.0),
        home=np.array([0.0, 0.6, 1.5, 0.0, 0.9, 0.0]),
        kinematics=MujocoKinematics(model, 6), mjcf=model,
        physics={'mujoco': mujoco_tracking})


@pytest.fixture
def robot(tmp_path):
    model = tmp_path / 'arm6.xml'
    model.write_text(MJCF)
    yield profiles.register_robot(arm6(str(model)))  # the one registry line
    del profiles.PROFILES['arm6']  # (other tests do not expect it)


class JacobianPolicy:
    """A stand-in for a trained actor: damped least squares on the robot's own kinematics."""

    def __init__(self, profile: RobotProfile, scale: np.ndarray, ee: slice) -> None:
        self.profile, self.scale, self.ee = profile, scale, ee

    def act(self, obs: np.ndarray) -> np.ndarray:
        n = self.profile.dof
        q = np.asarray(obs[:n], np.float64)
        error = np.asarray(obs[-3:], np.float64) - obs[self.ee]
        here = np.array(self.profile.ee_position(q))
        jac = np.stack([(np.array(self.profile.ee_position(q + 1e-6 * np.eye(n)[j])) - here)
                        / 1e-6 for j in range(n)], axis=1)
        qd = jac.T @ np.linalg.solve(jac @ jac.T + 1e-3 * np.eye(3), 3.0 * error)
        return np.clip(qd / self.scale, -0.8, 0.8).astype(np.float32)


def test_it_is_a_robot_every_layer_knows(robot):
    from rl_control.serve.settings import ServeSettings

    assert profiles.get_profile('arm6') is robot and 'arm6' in profiles.ROBOT_NAMES
    meta = ServeSettings.__dataclass_fields__['robot'].metadata
    assert 'arm6' in meta['choices']  # the nodes' `robot` parameter takes it
    assert robot.all_joint_names == robot.joint_names and robot.finger_position == 0.0


def test_the_reach_env_runs_on_it_and_a_policy_reaches_a_goal(robot):
    from rl_control.envs.franka_reach import FrankaReachEnv

    env = FrankaReachEnv(robot='arm6', randomize=False)
    try:
        assert env.action_space.shape == (6,)
        assert env.contract.obs_spec.joint_names == robot.joint_names
        obs, _ = env.reset(seed=0, options={'goal': GOAL, 'q': robot.home})
        assert np.linalg.norm(obs['achieved_goal'] - GOAL) > 0.15
        site = env.sim.physics.sim  # the simulated arm's own MuJoCo site
        np.testing.assert_allclose(obs['achieved_goal'], site.ee_position(), atol=1e-6)
        policy = JacobianPolicy(robot, env.contract.act_spec.scale,
                                env.contract.obs_spec.term_slice('ee_pos'))
        for _ in range(100):  # 4 s
            x = np.concatenate([obs['observation'], obs['desired_goal']])
            obs, _r, _te, _tr, info = env.step(policy.act(x))
        assert info['distance'] < 0.01 and info['reflexes'] == 0
        np.testing.assert_allclose(obs['achieved_goal'], site.ee_position(), atol=1e-5)
    finally:
        env.close()


def test_the_serving_loop_drives_its_simulated_arm_to_a_goal(robot):
    from rl_control.envs.franka_reach import FrankaReachEnv
    from rl_control.robots.franka import FrankaArm
    from rl_control.robots.physics import mujoco_physics
    from rl_control.serve.loop import ServingLoop
    from rl_control.serve.settings import ServeSettings

    env = FrankaReachEnv(robot='arm6', randomize=False)
    bundle = {**env.contract.to_yaml(), **env.robot_task}  # what policy.yaml records
    env.close()
    policy = JacobianPolicy(robot, np.asarray(bundle['action']['scale']),
                            env.contract.obs_spec.term_slice('ee_pos'))
    loop = ServingLoop(bundle, policy, ServeSettings(robot='arm6'))
    arm = FrankaArm(robot, 'trajectory', physics=mujoco_physics(robot))
    arm.settle()
    loop.activate(arm.time)
    assert loop.on_goal('arm6_base', GOAL) is None
    assert loop.on_goal('arm6_base', np.array([2.0, 0.0, 0.0])) == 'goal_outside_region'
    assert loop.on_goal('', GOAL) is None
    t_next = arm.time
    for _ in range(5000):  # 5 s: states at 1 kHz, a policy tick every 40 ms
        t = arm.time
        names, q, qd, _ = arm.joint_state()
        loop.on_state(t, t, list(names), q, qd, t)
        if t >= t_next - 1e-9:
            t_next = t + loop.tick_s
            out = loop.tick(t, t)
            if out.trajectory is not None:
                arm.submit(t + 0.002, out.trajectory)
        arm.step(1)
    st = arm.state()
    assert st['reflex'] is None and st['rejected'] == 0 and loop.reason == 'ok'
    status = loop.goal_status()
    assert status['state'] == 'reached' and status['distance'] < 0.01
    np.testing.assert_allclose(robot.ee_position(st['q']), arm.physics.sim.ee_position(),
                               atol=1e-6)
