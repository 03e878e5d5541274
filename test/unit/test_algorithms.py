"""Networks and algorithms: the math, learning on fixed data, exact resume."""
import copy

import numpy as np
import pytest
import torch

from rl_control.algos.a2c import A2C, A2CConfig, compute_gae
from rl_control.algos.networks import EnsembleQ, ForeachAdam, SquashedGaussianActor
from rl_control.algos.noise import OrnsteinUhlenbeckNoise
from rl_control.algos.polyak import polyak_update
from rl_control.algos.sac import SAC, SACConfig
from rl_control.algos.td3 import TD3, DDPGConfig, TD3Config
from rl_control.algos.types import Batch, Rollout

OBS, ACT = 6, 2
SMALL = (64, 64)


def _batch(seed: int = 0, n: int = 128) -> Batch:
    g = torch.Generator().manual_seed(seed)
    obs = torch.randn(n, OBS, generator=g)
    return Batch(obs=obs, act=torch.rand(n, ACT, generator=g) * 2 - 1,
                 rew=torch.randn(n, generator=g), next_obs=torch.randn(n, OBS, generator=g),
                 terminated=(torch.rand(n, generator=g) < 0.1).float())


def test_polyak_update_math():
    target = [torch.zeros(3), torch.full((2, 2), 4.0)]
    online = [torch.ones(3), torch.zeros(2, 2)]
    polyak_update(target, online, 0.1)
    torch.testing.assert_close(target[0], torch.full((3,), 0.1))
    torch.testing.assert_close(target[1], torch.full((2, 2), 3.6))
    polyak_update(target, online, 1.0)
    torch.testing.assert_close(target[1], torch.zeros(2, 2))


def test_foreach_adam_equals_torch_adam():
    torch.manual_seed(0)
    ours = [torch.randn(4, 3, requires_grad=True), torch.randn(3, requires_grad=True),
            torch.randn(2, requires_grad=True)]
    ref = [p.detach().clone().requires_grad_(True) for p in ours]
    opt = ForeachAdam([{'params': ours[:2], 'lr': 1e-2}, {'params': ours[2:], 'lr': 3e-3}])
    ref_opt = torch.optim.Adam([{'params': ref[:2], 'lr': 1e-2}, {'params': ref[2:], 'lr': 3e-3}],
                               foreach=True)
    for i in range(5):
        for params, o in ((ours, opt), (ref, ref_opt)):
            o.zero_grad(set_to_none=True)
            # The last parameter gets no gradient every other step: it must stay untouched.
            loss = (params[0] ** 2).sum() * (i + 1) + params[1].sin().sum()
            if i % 2 == 0:
                loss = loss + (params[2] ** 3).sum()
            loss.backward()
            o.step()
        for a, b in zip(ours, ref, strict=True):
            torch.testing.assert_close(a, b, rtol=0, atol=0)
    clone = ForeachAdam([{'params': ours[:2], 'lr': 0.0}, {'params': ours[2:], 'lr': 0.0}])
    clone.load_state_dict(copy.deepcopy(opt.state_dict()))
    assert clone.state[2]['step'] == 3 and clone.param_groups[1]['lr'] == 3e-3


def test_ensemble_q_heads_are_independent_mlps():
    q = EnsembleQ(OBS, ACT, (16, 8), n_critics=3)
    obs, act = torch.randn(5, OBS), torch.randn(5, ACT)
    out = q(obs, act)
    assert out.shape == (3, 5)
    x = torch.cat([obs, act], -1)
    for i in range(3):
        h = torch.relu(x @ q.weights[0][i] + q.biases[0][i])
        h = torch.relu(h @ q.weights[1][i] + q.biases[1][i])
        torch.testing.assert_close(out[i], (h @ q.weights[2][i] + q.biases[2][i]).squeeze(-1))
    torch.testing.assert_close(q(obs, act, heads=1), out[:1])
    # detach: gradients reach the action, never the critic's weights.
    a = act.clone().requires_grad_(True)
    q(obs, a, detach=True).sum().backward()
    assert a.grad is not None and all(p.grad is None for p in q.parameters())


def test_squashed_gaussian_log_prob_matches_torch_distributions():
    from torch.distributions import Normal, TanhTransform, TransformedDistribution

    actor = SquashedGaussianActor(OBS, ACT, (16,))
    obs = torch.randn(50, OBS)
    a, logp = actor(obs, generator=torch.Generator().manual_seed(0))
    mu, log_std = actor.net(obs).split(ACT, -1)
    dist = TransformedDistribution(Normal(mu, log_std.clamp(-20, 2).exp()),
                                   [TanhTransform(cache_size=1)])
    a = a.clamp(-1 + 1e-6, 1 - 1e-6)
    torch.testing.assert_close(logp, dist.log_prob(a).sum(-1), atol=2e-3, rtol=1e-3)
    assert (a.abs() <= 1).all()


# -- SAC --------------------------------------------------------------------------------------
def test_sac_critic_loss_decreases_on_a_fixed_batch():
    torch.manual_seed(0)
    agent = SAC(OBS, ACT, SACConfig(hidden_sizes=SMALL), seed=0)
    batch = _batch()
    first = agent.update(batch)
    for _ in range(100):
        last = agent.update(batch)
    assert last['critic_loss'] < 0.75 * first['critic_loss']
    assert set(first) >= {'critic_loss', 'actor_loss', 'alpha_loss', 'alpha'}
    assert agent.target_entropy == -ACT
    # Entropy starts above the target (-act_dim), so alpha must have decreased.
    assert last['alpha'] < first['alpha'] <= 1.0


def test_sac_fixed_ent_coef_and_target_tracks_online_by_tau():
    agent = SAC(OBS, ACT, SACConfig(hidden_sizes=SMALL, ent_coef=0.2, tau=0.5), seed=0)
    before = [p.clone() for p in agent.critic_target.parameters()]
    m = agent.update(_batch())
    assert m['alpha'] == pytest.approx(0.2) and m['alpha_loss'] == 0.0
    pairs = zip(agent.critic_target.parameters(), before, agent.critic.parameters(), strict=True)
    for t, b, o in pairs:
        torch.testing.assert_close(t, 0.5 * b + 0.5 * o)


def test_sac_learns_a_one_step_bandit():
    """Reward -|a - 0.5 s[:2]|^2, terminal: the deterministic action must move to the target."""
    agent = SAC(OBS, ACT, SACConfig(hidden_sizes=(64, 64), lr=3e-3, ent_coef=0.01), seed=0)
    g = torch.Generator().manual_seed(1)
    obs_test = np.random.default_rng(0).normal(size=(200, OBS)).astype(np.float32)
    best = np.clip(0.5 * obs_test[:, :ACT], -1, 1)
    err0 = np.abs(agent.act(obs_test, deterministic=True) - best).mean()
    for _ in range(400):
        obs = torch.randn(64, OBS, generator=g)
        act = torch.rand(64, ACT, generator=g) * 2 - 1
        rew = -(act - 0.5 * obs[:, :ACT]).square().sum(-1)
        agent.update(Batch(obs, act, rew, obs, torch.ones(64)))
    err = np.abs(agent.act(obs_test, deterministic=True) - best).mean()
    assert err < 0.1 < err0


@pytest.mark.parametrize('make', [
    lambda: SAC(OBS, ACT, SACConfig(hidden_sizes=SMALL), seed=3),
    lambda: TD3(OBS, ACT, TD3Config(hidden_sizes=SMALL), seed=3),
    lambda: TD3(OBS, ACT, DDPGConfig(hidden_sizes=SMALL), seed=3),
])
def test_state_dict_round_trip_resumes_exactly(make):
    agent = make()
    for i in range(3):
        agent.update(_batch(i))
    obs = np.random.default_rng(0).normal(size=(4, OBS)).astype(np.float32)
    agent.act(obs)  # build TD3's noise state
    state = copy.deepcopy(agent.state_dict())
    clone = make()
    clone.load_state_dict(state)
    np.testing.assert_array_equal(clone.act(obs, deterministic=True),
                                  agent.act(obs, deterministic=True))
    np.testing.assert_array_equal(clone.act(obs), agent.act(obs))  # same RNG/noise state
    batch = _batch(9)
    for _ in range(2):  # covers TD3's delayed step
        assert clone.update(batch) == agent.update(batch)
    for a, b in zip(agent.actor.parameters(), clone.actor.parameters(), strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=0)


def _same(xs, ys) -> bool:
    return all(torch.equal(a, b) for a, b in zip(xs, ys, strict=True))


# -- TD3 / DDPG -------------------------------------------------------------------------------
def test_td3_critic_loss_decreases_and_actor_is_delayed():
    agent = TD3(OBS, ACT, TD3Config(hidden_sizes=SMALL, policy_delay=2), seed=0)
    batch = _batch()
    actor0 = [p.clone() for p in agent.actor.parameters()]
    m1 = agent.update(batch)
    assert 'actor_loss' not in m1
    assert _same(actor0, agent.actor.parameters())
    assert _same(actor0, agent.actor_target.parameters())
    m2 = agent.update(batch)
    assert 'actor_loss' in m2
    assert not _same(actor0, agent.actor.parameters())
    for _ in range(100):
        last = agent.update(batch)
    assert last['critic_loss'] < 0.75 * m1['critic_loss']


def test_ddpg_config_is_td3_without_its_tricks():
    cfg = TD3Config.ddpg(lr=5e-4)
    assert isinstance(cfg, DDPGConfig) and isinstance(cfg, TD3Config)
    assert (cfg.n_critics, cfg.policy_delay, cfg.target_noise) == (1, 1, 0.0)
    assert cfg.lr == 5e-4 and cfg.action_noise == 'ou'
    agent = TD3(OBS, ACT, cfg, seed=0)
    assert agent.critic(torch.zeros(1, OBS), torch.zeros(1, ACT)).shape == (1, 1)
    assert 'actor_loss' in agent.update(_batch())  # no delay


def test_ddpg_critic_and_actor_losses_decrease_on_a_fixed_batch():
    agent = TD3(OBS, ACT, DDPGConfig(hidden_sizes=SMALL), seed=0)
    batch = _batch()
    first = agent.update(batch)
    for _ in range(150):
        last = agent.update(batch)
    assert last['critic_loss'] < 0.75 * first['critic_loss']
    # The actor climbs the critic: -Q(s, pi(s)) on the batch goes down.
    assert last['actor_loss'] < first['actor_loss']


def test_td3_exploration_noise_clips_and_resets_per_env():
    agent = TD3(OBS, ACT, TD3Config(hidden_sizes=SMALL, action_noise='ou', noise_sigma=3.0,
                                    ou_dt=1.0), seed=0)
    obs = np.zeros((3, OBS), np.float32)
    a = agent.act(obs)
    assert a.shape == (3, ACT) and np.abs(a).max() <= 1.0
    assert not np.allclose(a, agent.act(obs, deterministic=True))
    agent.reset_noise([1])
    assert np.all(agent.noise.x[1] == 0) and np.all(agent.noise.x[0] != 0)


def test_ou_noise_is_temporally_correlated():
    noise = OrnsteinUhlenbeckNoise(1, 1, sigma=0.2, theta=0.15, dt=1e-2, seed=0)
    xs = np.array([noise()[0, 0] for _ in range(5000)])
    assert np.corrcoef(xs[:-1], xs[1:])[0, 1] > 0.9


# -- A2C --------------------------------------------------------------------------------------
def test_gae_matches_hand_computation_with_truncation_bootstrap():
    gamma, lam = 0.9, 0.8
    rew = torch.tensor([[1.0], [2.0], [3.0]])
    values = torch.tensor([[0.5], [0.4], [0.3]])
    term = torch.tensor([[0.0], [0.0], [0.0]])
    trunc = torch.tensor([[0.0], [1.0], [0.0]])
    trunc_v = torch.tensor([[0.0], [10.0], [0.0]])
    last = torch.tensor([0.7])
    adv, ret = compute_gae(rew, values, last, term, trunc, trunc_v, gamma, lam)
    d2 = 3.0 + gamma * 0.7 - 0.3
    d1 = 2.0 + gamma * 10.0 - 0.4  # episode cut; truncation bootstraps via V(final obs)
    d0 = 1.0 + gamma * 0.4 - 0.5
    expected = torch.tensor([[d0 + gamma * lam * d1], [d1], [d2]])
    torch.testing.assert_close(adv, expected)
    torch.testing.assert_close(ret, expected + values)
    # A true termination cuts the bootstrap entirely.
    adv_t, _ = compute_gae(rew, values, last, trunc, trunc, trunc_v, gamma, lam)
    assert adv_t[1, 0] == pytest.approx(2.0 - 0.4)


def _rollout(agent: A2C, T: int = 8, n: int = 4, seed: int = 0) -> Rollout:
    rng = np.random.default_rng(seed)
    obs = rng.normal(size=(T, n, OBS)).astype(np.float32)
    acts, vals = [], []
    for t in range(T):
        a, a_env, v = agent.act_with_value(obs[t])
        assert np.abs(a_env).max() <= 1.0 and np.allclose(a_env, np.clip(a, -1, 1))
        acts.append(a)
        vals.append(v)
    f = lambda x: torch.as_tensor(np.asarray(x, np.float32))  # noqa: E731
    rew = obs[..., 0] + 1.0
    term = np.zeros((T, n))
    term[-1, 0] = 1
    return Rollout(obs=f(obs), act=f(acts), rew=f(rew), terminated=f(term),
                   truncated=f(np.zeros((T, n))), values=f(vals),
                   truncated_values=f(np.zeros((T, n))), last_value=f(agent.value(obs[-1])))


def test_a2c_value_loss_decreases_on_a_fixed_rollout():
    agent = A2C(OBS, ACT, A2CConfig(lr=3e-3, log_std_init=-2.0, ortho_init=False), seed=0)
    rollout = _rollout(agent)
    first = agent.update(rollout)
    for _ in range(50):
        last = agent.update(rollout)
    assert last['value_loss'] < 0.5 * first['value_loss']
    assert first['std'] == pytest.approx(np.exp(-2.0), rel=0.05)
    assert last['grad_norm'] >= 0 and isinstance(last['policy_loss'], float)
    assert isinstance(agent.optimizer, torch.optim.RMSprop)


@pytest.mark.parametrize('use_sde', [False, True])
def test_a2c_linear_lr_schedule_and_round_trip(use_sde):
    cfg = A2CConfig(lr=1e-3, lr_schedule='linear', use_sde=use_sde)
    agent = A2C(OBS, ACT, cfg, seed=0)
    agent.set_progress(0.25)
    assert agent.optimizer.param_groups[0]['lr'] == pytest.approx(2.5e-4)
    rollout = _rollout(agent)
    agent.update(rollout)
    obs = np.random.default_rng(1).normal(size=(4, OBS)).astype(np.float32)
    agent.act_with_value(obs)
    clone = A2C(OBS, ACT, cfg, seed=5)
    clone.load_state_dict(copy.deepcopy(agent.state_dict()))
    for x, y in zip(clone.act_with_value(obs), agent.act_with_value(obs), strict=True):
        np.testing.assert_array_equal(x, y)
    assert clone.update(rollout) == agent.update(rollout)


def test_a2c_gsde_noise_is_fixed_within_a_rollout():
    agent = A2C(OBS, ACT, A2CConfig(use_sde=True, log_std_init=-1.0), seed=0)
    obs = np.random.default_rng(0).normal(size=(3, OBS)).astype(np.float32)
    a1, _, _ = agent.act_with_value(obs)
    a2, _, _ = agent.act_with_value(obs)
    np.testing.assert_array_equal(a1, a2)  # same state, same matrices: same action
    assert not np.allclose(a1, agent.act(obs, deterministic=True))
    agent.update(_rollout(agent, n=3))
    a3, _, _ = agent.act_with_value(obs)
    assert not np.allclose(a1, a3, atol=1e-3)  # resampled after the update


@pytest.mark.parametrize('use_sde', [False, True])
def test_a2c_update_equals_sb3_a2c_train(use_sde):
    """Same weights, same rollout: one update moves every parameter exactly as SB3's A2C."""
    gym = pytest.importorskip('gymnasium')
    sb3 = pytest.importorskip('stable_baselines3')
    T, n, gamma, lam = 5, 3, 0.9, 0.8
    env = gym.make('Pendulum-v1')
    obs_space = gym.spaces.Box(-np.inf, np.inf, (OBS,), np.float32)
    env.observation_space = obs_space
    env.action_space = gym.spaces.Box(-1, 1, (ACT,), np.float32)
    kw = dict(n_steps=T, gamma=gamma, gae_lambda=lam, ent_coef=0.01, vf_coef=0.4,
              max_grad_norm=0.5, normalize_advantage=True, use_sde=use_sde)
    model = sb3.A2C('MlpPolicy', env, learning_rate=1e-3, device='cpu', seed=0,
                    policy_kwargs=dict(log_std_init=-1.0, ortho_init=False), **kw)
    agent = A2C(OBS, ACT, A2CConfig(lr=1e-3, log_std_init=-1.0, ortho_init=False, **kw), seed=0)
    pol = model.policy
    pairs = [(agent.actor.trunk[0], pol.mlp_extractor.policy_net[0]),
             (agent.actor.trunk[2], pol.mlp_extractor.policy_net[2]),
             (agent.actor.mu, pol.action_net),
             (agent.critic.net[0], pol.mlp_extractor.value_net[0]),
             (agent.critic.net[2], pol.mlp_extractor.value_net[2]),
             (agent.critic.net[4], pol.value_net)]
    with torch.no_grad():
        for ours, theirs in pairs:
            ours.weight.copy_(theirs.weight)
            ours.bias.copy_(theirs.bias)
    model.n_envs = n
    buf = sb3.common.buffers.RolloutBuffer(T, obs_space, env.action_space, 'cpu', gamma=gamma,
                                           gae_lambda=lam, n_envs=n)
    model.rollout_buffer = buf
    rng = np.random.default_rng(0)
    obs = rng.normal(size=(T, n, OBS)).astype(np.float32)
    act = rng.normal(size=(T, n, ACT)).astype(np.float32)
    rew = rng.normal(size=(T, n)).astype(np.float32)
    term, trunc = np.zeros((T, n), np.float32), np.zeros((T, n), np.float32)
    term[1, 0], trunc[2, 1], trunc[4, 2] = 1, 1, 1
    tval = (trunc * rng.normal(size=(T, n))).astype(np.float32)
    values = agent.value(obs.reshape(-1, OBS)).reshape(T, n)
    last_value = rng.normal(size=n).astype(np.float32)
    done = np.maximum(term, trunc)
    with torch.no_grad():
        for t in range(T):
            _, logp, _ = pol.evaluate_actions(torch.as_tensor(obs[t]), torch.as_tensor(act[t]))
            start = done[t - 1] if t > 0 else np.zeros(n, np.float32)
            buf.add(obs[t], act[t], rew[t] + gamma * tval[t] * (1 - term[t]), start,
                    torch.as_tensor(values[t]), logp)
    buf.compute_returns_and_advantage(torch.as_tensor(last_value), done[-1])
    model.set_logger(sb3.common.logger.Logger(None, []))
    model.train()
    f = torch.as_tensor
    agent.update(Rollout(obs=f(obs), act=f(act), rew=f(rew), terminated=f(term),
                         truncated=f(trunc), values=f(values), truncated_values=f(tval),
                         last_value=f(last_value)))
    for ours, theirs in pairs:
        torch.testing.assert_close(ours.weight, theirs.weight, atol=1e-6, rtol=1e-5)
        torch.testing.assert_close(ours.bias, theirs.bias, atol=1e-6, rtol=1e-5)
    torch.testing.assert_close(agent.actor.log_std, pol.log_std, atol=1e-6, rtol=1e-5)


def _load_sb3_critic(ours: EnsembleQ, sb3_critic) -> None:
    with torch.no_grad():
        for i, qf in enumerate(sb3_critic.q_networks):
            layers = [m for m in qf if isinstance(m, torch.nn.Linear)]
            for l_idx, layer in enumerate(layers):
                ours.weights[l_idx][i].copy_(layer.weight.T)
                ours.biases[l_idx][i, 0].copy_(layer.bias)


def _assert_critic_equal(ours: EnsembleQ, sb3_critic) -> None:
    for i, qf in enumerate(sb3_critic.q_networks):
        layers = [m for m in qf if isinstance(m, torch.nn.Linear)]
        for l_idx, layer in enumerate(layers):
            torch.testing.assert_close(ours.weights[l_idx][i], layer.weight.T, rtol=1e-5,
                                       atol=1e-6)
            torch.testing.assert_close(ours.biases[l_idx][i, 0], layer.bias, rtol=1e-5,
                                       atol=1e-6)


def test_td3_critic_steps_equal_sb3_td3():
    """Same weights, same minibatch: every network moves exactly as in SB3's TD3."""
    gym = pytest.importorskip('gymnasium')
    sb3 = pytest.importorskip('stable_baselines3')
    from stable_baselines3.common.type_aliases import ReplayBufferSamples

    env = gym.make('Pendulum-v1')
    env.observation_space = gym.spaces.Box(-np.inf, np.inf, (OBS,), np.float32)
    env.action_space = gym.spaces.Box(-1, 1, (ACT,), np.float32)
    model = sb3.TD3('MlpPolicy', env, learning_rate=1e-3, gamma=0.9, tau=0.1, policy_delay=2,
                    target_policy_noise=0.0, device='cpu', seed=0,
                    policy_kwargs=dict(net_arch=[32, 32]))
    model.set_logger(sb3.common.logger.Logger(None, []))
    agent = TD3(OBS, ACT, TD3Config(hidden_sizes=(32, 32), lr=1e-3, gamma=0.9, tau=0.1,
                                    policy_delay=2, target_noise=0.0), seed=0)
    with torch.no_grad():
        for ours, theirs in ((agent.actor, model.actor), (agent.actor_target, model.actor_target)):
            for a, b in zip(linears_of(ours), linears_of(theirs.mu), strict=True):
                a.weight.copy_(b.weight)
                a.bias.copy_(b.bias)
    _load_sb3_critic(agent.critic, model.critic)
    _load_sb3_critic(agent.critic_target, model.critic_target)
    actor0 = linears_of(agent.actor)[0].weight.detach().clone()
    batch = _batch(4)
    samples = ReplayBufferSamples(batch.obs, batch.act, batch.next_obs,
                                  batch.terminated[:, None], batch.rew[:, None])
    model.replay_buffer.sample = lambda *args, **kwargs: samples
    for _ in range(2):  # step 2 also updates the actor and both targets
        model.train(gradient_steps=1, batch_size=len(batch.obs))
        agent.update(batch)
        _assert_critic_equal(agent.critic, model.critic)
        _assert_critic_equal(agent.critic_target, model.critic_target)
        for ours, theirs in ((agent.actor, model.actor), (agent.actor_target, model.actor_target)):
            for a, b in zip(linears_of(ours), linears_of(theirs.mu), strict=True):
                torch.testing.assert_close(a.weight, b.weight, rtol=1e-5, atol=1e-6)
                torch.testing.assert_close(a.bias, b.bias, rtol=1e-5, atol=1e-6)
    assert not torch.equal(linears_of(agent.actor)[0].weight, actor0)  # the actor did move


def linears_of(module: torch.nn.Module) -> list[torch.nn.Linear]:
    return [m for m in module.modules() if isinstance(m, torch.nn.Linear)]
