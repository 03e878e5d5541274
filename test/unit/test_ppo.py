"""PPO: one update equals SB3's `PPO.train()`, the clipped surrogate is what moves the policy."""
import copy

import numpy as np
import pytest
import torch

from rl_control.algos.ppo import PPO, PPOConfig, flatten_env_major
from rl_control.algos.types import Rollout

OBS, ACT = 6, 2


def _episode_flags(T: int, n: int) -> tuple[np.ndarray, np.ndarray]:
    term, trunc = np.zeros((T, n)), np.zeros((T, n))
    term[1, 0], trunc[T - 3, 1], term[T - 1, 2], trunc[T // 2, 0] = 1, 1, 1, 1
    return term, trunc


def _random_rollout(T: int, n: int, seed: int = 0, dtype=torch.float64) -> Rollout:
    """A rollout of made-up data (values too): enough for the update's arithmetic."""
    rng = np.random.default_rng(seed)
    term, trunc = _episode_flags(T, n)
    # Actions as float32 numbers: SB3's buffer hands actions to the policy as float32.
    act = rng.normal(size=(T, n, ACT)).astype(np.float32)
    f = lambda x: torch.as_tensor(np.asarray(x, np.float64), dtype=dtype)  # noqa: E731
    return Rollout(obs=f(rng.normal(size=(T, n, OBS))), act=f(act),
                   rew=f(rng.normal(size=(T, n))), terminated=f(term), truncated=f(trunc),
                   values=f(rng.normal(size=(T, n))),
                   truncated_values=f(trunc * rng.normal(size=(T, n))),
                   last_value=f(rng.normal(size=n)))


def _sb3_pairs(agent: PPO, policy) -> list[tuple[torch.nn.Module, torch.nn.Module]]:
    return [(agent.actor.trunk[0], policy.mlp_extractor.policy_net[0]),
            (agent.actor.trunk[2], policy.mlp_extractor.policy_net[2]),
            (agent.actor.mu, policy.action_net),
            (agent.critic.net[0], policy.mlp_extractor.value_net[0]),
            (agent.critic.net[2], policy.mlp_extractor.value_net[2]),
            (agent.critic.net[4], policy.value_net)]


def _sb3_ppo_after_one_train(agent: PPO, rollout: Rollout, kw: dict, monkeypatch) -> tuple:
    """SB3's PPO in float64 with the agent's weights, the rollout and the agent's shuffles.

    Returns (sb3 model, our metrics, sb3 logger values) after `agent.update` and `model.train`.
    """
    gym = pytest.importorskip('gymnasium')
    sb3 = pytest.importorskip('stable_baselines3')
    T, n = rollout.rew.shape
    env = gym.make('Pendulum-v1')
    env.observation_space = gym.spaces.Box(-np.inf, np.inf, (OBS,), np.float64)
    env.action_space = gym.spaces.Box(-1, 1, (ACT,), np.float32)
    model = sb3.PPO('MlpPolicy', env, n_steps=T, device='cpu', seed=0,
                    policy_kwargs=dict(log_std_init=agent.cfg.log_std_init), **kw)
    policy = model.policy.double()
    # SB3 casts observations to float32 (preprocess_obs: obs.float()); keep them float64.
    monkeypatch.setattr(sb3.common.policies, 'preprocess_obs', lambda obs, *_a, **_k: obs)
    pairs = _sb3_pairs(agent, policy)
    with torch.no_grad():
        for ours, theirs in pairs:
            theirs.weight.copy_(ours.weight)
            theirs.bias.copy_(ours.bias)
        policy.log_std.copy_(agent.actor.log_std)

    # The rollout in SB3's buffer, as collect_rollouts would have filled it (float64 arrays).
    gamma = agent.cfg.gamma
    np64 = lambda x: x.numpy().astype(np.float64)  # noqa: E731
    term, trunc, tval = np64(rollout.terminated), np64(rollout.truncated), \
        np64(rollout.truncated_values)
    done = np.maximum(term, trunc)
    buf = sb3.common.buffers.RolloutBuffer(T, env.observation_space, env.action_space, 'cpu',
                                           gamma=gamma, gae_lambda=agent.cfg.gae_lambda,
                                           n_envs=n)
    with torch.no_grad():
        _, logp, _ = policy.evaluate_actions(rollout.obs.reshape(-1, OBS),
                                             rollout.act.reshape(-1, ACT))
    buf.observations = np64(rollout.obs)
    buf.actions = np64(rollout.act)
    # SB3 adds gamma * V(terminal obs) to the reward of a time-limit truncation.
    buf.rewards = np64(rollout.rew) + gamma * tval * trunc * (1 - term)
    buf.episode_starts = np.concatenate([np.ones((1, n)), done[:-1]])
    buf.values = np64(rollout.values)
    buf.log_probs = logp.numpy().reshape(T, n)
    buf.advantages = np.zeros((T, n))
    buf.pos, buf.full = T, True
    buf.compute_returns_and_advantage(rollout.last_value, done[-1])
    model.rollout_buffer = buf
    model.n_envs = n

    perms: list[torch.Tensor] = []
    ours_perm = agent._permutation

    def record(size: int) -> torch.Tensor:
        perms.append(ours_perm(size))
        return perms[-1]

    monkeypatch.setattr(agent, '_permutation', record)
    metrics = agent.update(rollout)

    def inject(size: int) -> np.ndarray:
        assert size == T * n
        return perms.pop(0).numpy()

    monkeypatch.setattr(np.random, 'permutation', inject)
    model.set_logger(sb3.common.logger.Logger(None, []))
    model.train()
    monkeypatch.undo()  # np.random.permutation and preprocess_obs are SB3's again
    assert not perms, 'SB3 ran fewer epochs than we did'
    return model, metrics, dict(model.logger.name_to_value)


PARITY_CASES = {
    # 48 samples in minibatches of 10: every epoch ends with a short one (8), as in SB3.
    'plain': dict(batch_size=10, n_epochs=4, learning_rate=3e-3, clip_range=0.1,
                  ent_coef=0.01, vf_coef=0.4, max_grad_norm=0.5, gamma=0.9, gae_lambda=0.8),
    'sde_vf_clip': dict(batch_size=16, n_epochs=3, learning_rate=1e-2, clip_range=0.2,
                        clip_range_vf=0.05, ent_coef=0.0, use_sde=True, gamma=0.95,
                        gae_lambda=0.9),
    # Stops in the third epoch, after 3 of its 6 minibatches.
    'target_kl': dict(batch_size=8, n_epochs=10, learning_rate=1e-3, target_kl=0.02,
                      normalize_advantage=False, max_grad_norm=10.0),
}


@pytest.mark.filterwarnings('ignore:.*mini-batch size:UserWarning')  # SB3's, for 'plain'
@pytest.mark.filterwarnings('ignore:batch_size 10 does not divide:UserWarning')  # ours
@pytest.mark.parametrize('case', sorted(PARITY_CASES))
def test_ppo_update_equals_sb3_ppo_train(case, monkeypatch):
    """Same weights, rollout and minibatch order, float64: one update moves every parameter
    as SB3's PPO.train() does, and reports the same logger values.

    Measured: parameters equal to 3e-16 (they move by 1e-2 to 8e-2), metrics to 9e-16.
    """
    kw = PARITY_CASES[case]
    ours = {('lr' if k == 'learning_rate' else k): v for k, v in kw.items()}
    agent = PPO(OBS, ACT, PPOConfig(n_steps=16, log_std_init=-0.5, **ours), seed=0)
    agent.actor.double()
    agent.critic.double()
    rollout = _random_rollout(16, 3)
    model, metrics, logged = _sb3_ppo_after_one_train(agent, rollout, kw, monkeypatch)
    for a, b in _sb3_pairs(agent, model.policy):
        torch.testing.assert_close(a.weight, b.weight, atol=1e-10, rtol=0)
        torch.testing.assert_close(a.bias, b.bias, atol=1e-10, rtol=0)
    torch.testing.assert_close(agent.actor.log_std, model.policy.log_std, atol=1e-10, rtol=0)
    assert agent.n_updates == model._n_updates
    for key, value in metrics.items():
        assert value == pytest.approx(float(logged[f'train/{key}']), rel=1e-9, abs=1e-12), key
    # The cases exercise what they are meant to: clipping, and the early stop.
    assert metrics['clip_fraction'] > 0
    if case == 'target_kl':
        assert 0 < agent.n_updates < kw['n_epochs']
    else:
        assert agent.n_updates == kw['n_epochs']


def _surrogate_run(seed: int = 0) -> tuple[float, float, dict]:
    """Many aggressive epochs on one fixed rollout; (gain, KL from the old policy, metrics).

    gain = mean(r A) - mean(A) over the rollout with A normalized as a whole: > 0 when the
    update made advantageous actions more likely. The clip keeps r near [0.8, 1.2], so the KL
    from the acting policy stays small; without it the policy runs far from its data.
    """
    torch.manual_seed(seed)
    cfg = PPOConfig(n_steps=64, batch_size=64, n_epochs=10, lr=3e-3, clip_range=0.2,
                    max_grad_norm=1e9, log_std_init=-0.5)
    agent = PPO(OBS, ACT, cfg, seed=seed)
    rng = np.random.default_rng(seed)
    T, n = 64, 4
    obs = rng.normal(size=(T, n, OBS)).astype(np.float32)
    acts, vals = zip(*[agent.act_with_value(obs[t])[::2] for t in range(T)], strict=True)
    f = lambda x: torch.as_tensor(np.asarray(x, np.float32))  # noqa: E731
    # Reward: how close the action is to a target that depends on the observation.
    target = np.tanh(obs[..., :ACT])
    rew = -np.square(np.asarray(acts) - target).sum(-1)
    zeros = np.zeros((T, n))
    rollout = Rollout(obs=f(obs), act=f(acts), rew=f(rew), terminated=f(np.ones((T, n))),
                      truncated=f(zeros), values=f(vals), truncated_values=f(zeros),
                      last_value=f(zeros[0]))
    with torch.no_grad():
        x, a = flatten_env_major(rollout.obs), flatten_env_major(rollout.act)
        old_logp, _ = agent.actor.log_prob_entropy(x, a)
        adv = flatten_env_major(rollout.rew - rollout.values)  # gamma-free: every step ends
        adv = (adv - adv.mean()) / adv.std()
    metrics = agent.update(rollout)
    with torch.no_grad():
        log_ratio = agent.actor.log_prob_entropy(x, a)[0] - old_logp
        ratio = log_ratio.exp()
        gain = (ratio * adv).mean() - adv.mean()
        kl = ((ratio - 1) - log_ratio).mean()
    return gain.item(), kl.item(), metrics


@pytest.mark.parametrize('seed', [0, 1])
def test_clipped_surrogate_improves_and_stays_near_the_data(seed):
    """Fails if the surrogate's sign is flipped (gain < 0) or the clip is removed (KL ~ 1+).

    Measured (seeds 0, 1, 2): as written, gain 0.27 / 0.30 / 0.28, KL 0.07 / 0.09 / 0.09;
    loss -mean(r A) (clip removed): KL 1.07 / 1.17 / 2.17; loss +min(...) (sign flipped):
    gain -42 / -7.0 / -3.1.
    """
    gain, kl, metrics = _surrogate_run(seed)
    assert gain > 0.1
    assert kl < 0.3
    assert 0 < metrics['clip_fraction'] < 1


def test_ppo_state_dict_round_trip_continues_identically():
    cfg = PPOConfig(n_steps=8, batch_size=8, n_epochs=2, lr_schedule='linear', use_sde=True,
                    sde_sample_freq=3)
    agent = PPO(OBS, ACT, cfg, seed=0)
    agent.set_progress(0.25)
    assert agent.optimizer.param_groups[0]['lr'] == pytest.approx(0.75e-4)
    rollout = _random_rollout(8, 4, dtype=torch.float32)
    agent.update(rollout)
    obs = np.random.default_rng(1).normal(size=(4, OBS)).astype(np.float32)
    agent.act_with_value(obs)
    clone = PPO(OBS, ACT, cfg, seed=5)
    clone.load_state_dict(copy.deepcopy(agent.state_dict()))
    for _ in range(4):  # crosses a gSDE resample (step 3)
        for x, y in zip(clone.act_with_value(obs), agent.act_with_value(obs), strict=True):
            np.testing.assert_array_equal(x, y)
    assert clone.update(rollout) == agent.update(rollout)
    for p, q in zip(clone.params, agent.params, strict=True):
        assert torch.equal(p, q)


def test_gsde_matrices_resample_every_sde_sample_freq_steps():
    """As SB3's collect_rollouts: at the rollout's start and every sde_sample_freq steps."""
    cfg = PPOConfig(batch_size=15, use_sde=True, sde_sample_freq=2, log_std_init=-1.0)
    agent = PPO(OBS, ACT, cfg, seed=0)
    obs = np.random.default_rng(0).normal(size=(3, OBS)).astype(np.float32)
    acts = [agent.act_with_value(obs)[0] for _ in range(5)]
    same = [np.array_equal(acts[i], acts[i + 1]) for i in range(4)]
    assert same == [True, False, True, False]  # new matrices at steps 2 and 4
    agent.update(_random_rollout(5, 3, dtype=torch.float32))
    assert agent.rollout_step == 0
    assert not np.array_equal(agent.act_with_value(obs)[0], acts[-1])
    # sde_sample_freq -1: one set of matrices for the whole rollout.
    once = PPO(OBS, ACT, PPOConfig(use_sde=True, log_std_init=-1.0), seed=0)
    first = once.act_with_value(obs)[0]
    for _ in range(6):
        np.testing.assert_array_equal(once.act_with_value(obs)[0], first)


def test_ppo_config_rejects_what_sb3_rejects():
    with pytest.raises(ValueError, match='batch_size'):
        PPOConfig(batch_size=1)
    PPOConfig(batch_size=1, normalize_advantage=False)
    with pytest.raises(ValueError, match='clip_range_vf'):
        PPOConfig(clip_range_vf=0.0)
    with pytest.raises(ValueError, match='lr_schedule'):
        PPOConfig(lr_schedule='lin')


@pytest.mark.parametrize('use_sde', [False, True])
def test_bundle_policy_serves_the_clipped_mean(use_sde):
    """The exported actor, run by the numpy serving Policy, is act(deterministic=True)."""
    from rl_control.bundle.policy import Policy

    agent = PPO(OBS, ACT, PPOConfig(hidden_sizes=(16, 16), use_sde=use_sde), seed=0)
    with torch.no_grad():
        agent.actor.mu.weight.mul_(300.0)  # ortho_init's 0.01 gain: make the clip matter
    desc, weights = agent.export_actor()
    assert desc['output'] == 'clip' and desc['layers'] == [[OBS, 16], [16, 16], [16, ACT]]
    obs = np.random.default_rng(0).normal(size=(64, OBS)).astype(np.float32)
    expected = agent.act(obs, deterministic=True)
    assert (np.abs(expected) == 1.0).any() and (np.abs(expected) < 1.0).any()
    np.testing.assert_allclose(Policy(desc, weights, None).act(obs), expected, atol=1e-5)
