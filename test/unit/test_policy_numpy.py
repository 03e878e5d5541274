"""The numpy serving Policy reproduces the torch actors' deterministic actions."""
import time

import numpy as np
import pytest
import torch

from rl_control.algos.a2c import A2C, A2CConfig
from rl_control.algos.normalizer import RunningNormalizer
from rl_control.algos.sac import SAC, SACConfig
from rl_control.algos.td3 import TD3, DDPGConfig, TD3Config
from rl_control.bundle.policy import Policy, PolicyError


@pytest.mark.parametrize('make', [
    lambda: SAC(5, 3, SACConfig(hidden_sizes=(32, 16)), seed=0),
    lambda: TD3(5, 3, TD3Config(hidden_sizes=(32, 16)), seed=0),
    lambda: TD3(5, 3, DDPGConfig(hidden_sizes=(32,), activation='tanh'), seed=0),
    lambda: A2C(5, 3, A2CConfig(hidden_sizes=(32, 32), ortho_init=False), seed=0),
])
def test_numpy_policy_equals_torch_deterministic_action(make):
    agent = make()
    if isinstance(agent, A2C):  # make clipping matter
        with torch.no_grad():
            agent.actor.mu.weight.mul_(20.0)
    desc, weights = agent.export_actor()
    assert desc['kind'] == 'mlp' and desc['layers'][0][0] == 5 and desc['layers'][-1][1] == 3
    obs = np.random.default_rng(0).normal(size=(64, 5)).astype(np.float32)
    policy = Policy(desc, weights, None)
    expected = agent.act(obs, deterministic=True)
    np.testing.assert_allclose(policy.act(obs), expected, atol=1e-5)
    np.testing.assert_allclose(policy.act(obs[3]), expected[3], atol=1e-5)
    assert np.abs(policy.act(obs)).max() <= 1.0


def test_numpy_policy_applies_normalization_like_training():
    agent = SAC(4, 2, SACConfig(hidden_sizes=(16, 16)), seed=1)
    norm = RunningNormalizer(4, clip=5.0)
    raw = np.random.default_rng(0).normal(3.0, 2.0, size=(200, 4))
    norm.update(raw)
    policy = Policy(*agent.export_actor(), norm.to_yaml())
    expected = agent.act(norm.normalize(raw[:10]), deterministic=True)
    np.testing.assert_allclose(policy.act(raw[:10]), expected, atol=1e-5)
    for i in range(3):
        np.testing.assert_allclose(policy.act(raw[i]), expected[i], atol=1e-5)


def test_policy_rejects_mismatched_weights():
    desc, weights = SAC(4, 2, SACConfig(hidden_sizes=(8,)), seed=0).export_actor()
    bad = dict(weights, **{'l1.weight': np.zeros((2, 9), np.float32)})
    with pytest.raises(PolicyError, match='layer 1'):
        Policy(desc, bad)


def test_single_vector_act_is_fast():
    desc, weights = SAC(20, 7, SACConfig(hidden_sizes=(256, 256)), seed=0).export_actor()
    policy = Policy(desc, weights, {'mean': [0.0] * 20, 'var': [1.0] * 20, 'clip': 10.0,
                                    'epsilon': 1e-8})
    x = np.zeros(20, np.float32)
    for _ in range(100):
        policy.act(x)
    n = 2000
    t0 = time.perf_counter()
    for _ in range(n):
        policy.act(x)
    per_call = (time.perf_counter() - t0) / n
    assert per_call < 1e-3  # a 1 kHz loop must fit (typically ~20 us)
