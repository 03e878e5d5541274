"""SAC's hand-written gradients (algos/sac_grads.py) against autograd on the same losses.

The reference below is the autograd form of `SAC.update` (SB3's order: alpha, critics, actor
against the updated critic, Polyak). In float64, with the same weights, batch and noise, every
parameter, log_alpha and the target must agree after several updates (Adam moments and a moved
alpha included), for relu and tanh, one to three critics, three hidden layers, a fixed alpha,
and a log-std clamp that is active for part of the batch.
"""
import copy

import pytest
import torch

from rl_control.algos.networks import min_heads
from rl_control.algos.polyak import polyak_update
from rl_control.algos.sac import SAC, SACConfig
from rl_control.algos.types import Batch

OBS, ACT, B = 5, 3, 32


def reference_update(agent: SAC, batch: Batch, noise: list[torch.Tensor],
                     demos: tuple | None = None) -> None:
    """`SAC.update` with autograd (the formulation the hand-written gradients replace)."""
    cfg = agent.cfg
    pi, logp = agent.actor(batch.obs, noise=noise[0])
    alpha = agent.log_alpha.detach().exp()
    if agent.ent_coef_optimizer is not None:
        alpha_loss = -(agent.log_alpha * (logp.detach() + agent.target_entropy)).mean()
        agent.ent_coef_optimizer.zero_grad()
        alpha_loss.backward()
        agent.ent_coef_optimizer.step()
    with torch.no_grad():
        next_a, next_logp = agent.actor(batch.next_obs, noise=noise[1])
        next_q = min_heads(agent.critic_target(batch.next_obs, next_a)) - alpha * next_logp
        y = batch.rew + cfg.gamma * (1.0 - batch.terminated) * next_q
    q = agent.critic(batch.obs, batch.act)
    critic_loss = 0.5 * (q - y).square().mean(1).sum()
    agent.critic_optimizer.zero_grad()
    critic_loss.backward()
    agent.critic_optimizer.step()
    actor_loss = (alpha * logp - agent.critic.frozen(batch.obs, pi).min(0).values).mean()
    if demos is not None:  # Nair et al. 2018's behaviour cloning with the Q-filter
        obs_d, act_d, weight, q_filter = demos
        a_d = torch.tanh(agent.actor.net(obs_d)[:, :ACT])
        with torch.no_grad():
            kept = (agent.critic(obs_d, act_d).min(0).values
                    > agent.critic(obs_d, a_d).min(0).values).to(a_d.dtype)
            if not q_filter:
                kept = torch.ones_like(kept)
        actor_loss = actor_loss + weight * (kept[:, None] * (a_d - act_d) ** 2).sum(1).mean()
    agent.actor_optimizer.zero_grad()
    actor_loss.backward()
    agent.actor_optimizer.step()
    agent.n_updates += 1
    polyak_update(agent._target, agent._online, cfg.tau)


def _batch(g: torch.Generator) -> Batch:
    return Batch(obs=3 * torch.randn(B, OBS, generator=g),
                 act=torch.rand(B, ACT, generator=g) * 2 - 1,
                 rew=torch.randn(B, generator=g),
                 next_obs=3 * torch.randn(B, OBS, generator=g),
                 terminated=(torch.rand(B, generator=g) < 0.3).double())


@pytest.fixture
def float64():
    old = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    yield
    torch.set_default_dtype(old)


@pytest.mark.parametrize('activation, n_critics, ent_coef, bound', [
    ('relu', 2, 'auto', 0.6), ('tanh', 2, 'auto', 0.2), ('relu', 1, 'auto', 0.6),
    ('relu', 3, 'auto_0.3', 0.6), ('relu', 2, 0.2, 0.6)])
def test_hand_written_update_equals_autograd(float64, activation, n_critics, ent_coef, bound):
    # Narrow log-std bounds: part of the batch is clamped, so the clamp's zero gradient counts.
    cfg = SACConfig(hidden_sizes=(16, 12, 8), activation=activation, n_critics=n_critics,
                    ent_coef=ent_coef, lr=3e-3, gamma=0.9, tau=0.1, log_std_min=-bound,
                    log_std_max=bound)
    ours = SAC(OBS, ACT, cfg, seed=1)
    ref = copy.deepcopy(ours)
    g = torch.Generator().manual_seed(0)
    clamped = []
    for _ in range(4):
        batch = _batch(g)
        noise = [torch.randn(B, ACT, generator=g) for _ in range(2)]
        with torch.no_grad():
            raw = ours.actor.net(batch.obs)[:, ACT:]
            clamped.append((raw.abs() > bound).double().mean().item())
        drawn = list(noise)
        ours.reparam_noise = lambda obs, q=drawn: q.pop(0)
        metrics = ours.update(batch)
        assert not drawn  # obs noise first, then next_obs noise, as the reference uses them
        reference_update(ref, batch, noise)
        for name, a, b in [('actor', ours.actor, ref.actor), ('critic', ours.critic, ref.critic),
                           ('target', ours.critic_target, ref.critic_target)]:
            for (key, x), y in zip(a.state_dict().items(), b.state_dict().values(), strict=True):
                torch.testing.assert_close(x, y, rtol=0, atol=1e-12, msg=f'{name}.{key}')
        torch.testing.assert_close(ours.log_alpha, ref.log_alpha, rtol=0, atol=1e-12)
        assert set(dict(metrics)) == {'critic_loss', 'actor_loss', 'alpha_loss', 'alpha',
                                      'q_mean', 'entropy'}
    assert 0.05 < sum(clamped) / len(clamped) < 0.95  # the clamp was active for some, not all
    if ent_coef != 0.2:
        assert ours.log_alpha.exp().item() != pytest.approx(ours.cfg.init_alpha)  # alpha moved


def test_metrics_are_the_losses_of_the_update(float64):
    agent = SAC(OBS, ACT, SACConfig(hidden_sizes=(16, 16)), seed=2)
    ref = copy.deepcopy(agent)
    g = torch.Generator().manual_seed(1)
    batch = _batch(g)
    noise = [torch.randn(B, ACT, generator=g) for _ in range(2)]
    with torch.no_grad():
        pi, logp = ref.actor(batch.obs, noise=noise[0])
        next_a, next_logp = ref.actor(batch.next_obs, noise=noise[1])
        y = batch.rew + 0.99 * (1 - batch.terminated) * (
            min_heads(ref.critic_target(batch.next_obs, next_a)) - next_logp)
        q = ref.critic(batch.obs, batch.act)
    drawn = list(noise)
    agent.reparam_noise = lambda obs: drawn.pop(0)
    m = agent.update(batch)
    assert m['critic_loss'] == pytest.approx(float(0.5 * (q - y).square().mean(1).sum()))
    assert m['alpha_loss'] == pytest.approx(float(-(0.0 * (logp - ACT)).mean()), abs=1e-12)
    assert m['alpha'] == 1.0
    assert m['entropy'] == pytest.approx(float(-logp.mean()))
    assert m['q_mean'] == pytest.approx(float(q.mean()))
    q_pi = agent.critic(batch.obs, pi).min(0).values  # the critic after its update
    assert m['actor_loss'] == pytest.approx(float((logp - q_pi).mean()))


def test_hand_written_update_on_her_batches_with_stored_info_equals_autograd(float64):
    # A relabelled HER batch whose rewards read each transition's own stored info (`info_keys`,
    # as FrankaReach-v2's rest signal) trains exactly as the autograd update does.
    import numpy as np

    from rl_control.algos.buffers import HerReplayBuffer

    def compute_reward(achieved, desired, info):
        return -np.linalg.norm(achieved - desired, axis=-1) - info['speed']

    goal = 2  # the achieved goal is the observation's first two entries
    buf = HerReplayBuffer(OBS - goal, goal, ACT, 200, compute_reward, n_envs=2, k=4, seed=0,
                          info_keys=('speed',))
    rng = np.random.default_rng(0)
    speeds = []
    for t in range(20):
        obs, nxt = (rng.normal(size=(2, OBS - goal)).astype(np.float32) for _ in range(2))
        desired = rng.normal(size=(2, goal))
        speeds.append(rng.uniform(0.1, 1, 2).astype(np.float32))
        buf.add({'observation': obs, 'achieved_goal': obs[:, :goal], 'desired_goal': desired},
                rng.uniform(-1, 1, (2, ACT)), rng.normal(size=2),
                {'observation': nxt, 'achieved_goal': nxt[:, :goal], 'desired_goal': desired},
                np.zeros(2), np.full(2, t % 5 == 4), {'speed': speeds[-1]})
    ours = SAC(OBS, ACT, SACConfig(hidden_sizes=(16, 16), lr=3e-3, tau=0.1), seed=3)
    ref = copy.deepcopy(ours)
    g = torch.Generator().manual_seed(2)
    n_her = int(0.8 * B)
    for _ in range(3):
        batch = Batch(*(x.double() for x in vars(buf.sample(B)).values()))
        nxt = batch.next_obs[:n_her].numpy()
        dist = np.linalg.norm(nxt[:, :goal] - nxt[:, -goal:], axis=-1)
        speed = -(batch.rew[:n_her].numpy() + dist)  # each relabelled reward's own info
        gap = np.abs(speed[:, None] - np.concatenate(speeds)[None]).min(1)
        assert (gap < 1e-5).all()
        noise = [torch.randn(B, ACT, generator=g) for _ in range(2)]
        drawn = list(noise)
        ours.reparam_noise = lambda obs, q=drawn: q.pop(0)
        ours.update(batch)
        reference_update(ref, batch, noise)
    for a, b in [(ours.actor, ref.actor), (ours.critic, ref.critic),
                 (ours.critic_target, ref.critic_target)]:
        for x, y in zip(a.state_dict().values(), b.state_dict().values(), strict=True):
            torch.testing.assert_close(x, y, rtol=0, atol=1e-12)


@pytest.mark.parametrize('q_filter', [True, False])
def test_the_behaviour_cloning_term_equals_autograd(float64, q_filter):
    """Nair et al.'s BC loss on demonstration steps (train/demos.py), added to the actor's:
    every parameter agrees with autograd after several updates; the Q-filter kept some
    demonstration steps and dropped others (without it, all are kept); the metrics say so."""
    ours = SAC(OBS, ACT, SACConfig(hidden_sizes=(16, 16), lr=3e-3, tau=0.1), seed=4)
    ref = copy.deepcopy(ours)
    g = torch.Generator().manual_seed(3)
    kept = []
    for _ in range(4):
        batch = _batch(g)
        demos = (torch.randn(20, OBS, generator=g), torch.rand(20, ACT, generator=g) * 2 - 1,
                 2.5, q_filter)
        noise = [torch.randn(B, ACT, generator=g) for _ in range(2)]
        drawn = list(noise)
        ours.reparam_noise = lambda obs, q=drawn: q.pop(0)
        metrics = ours.update(batch, demos=demos)
        reference_update(ref, batch, noise, demos)
        for a, b in [(ours.actor, ref.actor), (ours.critic, ref.critic)]:
            for x, y in zip(a.state_dict().values(), b.state_dict().values(), strict=True):
                torch.testing.assert_close(x, y, rtol=0, atol=1e-12)
        kept.append(metrics['bc_kept'])
        assert metrics['bc_loss'] > 0
    if q_filter:
        assert 0.0 < min(kept) and max(kept) < 1.0
    else:
        assert min(kept) == 1.0
