"""Networks and algorithms: the math, learning on fixed data, exact resume."""
import copy

import numpy as np
import pytest
import torch

from rl_control.algos.a2c import A2C, A2CConfig, compute_gae
from rl_control.algos.networks import EnsembleQ, SquashedGaussianActor
from rl_control.algos.noise import OrnsteinUhlenbeckNoise, ou_std
from rl_control.algos.optim import ForeachAdam
from rl_control.algos.polyak import polyak_update
from rl_control.algos.sac import SAC, SACConfig
from rl_control.algos.seeding import STREAMS, stream_seed
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


@pytest.mark.parametrize('path', ['fused', 'foreach'])
def test_foreach_adam_equals_torch_adam(monkeypatch, path):
    """Bit for bit torch.optim.Adam(fused=True) (the fused kernel), or torch's foreach Adam
    when the tensors cannot be fused."""
    if path == 'foreach':
        from rl_control.algos import optim
        monkeypatch.setattr(optim, '_fusable', lambda params: False)
    torch.manual_seed(0)
    ours = [torch.randn(4, 3, requires_grad=True), torch.randn(3, requires_grad=True),
            torch.randn(2, requires_grad=True)]
    ref = [p.detach().clone().requires_grad_(True) for p in ours]
    opt = ForeachAdam([{'params': ours[:2], 'lr': 1e-2}, {'params': ours[2:], 'lr': 3e-3}])
    ref_opt = torch.optim.Adam([{'params': ref[:2], 'lr': 1e-2}, {'params': ref[2:], 'lr': 3e-3}],
                               **{path: True})
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
    torch.testing.assert_close(q.q1(obs, act), out[0])
    # frozen: the same values; gradients reach the action, never the critic's weights.
    for frozen, expected in ((q.frozen, out), (q.frozen.q1, out[0])):
        a = act.clone().requires_grad_(True)
        value = frozen(obs, a)
        torch.testing.assert_close(value, expected, rtol=0, atol=0)
        value.sum().backward()
        assert a.grad is not None and a.grad.abs().sum() > 0
        assert all(p.grad is None for p in q.parameters())
    q(obs, act).sum().backward()  # the plain call trains every head
    assert all(p.grad is not None for p in q.parameters())


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


def test_agent_random_streams_are_independent_spawned_children():
    """Every stream is a SeedSequence child; seed s's sampling is never seed s+1's init."""
    seeds = {stream_seed(seed, name) for seed in range(200) for name in STREAMS}
    assert len(seeds) == 200 * len(STREAMS)
    np.testing.assert_array_equal(  # stream i is SeedSequence(seed).spawn(n)[i]
        np.random.SeedSequence(5).spawn(4)[STREAMS['target_noise']].generate_state(1, np.uint64),
        [stream_seed(5, 'target_noise')])
    for seed in (0, 1, 2):
        sac, td3 = SAC(OBS, ACT, SACConfig(hidden_sizes=(8,)), seed=seed), TD3(
            OBS, ACT, TD3Config(hidden_sizes=(8,)), seed=seed)
        assert sac.generator.initial_seed() == stream_seed(seed, 'policy')
        assert td3.generator.initial_seed() == stream_seed(seed, 'target_noise')
        expected = np.random.default_rng(stream_seed(seed, 'exploration')).standard_normal(3)
        np.testing.assert_array_equal(td3.exploration_rng.standard_normal(3), expected)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(stream_seed(seed, 'init'))
            init = SquashedGaussianActor(OBS, ACT, (8,))
        for a, b in zip(init.parameters(), sac.actor.parameters(), strict=True):
            torch.testing.assert_close(a, b, rtol=0, atol=0)
        # The old bug: the sampling generator seeded like the next seed's network init.
        assert sac.generator.initial_seed() not in {stream_seed(s, 'init') for s in range(10)}
    # The global torch RNG is left alone by construction.
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    SAC(OBS, ACT, SACConfig(hidden_sizes=(8,)), seed=0)
    torch.testing.assert_close(torch.rand(3), expected)


def test_each_network_has_its_own_optimizer():
    sac = SAC(OBS, ACT, SACConfig(hidden_sizes=SMALL, actor_lr=1e-4, critic_lr=2e-4,
                                  alpha_lr=3e-4, lr_schedule='linear'), seed=0)
    assert list(sac.optimizers) == ['ent_coef_optimizer', 'critic_optimizer', 'actor_optimizer']
    assert sac.actor_optimizer.param_groups[0]['params'] == list(sac.actor.parameters())
    assert sac.critic_optimizer.param_groups[0]['params'] == list(sac.critic.parameters())
    assert sac.ent_coef_optimizer.param_groups[0]['params'] == [sac.log_alpha]
    sac.set_progress(0.5)
    assert [o.param_groups[0]['lr'] for o in sac.optimizers.values()] == pytest.approx(
        [1.5e-4, 1e-4, 0.5e-4])
    assert SAC(OBS, ACT, SACConfig(hidden_sizes=SMALL, ent_coef=0.1)).ent_coef_optimizer is None
    td3 = TD3(OBS, ACT, TD3Config(hidden_sizes=SMALL), seed=0)
    assert list(td3.optimizers) == ['critic_optimizer', 'actor_optimizer']
    assert td3.actor_optimizer.param_groups[0]['params'] == list(td3.actor.parameters())


@pytest.mark.skipif(not torch.cuda.is_available(), reason='needs CUDA')
@pytest.mark.parametrize('make', [
    lambda d: SAC(OBS, ACT, SACConfig(hidden_sizes=SMALL), seed=3, device=d),
    lambda d: TD3(OBS, ACT, TD3Config(hidden_sizes=SMALL), seed=3, device=d),
    lambda d: A2C(OBS, ACT, A2CConfig(use_sde=True), seed=3, device=d),
])
def test_agents_on_cuda_draw_the_cpu_streams_and_resume_across_devices(make):
    cpu, gpu = make('cpu'), make('cuda')
    assert all(p.is_cuda for p in gpu.actor.parameters())
    obs = np.random.default_rng(0).normal(size=(4, OBS)).astype(np.float32)
    np.testing.assert_allclose(gpu.act(obs), cpu.act(obs), atol=1e-5)  # same random draws
    if isinstance(gpu, A2C):
        gpu.update(_rollout(gpu))
    else:
        gpu.update(_batch().to(torch.device('cuda')))
    clone = make('cpu')
    clone.load_state_dict(copy.deepcopy(gpu.state_dict()))
    np.testing.assert_allclose(clone.act(obs), gpu.act(obs), atol=1e-5)


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
    noise = OrnsteinUhlenbeckNoise(1, 1, sigma=0.2, theta=0.15, dt=1e-2, rng=0)
    xs = np.array([noise()[0, 0] for _ in range(5000)])
    assert np.corrcoef(xs[:-1], xs[1:])[0, 1] > 0.9


def test_ou_noise_std_grows_as_documented():
    """The numbers in noise.py's table: far below sigma / sqrt(2 theta) over an episode."""
    documented = {1: 0.020, 10: 0.063, 50: 0.136, 100: 0.186, 500: 0.322, 1000: 0.356}
    for n, std in documented.items():
        assert ou_std(n, 0.2, 0.15, 1e-2) == pytest.approx(std, abs=6e-4)
    assert ou_std(float('inf'), 0.2, 0.15, 1e-2) == pytest.approx(0.365, abs=6e-4)
    assert ou_std(200, 0.2) == pytest.approx(0.25, abs=0.01)  # Pendulum's episode
    assert ou_std(1, 0.2, 0.15, 1.0) == pytest.approx(0.20)  # dt = 1 (the DDPG paper's unit)
    assert ou_std(10, 0.2, 0.15, 1.0) == pytest.approx(0.37, abs=0.005)
    # Monte Carlo over 20000 independent processes: the formula is the process's std.
    noise = OrnsteinUhlenbeckNoise(20000, 1, sigma=0.2, theta=0.15, dt=1e-2, rng=0)
    xs = np.stack([noise()[:, 0] for _ in range(1000)])
    for n in (10, 50, 1000):
        assert xs[n - 1].std() == pytest.approx(ou_std(n, 0.2), rel=0.02)
    noise.reset([0, 1])
    assert np.all(noise.x[:2] == 0) and np.all(noise.x[2:5] != 0)


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


# -- parity with Stable-Baselines3 -----------------------------------------------------------
# float64 on both sides, our initial weights copied into SB3's policy, the same minibatch and the
# same injected noise: after each update every parameter must agree to 1e-6 (measured: ~1e-15).
PARITY = dict(rtol=0, atol=1e-6)


@pytest.fixture
def float64(monkeypatch):
    """float64 networks and data; SB3's preprocess_obs would cast Box observations to float32."""
    sb3 = pytest.importorskip('stable_baselines3')
    monkeypatch.setattr(sb3.common.policies, 'preprocess_obs',
                        lambda obs, space, normalize_images=True: obs)
    old = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    yield
    torch.set_default_dtype(old)


def _rsample(queue: list[torch.Tensor]):
    """Normal.rsample with the next injected eps: loc + eps * scale (what torch computes)."""
    def rsample(self, sample_shape=None):
        return self.loc + queue.pop(0) * self.scale
    return rsample


def _parity_env():
    gym = pytest.importorskip('gymnasium')
    env = gym.make('Pendulum-v1')
    env.observation_space = gym.spaces.Box(-np.inf, np.inf, (OBS,), np.float32)
    env.action_space = gym.spaces.Box(-1, 1, (ACT,), np.float32)
    return env


def _batch64(seed: int, n: int = 64) -> Batch:
    b = _batch(seed, n)
    return Batch(*(t.double() for t in (b.obs, b.act, b.rew, b.next_obs, b.terminated)))


def _sb3_samples(batch: Batch):
    from stable_baselines3.common.type_aliases import ReplayBufferSamples
    return ReplayBufferSamples(batch.obs, batch.act, batch.next_obs, batch.terminated[:, None],
                               batch.rew[:, None])


def linears_of(module: torch.nn.Module) -> list[torch.nn.Linear]:
    return [m for m in module.modules() if isinstance(m, torch.nn.Linear)]


def _critic_pairs(ours: EnsembleQ, sb3_critic):
    """(our stacked weight slice, SB3's Linear weight transposed) for every head and layer."""
    for i, qf in enumerate(sb3_critic.q_networks):
        for l_idx, layer in enumerate(linears_of(qf)):
            yield ours.weights[l_idx][i], layer.weight.T
            yield ours.biases[l_idx][i, 0], layer.bias


def _copy_critic_into_sb3(ours: EnsembleQ, sb3_critic) -> None:
    with torch.no_grad():
        for mine, theirs in _critic_pairs(ours, sb3_critic):
            theirs.copy_(mine)  # .T is a view: this writes SB3's weight


def _assert_same(pairs) -> None:
    for mine, theirs in pairs:
        torch.testing.assert_close(mine, theirs, **PARITY)


def _sac_actor_pairs(agent: SAC, sb3_actor):
    ours = linears_of(agent.actor.net)
    theirs = linears_of(sb3_actor.latent_pi)
    for a, b in zip(ours[:-1], theirs, strict=True):
        yield a.weight, b.weight
        yield a.bias, b.bias
    head = ours[-1]  # one (2 act_dim)-wide layer: mean rows, then log-std rows
    yield head.weight[:ACT], sb3_actor.mu.weight
    yield head.bias[:ACT], sb3_actor.mu.bias
    yield head.weight[ACT:], sb3_actor.log_std.weight
    yield head.bias[ACT:], sb3_actor.log_std.bias


@pytest.mark.parametrize('ent_coef', ['auto', 0.2])
def test_sac_update_equals_sb3_sac_train(float64, monkeypatch, ent_coef):
    """One SAC update = SB3's SAC.train(gradient_steps=1): actor, critics, log_alpha, target.

    The reparameterization noise is injected into both (SB3 draws it in Normal.rsample). SB3's
    log-prob adds 1e-6 inside log(1 - tanh(u)^2); that epsilon is set to 0 here, since we use
    the exact (stable) form: what remains to compare is the algorithm itself.
    """
    sb3 = pytest.importorskip('stable_baselines3')
    kw = dict(gamma=0.9, tau=0.1)
    model = sb3.SAC('MlpPolicy', _parity_env(), learning_rate=1e-3, device='cpu', seed=0,
                    ent_coef=ent_coef, policy_kwargs=dict(net_arch=[32, 32]), **kw)
    model.set_logger(sb3.common.logger.Logger(None, []))
    model.actor.action_dist.epsilon = 0.0
    agent = SAC(OBS, ACT, SACConfig(hidden_sizes=(32, 32), lr=1e-3, ent_coef=ent_coef, **kw),
                seed=0)
    assert model.actor.optimizer is not model.critic.optimizer  # one optimizer per network
    with torch.no_grad():
        for mine, theirs in _sac_actor_pairs(agent, model.actor):
            theirs.copy_(mine)
    _copy_critic_into_sb3(agent.critic, model.critic)
    _copy_critic_into_sb3(agent.critic_target, model.critic_target)

    g = torch.Generator().manual_seed(7)
    for step in range(3):  # later steps see Adam moments, a moved alpha and moved targets
        batch = _batch64(step)
        eps = [torch.randn(len(batch.obs), ACT, generator=g) for _ in range(2)]  # s, then s'
        ours, theirs = list(eps), list(eps)
        agent.reparam_noise = lambda obs, q=ours: q.pop(0)
        monkeypatch.setattr(torch.distributions.Normal, 'rsample', _rsample(theirs))
        model.replay_buffer.sample = lambda *args, b=batch, **kwargs: _sb3_samples(b)
        model.train(gradient_steps=1, batch_size=len(batch.obs))
        agent.update(batch)
        assert not ours and not theirs  # both drew exactly twice
        _assert_same(_sac_actor_pairs(agent, model.actor))
        _assert_same(_critic_pairs(agent.critic, model.critic))
        _assert_same(_critic_pairs(agent.critic_target, model.critic_target))
        if ent_coef == 'auto':
            torch.testing.assert_close(agent.log_alpha.reshape(1), model.log_ent_coef.detach(),
                                       **PARITY)
    assert agent.log_alpha.dtype == torch.float64 and agent.n_updates == 3
    if ent_coef == 'auto':
        assert agent.log_alpha.item() != 0.0  # alpha did move


@pytest.mark.parametrize('algo', ['td3', 'ddpg'])
def test_td3_and_ddpg_updates_equal_sb3(float64, monkeypatch, algo):
    """TD3 (target policy noise ON, injected into both) and DDPG: every network as SB3's."""
    sb3 = pytest.importorskip('stable_baselines3')
    kw = dict(gamma=0.9, tau=0.1)
    if algo == 'td3':
        model = sb3.TD3('MlpPolicy', _parity_env(), learning_rate=1e-3, policy_delay=2,
                        target_policy_noise=0.2, target_noise_clip=0.5, device='cpu', seed=0,
                        policy_kwargs=dict(net_arch=[32, 32]), **kw)
        cfg = TD3Config(hidden_sizes=(32, 32), lr=1e-3, policy_delay=2, target_noise=0.2,
                        target_noise_clip=0.5, **kw)
    else:
        model = sb3.DDPG('MlpPolicy', _parity_env(), learning_rate=1e-3, device='cpu', seed=0,
                         policy_kwargs=dict(net_arch=[32, 32]), **kw)
        cfg = DDPGConfig(hidden_sizes=(32, 32), lr=1e-3, **kw)
    model.set_logger(sb3.common.logger.Logger(None, []))
    agent = TD3(OBS, ACT, cfg, seed=0)
    assert len(model.critic.q_networks) == agent.critic.n_critics
    actor_pairs = [(agent.actor, model.actor), (agent.actor_target, model.actor_target)]
    with torch.no_grad():
        for ours, theirs in actor_pairs:
            for a, b in zip(linears_of(ours), linears_of(theirs.mu), strict=True):
                b.weight.copy_(a.weight)
                b.bias.copy_(a.bias)
    _copy_critic_into_sb3(agent.critic, model.critic)
    _copy_critic_into_sb3(agent.critic_target, model.critic_target)
    actor0 = linears_of(agent.actor)[0].weight.detach().clone()

    g = torch.Generator().manual_seed(7)
    drawn = []
    for step in range(4):  # steps 2 and 4 also update the actor and both targets
        batch = _batch64(step)
        eps = 3.0 * torch.randn(len(batch.obs), ACT, generator=g)  # 0.2 * 3 > 0.5: clips
        agent.smoothing_noise = lambda like, e=eps: drawn.append(1) or e

        def normal_(self, mean=0.0, std=1.0, *, generator=None, e=eps):
            drawn.append(2)
            return self.copy_(mean + std * e)

        model.replay_buffer.sample = lambda *args, b=batch, **kwargs: _sb3_samples(b)
        with monkeypatch.context() as patch:  # SB3 draws the smoothing noise with normal_
            patch.setattr(torch.Tensor, 'normal_', normal_)
            model.train(gradient_steps=1, batch_size=len(batch.obs))
        agent.update(batch)
        _assert_same(_critic_pairs(agent.critic, model.critic))
        _assert_same(_critic_pairs(agent.critic_target, model.critic_target))
        for ours, theirs in actor_pairs:
            for a, b in zip(linears_of(ours), linears_of(theirs.mu), strict=True):
                _assert_same([(a.weight, b.weight), (a.bias, b.bias)])
    # SB3 always draws (DDPG: with std 0); we draw only when smoothing is on.
    assert drawn.count(2) == 4 and drawn.count(1) == (4 if algo == 'td3' else 0)
    assert not torch.equal(linears_of(agent.actor)[0].weight, actor0)  # the actor did move


def test_foreach_adam_resumes_exactly_from_its_state_dict():
    """A state_dict taken between steps (after the fast path has run) continues bit for bit."""
    torch.manual_seed(1)
    a = [torch.randn(5, 4, requires_grad=True), torch.randn(4, requires_grad=True)]
    b = [p.detach().clone().requires_grad_(True) for p in a]
    opt_a = ForeachAdam([{'params': a, 'lr': 1e-2}])
    opt_b = ForeachAdam([{'params': b, 'lr': 1e-2}])

    def step(params, opt, k):
        opt.zero_grad()
        ((params[0] ** 2).sum() * k + params[1].cos().sum()).backward()
        opt.step()

    for k in range(4):
        step(a, opt_a, k)
        step(b, opt_b, k)
    opt_b.load_state_dict(copy.deepcopy(opt_b.state_dict()))  # fresh moment tensors
    for k in range(4, 7):
        step(a, opt_a, k)
        step(b, opt_b, k)
    for x, y in zip(a, b, strict=True):
        torch.testing.assert_close(x, y, rtol=0, atol=0)
    assert opt_b.state[0]['step'] == opt_b.state[1]['step'] == 7
