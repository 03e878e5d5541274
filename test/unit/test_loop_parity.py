"""The whole off-policy loop against SB3's `learn`, on the MuJoCo robots (float32, as trained).

`train()` runs for real (env factory, vector env with its autoreset, collector, replay buffer,
schedule); SB3's `SAC.learn` is given the same random numbers: our initial weights, our warm-up
actions, our replay indices and our Gaussian draws (acting and updating). What must then agree:
- every stored transition of the warm-up, bitwise, and the first policy action: observations,
  the next observation (the TRUE final one at a time-limit truncation or a termination),
  action, reward, terminated and truncated flags;
- training on the same replay contents: the networks after 250 updates, to float32 rounding
  (the float64 parity tests in test_algorithms.py check single updates to 1e-16).
After the first update the two runs separate by rounding (a fused ensemble matmul sums in
another order than two nn.Linear stacks), and HalfCheetah's dynamics amplify a 1-ulp action
difference into a different trajectory within tens of steps (test below): a seed names
unrelated runs in the two libraries, so their returns compare only as distributions.
"""
import copy

import numpy as np
import pytest
import torch

from rl_control.algos import networks as networks_module
from rl_control.algos import sac as sac_module
from rl_control.algos.sac import SAC, SACConfig
from rl_control.train import build
from rl_control.train.config import config_from_dict
from rl_control.train.learn import train

sb3 = pytest.importorskip('stable_baselines3')
gym = pytest.importorskip('gymnasium')
pytest.importorskip('mujoco')

HIDDEN = [64, 64]
BATCH = 64
SEED = 3
# Our Adam is the fused kernel (optim.ForeachAdam); SB3 gets it too, so that both round
# alike (torch's for-loop Adam, SB3's default, rounds differently, and training amplifies that).
OPTIMIZER = {'fused': True}


class _RecordingRng:
    """A numpy Generator whose `integers` draws (the replay indices) are recorded."""

    def __init__(self, rng: np.random.Generator, log: list) -> None:
        self._rng, self._log = rng, log

    def integers(self, *args, **kwargs):
        out = self._rng.integers(*args, **kwargs)
        self._log.append(out.copy())
        return out

    def __getattr__(self, name):
        return getattr(self._rng, name)


def _ours(monkeypatch, tmp_path, env_id, steps, learning_starts, time_limit):
    """Train with our loop; return (agent, initial state, buffer, Gaussian draws, indices)."""
    draws, indices, got = [], [], {}
    normal = networks_module.standard_normal

    def recording_normal(shape, generator, like):
        out = normal(shape, generator, like)
        draws.append(out.clone())
        return out

    make_agent, make_buffer = build.make_agent, build.make_buffer

    def agent_hook(*args, **kwargs):
        got['agent'] = make_agent(*args, **kwargs)
        got['init'] = copy.deepcopy(got['agent'].state_dict())
        return got['agent']

    def buffer_hook(*args, **kwargs):
        got['buffer'] = make_buffer(*args, **kwargs)
        got['buffer'].rng = _RecordingRng(got['buffer'].rng, indices)
        return got['buffer']

    with monkeypatch.context() as patch:
        patch.setattr(networks_module, 'standard_normal', recording_normal)  # acting
        patch.setattr(sac_module, 'standard_normal', recording_normal)  # update's eps
        patch.setattr(build, 'make_agent', agent_hook)
        patch.setattr(build, 'make_buffer', buffer_hook)
        cfg = config_from_dict({
            'env': env_id, 'algo': 'sac', 'total_steps': steps, 'seed': SEED,
            'time_limit': time_limit, 'tensorboard': False,
            'eval': {'every': 10**9, 'episodes': 1},
            'algo_kwargs': {'hidden_sizes': HIDDEN, 'batch_size': BATCH, 'lr': 1e-3,
                            'learning_starts': learning_starts}})
        train(cfg, tmp_path / 'run', progress=False)
    return got['agent'], got['init'], got['buffer'], draws, indices


def _linears(module):
    return [m for m in module.modules() if isinstance(m, torch.nn.Linear)]


def _sb3_model(env_id, learning_starts, time_limit, init_state):
    """SB3's SAC with our hyperparameters and our initial weights (actor, critic, target)."""
    env = gym.make(env_id, max_episode_steps=time_limit)
    act_dim = env.action_space.shape[0]
    assert np.all(env.action_space.low == -1) and np.all(env.action_space.high == 1)
    model = sb3.SAC('MlpPolicy', env, learning_rate=1e-3, batch_size=BATCH,
                    learning_starts=learning_starts, policy_kwargs=dict(net_arch=HIDDEN,
                                                      optimizer_kwargs=OPTIMIZER),
                    seed=SEED, device='cpu')
    # Bounds are [-1, 1]: SB3's scale/unscale round trip is the identity up to float32
    # rounding (a 6e-8 action difference that HalfCheetah would amplify); make it exact.
    model.policy.scale_action = lambda a: a
    model.policy.unscale_action = lambda a: a
    model.ent_coef_optimizer = torch.optim.Adam([model.log_ent_coef], lr=1e-3, **OPTIMIZER)
    ours = SAC(env.observation_space.shape[0], act_dim, SACConfig(hidden_sizes=tuple(HIDDEN)))
    ours.load_state_dict(init_state)
    with torch.no_grad():
        mine = _linears(ours.actor.net)
        for a, b in zip(mine[:-1], _linears(model.actor.latent_pi), strict=True):
            b.weight.copy_(a.weight)
            b.bias.copy_(a.bias)
        head = mine[-1]
        model.actor.mu.weight.copy_(head.weight[:act_dim])
        model.actor.mu.bias.copy_(head.bias[:act_dim])
        model.actor.log_std.weight.copy_(head.weight[act_dim:])
        model.actor.log_std.bias.copy_(head.bias[act_dim:])
        for crit, theirs in ((ours.critic, model.critic),
                             (ours.critic_target, model.critic_target)):
            for i, qf in enumerate(theirs.q_networks):
                for layer_i, layer in enumerate(_linears(qf)):
                    layer.weight.copy_(crit.weights[layer_i][i].T)
                    layer.bias.copy_(crit.biases[layer_i][i, 0])
    return model


def _inject(monkeypatch, model, draws, indices, warmup=None):
    queue, idx = list(draws), list(indices)

    def rsample(self, sample_shape=None):
        eps = queue.pop(0)
        assert eps.shape == self.loc.shape
        return self.loc + eps * self.scale

    monkeypatch.setattr(torch.distributions.Normal, 'rsample', rsample)
    rb = model.replay_buffer
    rb.sample = lambda batch_size, env=None: rb._get_samples(idx.pop(0), env)
    if warmup is not None:
        model.action_space.sample = lambda: warmup.pop(0)
    return queue, idx


@pytest.mark.parametrize('env_id', ['HalfCheetah-v5', 'Hopper-v5'])
def test_collected_transitions_equal_sb3_bitwise(monkeypatch, tmp_path, env_id):
    """The warm-up stores exactly what SB3 stores, final obs included; then the same action.

    50-step episodes: HalfCheetah ends by truncation only, Hopper (random actions) mostly by
    termination, so both kinds of episode end and both autoresets are covered.
    """
    learning_starts, steps, limit = 300, 302, 50
    _, init, buf, draws, indices = _ours(monkeypatch, tmp_path, env_id, steps,
                                         learning_starts, limit)
    model = _sb3_model(env_id, learning_starts, limit, init)
    queue, idx = _inject(monkeypatch, model, draws, indices,
                         warmup=list(buf.act[:learning_starts].copy()))
    model.learn(steps)
    assert not queue and not idx  # SB3 drew as often as we did, in the same shapes
    rb, n = model.replay_buffer, learning_starts  # the warm-up rows
    assert rb.pos == buf.size == steps
    np.testing.assert_array_equal(buf.obs[:n], rb.observations[:n, 0].astype(np.float32))
    np.testing.assert_array_equal(buf.next_obs[:n],
                                  rb.next_observations[:n, 0].astype(np.float32))
    np.testing.assert_array_equal(buf.act[:n], rb.actions[:n, 0])
    np.testing.assert_array_equal(buf.rew[:n], rb.rewards[:n, 0])
    np.testing.assert_array_equal(buf.terminated[:n],
                                  rb.dones[:n, 0] * (1 - rb.timeouts[:n, 0]))
    # SB3's timeout is `truncated and not terminated`; we keep both flags of an episode that
    # ends both ways at once (Hopper falling at step 50). Only `terminated` enters a target.
    np.testing.assert_array_equal(buf.truncated[:n] * (1 - buf.terminated[:n]),
                                  rb.timeouts[:n, 0])
    # Row 300, the first policy action (no update yet): the same to float32 rounding (our
    # fused mean/log-std output layer may sum in another order than SB3's two layers).
    np.testing.assert_allclose(buf.act[n], rb.actions[n, 0], rtol=0, atol=1e-6)
    assert not np.array_equal(buf.act[n], buf.act[n - 1])
    ends = buf.terminated[:n] + buf.truncated[:n]
    assert ends.sum() >= 5  # several episode ends, each stored with its own final obs
    # At an episode end, next_obs is the final observation, not the next episode's first.
    end_rows = np.flatnonzero(ends[:-1])
    assert not np.array_equal(buf.next_obs[end_rows], buf.obs[end_rows + 1])
    if env_id == 'HalfCheetah-v5':
        assert buf.truncated[:n].sum() == 6 and buf.terminated[:n].sum() == 0
    else:
        assert buf.terminated[:n].sum() >= 3


def test_training_on_the_same_replay_equals_sb3(monkeypatch, tmp_path):
    """100 updates by our loop vs SB3's train() on our replay contents: equal to rounding.

    SB3's 1e-6 inside log(1 - tanh(u)^2 + 1e-6) is set to 0 (we compute the exact form): left
    in, it is a systematic 1e-6 relative perturbation, and after 500 updates the networks
    differ by ~1e-2. Rounding differences alone stay below 1e-6 for 100 updates; further on,
    training on this data amplifies even them, at a rate that depends on the CPU's float
    kernels (which Adam and matmul kernels each side rounds with: on one host still 6e-7 at 250
    updates, on another 7e-4), which is why the comparison stops at 100.
    """
    learning_starts, steps, limit = 100, 200, 50
    agent, init, buf, draws, indices = _ours(monkeypatch, tmp_path, 'HalfCheetah-v5', steps,
                                             learning_starts, limit)
    model = _sb3_model('HalfCheetah-v5', learning_starts, limit, init)
    model.actor.action_dist.epsilon = 0.0
    model.set_logger(sb3.common.logger.Logger(None, []))
    n, rb = buf.size, model.replay_buffer
    rb.observations[:n, 0] = buf.obs[:n]
    rb.next_observations[:n, 0] = buf.next_obs[:n]
    rb.actions[:n, 0] = buf.act[:n]
    rb.rewards[:n, 0] = buf.rew[:n]
    rb.dones[:n, 0] = np.maximum(buf.terminated[:n], buf.truncated[:n])
    rb.timeouts[:n, 0] = buf.truncated[:n]
    rb.pos = n
    updates = [d for d in draws if d.shape[0] == BATCH]  # not the (1, act) acting draws
    assert len(updates) == 2 * len(indices) == 2 * (steps - learning_starts)
    queue, idx = _inject(monkeypatch, model, updates, indices)
    model._setup_learn(1)
    model.set_logger(sb3.common.logger.Logger(None, []))
    for _ in range(len(indices)):
        model.train(gradient_steps=1, batch_size=BATCH)
    assert not queue and not idx
    close = dict(rtol=0, atol=1e-5)  # float32 rounding: below 1e-6
    mine = _linears(agent.actor.net)
    for a, b in zip(mine[:-1], _linears(model.actor.latent_pi), strict=True):
        torch.testing.assert_close(a.weight, b.weight, **close)
    torch.testing.assert_close(mine[-1].weight[:6], model.actor.mu.weight, **close)
    for i, qf in enumerate(model.critic.q_networks):
        for layer_i, layer in enumerate(_linears(qf)):
            torch.testing.assert_close(agent.critic.weights[layer_i][i].T, layer.weight,
                                       **close)
    torch.testing.assert_close(agent.log_alpha.reshape(1), model.log_ent_coef.detach(),
                               rtol=0, atol=1e-5)
    # ... and the networks did move far more than that.
    start = SAC(17, 6, SACConfig(hidden_sizes=tuple(HIDDEN)))
    start.load_state_dict(init)
    assert (mine[0].weight - _linears(start.actor.net)[0].weight).abs().max() > 0.01
    assert abs(agent.log_alpha.item()) > 0.1


def test_halfcheetah_amplifies_a_one_ulp_action_difference():
    """Why one seed is two unrelated runs in two libraries (see the module docstring)."""
    a, b = gym.make('HalfCheetah-v5'), gym.make('HalfCheetah-v5')
    oa, ob = a.reset(seed=0)[0], b.reset(seed=0)[0]
    rng = np.random.default_rng(0)
    for t in range(200):
        act = rng.uniform(-1, 1, 6).astype(np.float32)
        oa = a.step(act)[0]
        ob = b.step(np.nextafter(act, np.float32(2)) if t == 0 else act)[0]
    assert np.abs(oa - ob).max() > 1e-2


def test_critic_and_actor_initialization_match_sb3_layers():
    """Each ensemble head and the actor are initialized as SB3's nn.Linear layers are.

    nn.Linear's default: weight and bias ~ U(-1/sqrt(fan_in), 1/sqrt(fan_in)). Compared by
    the bounds and the standard deviation (1/sqrt(3 fan_in)) of every layer, for HalfCheetah's
    sizes at SB3's 256x256, against SB3's own freshly built critic and actor.
    """
    env = gym.make('HalfCheetah-v5')
    model = sb3.SAC('MlpPolicy', env, device='cpu', seed=0)
    ours = SAC(17, 6, SACConfig(), seed=0)
    for i, qf in enumerate(model.critic.q_networks):
        for layer_i, layer in enumerate(_linears(qf)):
            for mine, theirs in ((ours.critic.weights[layer_i][i].T, layer.weight),
                                 (ours.critic.biases[layer_i][i, 0], layer.bias)):
                fan_in = layer.weight.shape[1]
                bound = 1 / np.sqrt(fan_in)
                assert mine.shape == theirs.shape
                assert mine.abs().max() <= bound and theirs.abs().max() <= bound
                if mine.numel() > 1000:
                    for w in (mine, theirs):
                        assert abs(w.std().item() * np.sqrt(3 * fan_in) - 1) < 0.05
    head = _linears(ours.actor.net)[-1]
    for mine, theirs in ((head.weight[:6], model.actor.mu.weight),
                         (head.weight[6:], model.actor.log_std.weight)):
        assert mine.shape == theirs.shape
        assert mine.abs().max() <= 1 / 16 and theirs.abs().max() <= 1 / 16
        assert abs(mine.std().item() / theirs.std().item() - 1) < 0.1


@pytest.mark.parametrize('algo', ['sac', 'td3'])
@pytest.mark.parametrize('stem', ['hopper', 'halfcheetah'])
def test_mujoco_configs_are_sb3_defaults_with_the_zoo_settings(algo, stem):
    """config/{hopper,halfcheetah}_{sac,td3}.yaml = SB3's constructor defaults + RL-Zoo3's
    MuJoCo settings (learning_starts 10000; TD3: Gaussian noise 0.1), read off SB3 itself."""
    import inspect

    from rl_control.train.config import load_config
    cfg = load_config(f'config/{stem}_{algo}.yaml').algo_config
    cls = {'sac': sb3.SAC, 'td3': sb3.TD3}[algo]
    default = {k: v.default for k, v in inspect.signature(cls.__init__).parameters.items()}
    zoo = {'learning_starts': 10000}
    for ours, theirs in (('lr', 'learning_rate'), ('buffer_size', 'buffer_size'),
                         ('batch_size', 'batch_size'), ('tau', 'tau'), ('gamma', 'gamma'),
                         ('train_freq', 'train_freq'), ('gradient_steps', 'gradient_steps'),
                         ('learning_starts', 'learning_starts')):
        assert getattr(cfg, ours) == zoo.get(theirs, default[theirs]), ours
    policy = {'sac': sb3.sac.policies.SACPolicy, 'td3': sb3.td3.policies.TD3Policy}[algo]
    env = gym.make('Hopper-v5')
    net = policy(env.observation_space, env.action_space, lambda _: 1e-3)
    assert list(cfg.hidden_sizes) == [m.out_features for m in _linears(net.actor)][:-1 - (
        algo == 'sac')]
    if algo == 'sac':
        assert (cfg.ent_coef, cfg.target_entropy, cfg.n_critics) == (
            default['ent_coef'], default['target_entropy'], 2)
    else:
        assert (cfg.policy_delay, cfg.target_noise, cfg.target_noise_clip) == (
            default['policy_delay'], default['target_policy_noise'], default['target_noise_clip'])
        assert (cfg.action_noise, cfg.noise_sigma) == ('gaussian', 0.1)  # zoo: normal, 0.1


@pytest.mark.parametrize('stem, env_id', [('hopper', 'Hopper-v5'),
                                          ('halfcheetah', 'HalfCheetah-v5')])
def test_parity_bench_gives_sb3_the_settings_our_run_applies(stem, env_id):
    """bench/mujoco_peer.py (bench/mujoco_parity.py's runs): SB3's model holds exactly the
    values our collector and agent run with, learning_starts included (the RL-Zoo's 10000, not
    SB3's default 100)."""
    import sys

    from rl_control.algos.sac import SAC
    from rl_control.train.config import load_config
    from rl_control.train.offpolicy import OffPolicyCollector
    sys.path.insert(0, 'bench')
    try:
        import mujoco_peer
    finally:
        sys.path.remove('bench')
    env = gym.make(env_id)
    model = sb3.SAC('MlpPolicy', env, **mujoco_peer.sb3_kwargs('sac', env, 100, []))
    ak = load_config(f'config/{stem}_sac.yaml').algo_config
    ours = SAC(env.observation_space.shape[0], env.action_space.shape[0], ak, seed=0)
    loop = OffPolicyCollector(gym.vector.SyncVectorEnv([lambda: gym.make(env_id)]), ours, None,
                              None, ak, False, np.random.default_rng(0), None)
    assert (loop.learning_starts, loop.train_freq, loop.gradient_steps, loop.batch_size) == (
        model.learning_starts, model.train_freq.frequency, model.gradient_steps,
        model.batch_size) == (10000, 1, 1, 256)
    assert (ak.lr, ak.tau, ak.gamma, ak.buffer_size) == (
        model.learning_rate, model.tau, model.gamma, model.buffer_size)
    assert ours.target_entropy == model.target_entropy == -env.action_space.shape[0]
    assert ours.log_alpha.exp().item() == model.log_ent_coef.exp().item() == 1.0
    assert [m.out_features for m in _linears(model.actor.latent_pi)] == list(ak.hidden_sizes)
