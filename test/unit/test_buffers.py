"""Replay and HER buffers: storage, terminated vs truncated, ring wrap, relabelling."""
import numpy as np
import pytest

from rl_control.algos.buffers import HerReplayBuffer, ReplayBuffer


def _fill(buf: ReplayBuffer, steps: int, n_envs: int) -> None:
    for t in range(steps):
        obs = np.full((n_envs, buf.obs_dim), t, np.float32) + np.arange(n_envs)[:, None] * 1000
        buf.add(obs, np.full((n_envs, buf.act_dim), 0.5), np.full(n_envs, t), obs + 0.5,
                np.array([t % 7 == 0] * n_envs), np.array([t % 5 == 0] * n_envs))


def test_replay_shapes_and_contents():
    buf = ReplayBuffer(3, 2, capacity=100, seed=0)
    _fill(buf, 10, n_envs=4)
    assert len(buf) == 40
    b = buf.sample(32)
    assert b.obs.shape == (32, 3) and b.next_obs.shape == (32, 3)
    assert b.act.shape == (32, 2) and b.rew.shape == (32,) and b.terminated.shape == (32,)
    # Each sampled row is one consistent transition.
    np.testing.assert_allclose(b.next_obs.numpy(), b.obs.numpy() + 0.5)
    t = b.obs.numpy()[:, 0] % 1000
    np.testing.assert_allclose(b.rew.numpy(), t)


def test_terminated_and_truncated_are_stored_apart():
    buf = ReplayBuffer(3, 2, capacity=100, seed=0)
    _fill(buf, 20, n_envs=2)
    t = np.arange(20).repeat(2)
    np.testing.assert_array_equal(buf.terminated[:40], t % 7 == 0)
    np.testing.assert_array_equal(buf.truncated[:40], t % 5 == 0)
    b = buf.sample(500)
    # The batch's flag is the true terminal only: truncated-only steps (t=5, 10, 15) are 0.
    steps = b.obs.numpy()[:, 0] % 1000
    np.testing.assert_array_equal(b.terminated.numpy(), (steps % 7 == 0).astype(np.float32))
    assert (b.terminated.numpy()[steps == 5] == 0).all() and (steps == 5).any()


def test_ring_buffer_wrap_keeps_newest():
    buf = ReplayBuffer(1, 1, capacity=10, seed=0)
    _fill(buf, 7, n_envs=3)  # 21 transitions into 10 slots
    assert len(buf) == 10 and buf.pos == 1
    stored = sorted(buf.obs[:, 0] % 1000 + (buf.obs[:, 0] // 1000) * 0.1)
    newest = sorted([t + e * 0.1 for t in range(7) for e in range(3)])[-10:]
    np.testing.assert_allclose(stored, newest)


def test_replay_state_dict_round_trip():
    buf = ReplayBuffer(3, 2, capacity=50, seed=1)
    _fill(buf, 30, n_envs=2)
    other = ReplayBuffer(3, 2, capacity=50, seed=99)
    other.load_state_dict(buf.state_dict())
    a, b = buf.sample(16), other.sample(16)
    np.testing.assert_array_equal(a.obs.numpy(), b.obs.numpy())
    assert other.pos == buf.pos and len(other) == len(buf)


# -- HER ------------------------------------------------------------------------------------
GOAL_DIM = 2


def _compute_reward(achieved, desired, info):
    assert len(info) == len(achieved)
    return -(np.linalg.norm(achieved - desired, axis=-1) > 0.05).astype(np.float32)


def _her_fill(buf: HerReplayBuffer, steps: int, ep_lens: list[int]) -> None:
    """Each env e runs episodes of length ep_lens[e]. achieved goal encodes (env, episode, t).

    achieved_goal after step t of episode k in env e = [e * 1000 + k, t + 1].
    """
    n = buf.n_envs
    t_in_ep, ep = np.zeros(n, int), np.zeros(n, int)
    for _ in range(steps):
        env_ids = np.arange(n)
        ag = np.stack([env_ids * 1000 + ep, t_in_ep], 1).astype(np.float32)
        next_ag = np.stack([env_ids * 1000 + ep, t_in_ep + 1], 1).astype(np.float32)
        desired = np.full((n, GOAL_DIM), -7.0, np.float32)
        obs = {'observation': ag.copy(), 'achieved_goal': ag, 'desired_goal': desired}
        nxt = {'observation': next_ag.copy(), 'achieved_goal': next_ag, 'desired_goal': desired}
        done = t_in_ep + 1 == np.array(ep_lens)
        buf.add(obs, np.zeros((n, buf.act_dim)), np.full(n, -1.0), nxt, np.zeros(n), done)
        t_in_ep = np.where(done, 0, t_in_ep + 1)
        ep = np.where(done, ep + 1, ep)


def _episode_of(state: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(env, episode index, step in episode) of sampled states written by `_her_fill`."""
    return (state[:, 0] // 1000).astype(int), (state[:, 0] % 1000).astype(int), state[:, 1]


@pytest.mark.parametrize('capacity', [10_000, 36])  # 36 // 3 envs = 12 rows: wraps
def test_her_future_relabels_within_the_same_finished_episode(capacity):
    buf = HerReplayBuffer(GOAL_DIM, GOAL_DIM, 1, capacity, _compute_reward, n_envs=3, k=4,
                          strategy='future', seed=0)
    _her_fill(buf, 47, ep_lens=[5, 7, 50])  # env 2's first episode is still in progress
    b = buf.sample(2000)
    obs = b.obs.numpy()
    state, goal = obs[:, :GOAL_DIM], obs[:, GOAL_DIM:]
    env, ep, t = _episode_of(state)
    # Only finished episodes: env 0's first 9 (ends at 45), env 1's first 6 (ends at 42).
    assert set(env) == {0, 1}
    assert (ep[env == 0] < 9).all() and (ep[env == 1] < 6).all()
    if capacity == 36:  # 12 rows: the oldest stored step is 35; whole episodes only
        assert set(ep[env == 0]) == {7, 8} and set(ep[env == 1]) == {5}
    relabelled = goal[:, 0] != -7.0
    assert relabelled[:int(0.8 * 2000)].all() and not relabelled[int(0.8 * 2000):].any()
    g, s = goal[relabelled], state[relabelled]
    # Same env and episode, and achieved at or after the sampled step (t + 1 > t).
    np.testing.assert_array_equal(g[:, 0], s[:, 0])
    assert (g[:, 1] >= s[:, 1] + 1).all()
    # Never beyond the episode end, and every future step of it is reachable.
    ep_len = np.array([5, 7, 50])[(s[:, 0] // 1000).astype(int)]
    assert (g[:, 1] <= ep_len).all() and (g[:, 1] == ep_len).any()
    # Rewards are recomputed from (next achieved goal, new goal).
    next_ag = np.stack([s[:, 0], s[:, 1] + 1], 1)
    np.testing.assert_array_equal(b.rew.numpy()[relabelled],
                                  _compute_reward(next_ag, g, [{}] * len(g)))
    # Some relabels hit the very next achieved goal (reward 0), most do not.
    assert 0 < (b.rew.numpy()[relabelled] == 0).mean() < 1
    np.testing.assert_array_equal(b.rew.numpy()[~relabelled], -1.0)
    # next_obs carries the same goal.
    np.testing.assert_array_equal(b.next_obs.numpy()[:, GOAL_DIM:], goal)


def test_her_never_samples_an_unfinished_episode():
    """As SB3: the open episode, and an episode whose start the ring overwrote, are skipped."""
    for total in range(1, 60):  # 5-step episodes into a 12-row ring
        buf = HerReplayBuffer(GOAL_DIM, GOAL_DIM, 1, 12, _compute_reward, n_envs=1, k=4,
                              seed=total)
        _her_fill(buf, total, ep_lens=[5])
        oldest = max(0, total - 12)  # absolute step of the oldest stored row
        whole = [k for k in range(total // 5) if 5 * k >= oldest]  # finished, stored whole
        if not whole:  # before the first episode ends (or a ring smaller than an episode)
            with pytest.raises(ValueError, match='no finished episode'):
                buf.sample(8)
            continue
        _, ep, _ = _episode_of(buf.sample(400).obs.numpy()[:, :GOAL_DIM])
        assert set(ep) == set(whole), total


def test_her_final_and_episode_strategies():
    for strategy in ('final', 'episode'):
        buf = HerReplayBuffer(GOAL_DIM, GOAL_DIM, 1, 10_000, _compute_reward, n_envs=2, k=4,
                              strategy=strategy, seed=0)
        _her_fill(buf, 20, ep_lens=[5, 6])
        obs = buf.sample(1000).obs.numpy()
        s, g = obs[:, :GOAL_DIM], obs[:, GOAL_DIM:]
        rel = g[:, 0] != -7.0
        np.testing.assert_array_equal(g[rel, 0], s[rel, 0])
        ep_len = np.array([5, 6])[(s[rel, 0] // 1000).astype(int)]
        if strategy == 'final':  # the episode's last achieved goal, always
            np.testing.assert_array_equal(g[rel, 1], ep_len)
        else:
            assert (g[rel, 1] < s[rel, 1] + 1).any()  # earlier goals are allowed
            assert (g[rel, 1] >= 1).all() and (g[rel, 1] <= ep_len).all()


def test_her_state_dict_round_trip():
    buf = HerReplayBuffer(GOAL_DIM, GOAL_DIM, 1, 100, _compute_reward, n_envs=2, seed=3)
    _her_fill(buf, 30, ep_lens=[5, 6])
    other = HerReplayBuffer(GOAL_DIM, GOAL_DIM, 1, 100, _compute_reward, n_envs=2, seed=7)
    other.load_state_dict(buf.state_dict())
    a, b = buf.sample(64), other.sample(64)
    np.testing.assert_array_equal(a.obs.numpy(), b.obs.numpy())
    np.testing.assert_array_equal(a.rew.numpy(), b.rew.numpy())


def test_her_end_episodes_closes_an_open_episode_at_a_reset():
    """A run stopped mid-episode and resumed: the open episode must not borrow later goals."""
    buf = HerReplayBuffer(GOAL_DIM, GOAL_DIM, 1, 1000, _compute_reward, n_envs=1, k=4,
                          strategy='future', seed=0)

    def step(ep: int, t: int, done: bool) -> None:
        ag = np.array([[ep, t]], np.float32)
        nxt = np.array([[ep, t + 1]], np.float32)
        desired = np.full((1, GOAL_DIM), -7.0, np.float32)
        buf.add({'observation': ag, 'achieved_goal': ag, 'desired_goal': desired},
                np.zeros((1, 1)), np.full(1, -1.0),
                {'observation': nxt, 'achieved_goal': nxt, 'desired_goal': desired},
                np.zeros(1), np.array([done]))

    for t in range(3):
        step(1, t, False)  # episode 1 left open by a stop
    buf.end_episodes()  # what the loop does when it resets the envs on resume
    for t in range(3):
        step(2, t, t == 2)
    obs = buf.sample(4000).obs.numpy()
    state, goal = obs[:, :GOAL_DIM], obs[:, GOAL_DIM:]
    relabelled = goal[:, 0] != -7.0
    np.testing.assert_array_equal(goal[relabelled, 0], state[relabelled, 0])
    assert buf.end_episodes() is None and buf.current_start[0] == buf.total  # idempotent
