"""FrankaReach-v1: shaped dynamics, randomization from the seed, the server's own motion."""
import gymnasium as gym
from gymnasium.utils.env_checker import check_env
import numpy as np
import pytest

import rl_control  # noqa: F401 - registers the env ids
from rl_control.envs.franka_reach import FrankaReachEnv
from rl_control.serve.loop import ServingLoop
from rl_control.serve.settings import ServeSettings


@pytest.mark.parametrize('kwargs', [{}, {'robot': 'fr3'}, {'control': 'effort'},
                                    {'engine': 'pybullet'}])
def test_the_env_passes_gymnasiums_checks(kwargs):
    env = FrankaReachEnv(**kwargs)
    check_env(env, skip_render_check=True)
    env.close()


def test_randomization_is_recorded_and_reproducible_from_the_seed():
    def episode(seed):
        env = gym.make('rl_control/FrankaReach-v1')
        obs, _ = env.reset(seed=seed)
        out = [obs['observation']]
        rng = np.random.default_rng(0)
        for _ in range(20):
            obs, *_ = env.step(rng.uniform(-1, 1, 7).astype(np.float32))
            out.append(obs['observation'])
        draws = dict(env.unwrapped._ep.draws)
        env.close()
        return np.array(out), draws

    a, da = episode(3)
    b, db = episode(3)
    c, dc = episode(4)
    assert np.array_equal(a, b) and da == db
    assert not np.array_equal(a, c) and da != dc
    task = FrankaReachEnv().robot_task
    assert task['randomization']['action_latency_s'] == [0.0, 0.08]
    assert task['shaper']['lead_s'] == 0.02 and task['success_distance'] == 0.02
    assert FrankaReachEnv(randomize=False).robot_task['randomization'] is None


class Replay:
    """A policy that returns recorded actions in order (the server's side of the test)."""

    def __init__(self, actions):
        self.actions, self.k, self.seen = list(actions), -1, []

    def act(self, obs):
        if obs.any():  # not the server's dry run
            self.seen.append(np.array(obs))
            self.k = min(self.k + 1, len(self.actions) - 1)
        return self.actions[max(self.k, 0)]


@pytest.mark.parametrize('robot', ['panda', 'fr3'])
def test_the_env_and_the_server_shape_the_same_actions_into_the_same_motion(robot):
    env = FrankaReachEnv(robot=robot, randomize=False)
    goal = np.array([0.6, 0.05, 0.2])
    obs, _ = env.reset(seed=1, options={'goal': goal})
    rng = np.random.default_rng(2)
    actions = rng.uniform(-1, 1, (30, 7)).astype(np.float32)
    spec = {**env.contract.to_yaml(), **env.robot_task}
    policy = Replay(actions)
    loop = ServingLoop(spec, policy, ServeSettings(robot=robot, ramp_in_s=0.0,
                                                   reanchor_tolerance=0.5))
    loop.activate(0.0)
    loop.on_goal(env.profile.base_frame, goal)
    policy.k = -1
    env_obs = [np.concatenate([obs['observation'], obs['desired_goal']])]
    for k, a in enumerate(actions):
        t = k * 0.04
        names, q, qd, _ = env.sim.joint_state()
        loop.on_state(t, t, list(names), q, qd, t)
        served = loop.tick(t, t).plan
        obs, *_ = env.step(a)
        env_obs.append(np.concatenate([obs['observation'], obs['desired_goal']]))
        trained = env.sim.shaper.plan
        assert served.t0 == trained.t0
        for (ta, sa), (tb, sb) in zip(served.samples(0.004), trained.samples(0.004),
                                      strict=True):
            assert ta == tb
            np.testing.assert_allclose(sa.q, sb.q, rtol=0, atol=1e-9)
            np.testing.assert_allclose(sa.qd, sb.qd, rtol=0, atol=1e-9)
    assert loop.reanchors == 0
    # ... from the same observation, last_action included
    assert 'last_action' in env.contract.obs_spec.terms
    for seen, trained_obs in zip(policy.seen, env_obs, strict=False):
        np.testing.assert_allclose(seen, trained_obs, rtol=0, atol=1e-6)
    env.close()


@pytest.mark.parametrize('push', [1.0, -1.0])
def test_the_torque_guards_keep_a_full_torque_policy_inside_the_limits(push):
    env = FrankaReachEnv(control='effort', randomize=False)
    env.reset(seed=0)
    for _ in range(100):  # 4 s of full torque on every joint, one way
        _obs, _r, _te, _tr, info = env.step(np.full(7, push, np.float32))
    q, qd, _ = env.sim.physics.state()
    assert info['reflexes'] == 0, info['reflex']
    assert np.all(q > env.profile.q_min) and np.all(q < env.profile.q_max)
    env.close()
