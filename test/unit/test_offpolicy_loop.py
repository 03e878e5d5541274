"""The off-policy loop: when it acts randomly, when and how much it trains (against SB3's own
`learn` loop), update counts with several envs, reward normalization, the target-return stop.
"""
import numpy as np
import pytest
import torch

from rl_control.algos.buffers import ReplayBuffer
from rl_control.algos.normalizer import RewardScaler
from rl_control.algos.sac import SACConfig
from rl_control.algos.types import Batch
from rl_control.envs.factory import make_vec_env
from rl_control.train.config import config_from_dict
from rl_control.train.episodes import EpisodeStats
from rl_control.train.learn import train
from rl_control.train.offpolicy import OffPolicyCollector
from rl_control.train.persistence import latest_checkpoint, load_checkpoint


class CountingAgent:
    """Acts with zeros and counts calls; records the batches it is given."""

    def __init__(self) -> None:
        self.acts = self.updates = 0
        self.batches: list[Batch] = []

    def act(self, obs, deterministic=False):
        self.acts += 1
        return np.zeros((len(obs), 1), np.float32)

    def update(self, batch):
        self.updates += 1
        self.batches.append(batch)
        return {'loss': 0.0}

    def reset_noise(self, env_indices=None):
        pass

    def set_progress(self, progress_remaining):
        pass


def _collector(n_envs, reward_scaler=None, **algo):
    envs = make_vec_env('Pendulum-v1', n_envs, seed=0)
    agent = CountingAgent()
    buf = ReplayBuffer(3, 1, 10_000, seed=0)
    col = OffPolicyCollector(envs, agent, buf, None, SACConfig(batch_size=4, **algo), False,
                             np.random.default_rng(0), EpisodeStats(n_envs), reward_scaler)
    col.reset(0)
    return col, agent


def ours_schedule(n_envs, learning_starts, train_freq, gradient_steps, vector_steps):
    """[(env steps when training ran, updates)], [random action? per vector step]."""
    col, agent = _collector(n_envs, learning_starts=learning_starts, train_freq=train_freq,
                            gradient_steps=gradient_steps)
    trains, randoms, env_steps = [], [], 0
    for _ in range(vector_steps):
        acts = agent.acts
        col.step(env_steps)
        env_steps += n_envs
        randoms.append(agent.acts == acts)
        before = agent.updates
        col.train(env_steps, 10_000)
        if agent.updates > before:
            trains.append((env_steps, agent.updates - before))
    return trains, randoms


def sb3_schedule(n_envs, learning_starts, train_freq, gradient_steps, total):
    """The same record from SB3's SAC.learn, with train() and the policy stubbed out."""
    sb3 = pytest.importorskip('stable_baselines3')
    from stable_baselines3.common.env_util import make_vec_env as sb3_vec_env

    model = sb3.SAC('MlpPolicy', sb3_vec_env('Pendulum-v1', n_envs=n_envs, seed=0),
                    learning_starts=learning_starts, train_freq=train_freq,
                    gradient_steps=gradient_steps, policy_kwargs=dict(net_arch=[4]),
                    device='cpu', seed=0)
    trains, randoms = [], []
    model.train = lambda gradient_steps, batch_size: trains.append(
        (model.num_timesteps, gradient_steps))
    sample = model._sample_action

    def sample_action(learning_starts, action_noise=None, n_envs=1):
        randoms.append(model.num_timesteps < learning_starts)
        return sample(learning_starts, action_noise, n_envs)

    model._sample_action = sample_action
    model.learn(total)
    return trains, randoms


@pytest.mark.parametrize('n_envs, learning_starts, train_freq, gradient_steps, total', [
    (1, 10, 1, 1, 30),
    (3, 10, 2, -1, 60),   # -1: train_freq * n_envs = 6 updates per phase
    (2, 7, 4, 3, 64),
    (4, 0, 1, 2, 40),     # learning_starts 0: from the first step on
    (2, 5, 3, 0, 30),     # gradient_steps 0: collect only
])
def test_train_freq_gradient_steps_learning_starts_match_sb3(n_envs, learning_starts,
                                                             train_freq, gradient_steps, total):
    """Random warm-up actions, when training runs and how many updates: exactly SB3's learn."""
    theirs, their_randoms = sb3_schedule(n_envs, learning_starts, train_freq, gradient_steps,
                                         total)
    ours, our_randoms = ours_schedule(n_envs, learning_starts, train_freq, gradient_steps,
                                      len(their_randoms))
    assert our_randoms == their_randoms
    assert ours == theirs
    # Spelled out for the first case: 10 random steps, then one update after steps 11..30.
    if (n_envs, learning_starts, train_freq, gradient_steps) == (1, 10, 1, 1):
        assert our_randoms == [True] * 10 + [False] * 20
        assert ours == [(t, 1) for t in range(11, 31)]
    if gradient_steps == 0:
        assert ours == []


def test_off_policy_reward_normalization_scales_sampled_raw_rewards():
    """normalize_reward off-policy: raw rewards stored, batches scaled with current stats."""
    scaler = RewardScaler(2, gamma=0.9)
    col, agent = _collector(2, reward_scaler=scaler, learning_starts=20, gradient_steps=1)
    reference = RewardScaler(2, gamma=0.9)
    env_steps = 0
    for _ in range(40):
        col.step(env_steps)
        env_steps += 2
        n = col.buffer.size
        reference.update(col.buffer.rew[n - 2:n], col.buffer.truncated[n - 2:n] > 0)
        col.buffer.rng = np.random.default_rng(env_steps)  # replay this step's sample below
        col.train(env_steps, 10_000)
    assert scaler.rms.count == reference.rms.count == 80
    assert scaler.rms.var == pytest.approx(reference.rms.var) and scaler.rms.var > 1.5
    raw = col.buffer.sample(4, np.random.default_rng(env_steps)).rew
    # The last batch the agent saw: the raw sample scaled by 1/sqrt(var + eps), clipped at 10.
    torch.testing.assert_close(agent.batches[-1].rew,
                               (raw / np.sqrt(scaler.rms.var + 1e-8)).clamp(-10, 10))
    assert (col.buffer.rew[:80] < -0.01).any()  # stored raw: Pendulum's -cost, not scaled
    assert not torch.equal(agent.batches[-1].rew, raw)


def _tiny(**overrides):
    raw = {'env': 'Pendulum-v1', 'algo': 'sac', 'total_steps': 60, 'n_envs': 2,
           'tensorboard': False, 'eval': {'every': 1000, 'episodes': 1},
           'algo_kwargs': {'hidden_sizes': [8], 'batch_size': 8, 'learning_starts': 20,
                           'gradient_steps': 2}}
    raw.update(overrides)
    return config_from_dict(raw)


def test_update_count_with_several_envs_and_reward_scaler_checkpointed(tmp_path):
    """n_envs=2, 60 steps: training after the 11th..30th vector step, 2 updates each = 40."""
    train(_tiny(normalize_reward=True), tmp_path, progress=False)
    state = load_checkpoint(latest_checkpoint(tmp_path / 'checkpoints'))
    assert state['agent']['n_updates'] == 40
    assert state['reward_scaler']['count'] == 60  # one return sample per env step
    buf = state['buffer']
    ref = RewardScaler(2, gamma=0.99)
    for rew, done in zip(buf['rew'].reshape(30, 2), (buf['terminated'] + buf['truncated'])
                         .reshape(30, 2) > 0, strict=True):
        ref.update(rew, done)
    assert state['reward_scaler']['var'] == pytest.approx(ref.rms.var)


def test_target_return_stops_at_the_first_evaluation_reaching_it(tmp_path):
    cfg = _tiny(total_steps=400, target_return=-1e9, eval={'every': 100, 'episodes': 1})
    result = train(cfg, tmp_path / 'reached', progress=False)
    assert result.reached_target and result.steps == 100 and not result.stopped
    assert [r['step'] for r in result.history] == [100]
    cfg = _tiny(total_steps=200, target_return=1e9, eval={'every': 100, 'episodes': 1})
    result = train(cfg, tmp_path / 'not', progress=False)
    assert not result.reached_target and result.steps == 200


def test_target_success_stops_the_run_at_the_first_evaluation_that_reaches_it(tmp_path):
    from rl_control.train.config import config_from_dict
    from rl_control.train.learn import train

    # A 10 m success distance: every episode succeeds, so the first evaluation stops it.
    cfg = config_from_dict({
        'env': 'rl_control/PandaJointReach-v0', 'algo': 'sac', 'total_steps': 2000,
        'env_kwargs': {'distance_threshold': 10.0}, 'target_success': 1.0,
        'eval': {'every': 100, 'episodes': 2}, 'tensorboard': False,
        'algo_kwargs': {'hidden_sizes': [8], 'learning_starts': 50, 'batch_size': 8}})
    result = train(cfg, tmp_path, progress=False)
    assert result.reached_target and result.steps == 100
