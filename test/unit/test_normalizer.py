"""Running statistics: exact stream mean/var, the obs transform, SB3-style reward scaling."""
import numpy as np

from rl_control.algos.normalizer import RewardScaler, RunningMeanStd, RunningNormalizer


def test_running_mean_std_equals_numpy_over_uneven_batches():
    rng = np.random.default_rng(0)
    rms = RunningMeanStd((3,))
    chunks = [rng.normal(5.0, [1.0, 3.0, 0.1], size=(n, 3)) for n in (1, 7, 100, 2, 33, 1)]
    for c in chunks:
        rms.update(c)
    data = np.concatenate(chunks)
    np.testing.assert_allclose(rms.mean, data.mean(0), rtol=1e-12)
    np.testing.assert_allclose(rms.var, data.var(0), rtol=1e-10)
    assert rms.count == len(data)


def test_normalizer_transform_clip_and_yaml():
    norm = RunningNormalizer(2, clip=3.0)
    x = np.array([[0.0, 10.0], [2.0, 30.0], [4.0, 20.0]])
    norm.update(x)
    out = norm.normalize(np.array([[2.0, 20.0], [100.0, 20.0]]))
    assert out.dtype == np.float32
    np.testing.assert_allclose(out[0], [0.0, 0.0], atol=1e-6)
    assert out[1, 0] == 3.0  # clipped
    expected = (np.array([4.0, 30.0]) - x.mean(0)) / np.sqrt(x.var(0) + 1e-8)
    np.testing.assert_allclose(norm.normalize(np.array([4.0, 30.0])), expected, rtol=1e-6)
    y = norm.to_yaml()
    assert set(y) == {'mean', 'var', 'clip', 'epsilon'} and y['clip'] == 3.0
    assert all(isinstance(v, float) for v in y['mean'] + y['var'])
    other = RunningNormalizer(2)
    other.load_state_dict(norm.state_dict())
    np.testing.assert_array_equal(other.normalize(x), norm.normalize(x))


def test_normalize_torch_matches_numpy():
    import torch

    norm = RunningNormalizer(3)
    norm.update(np.random.default_rng(1).normal(size=(50, 3)) * 4 + 1)
    x = np.random.default_rng(2).normal(size=(8, 3)).astype(np.float32) * 10
    np.testing.assert_allclose(norm.normalize_torch(torch.from_numpy(x)).numpy(),
                               norm.normalize(x), atol=1e-5)


def test_reward_scaler_tracks_discounted_return_and_resets_on_done():
    scaler = RewardScaler(n_envs=2, gamma=0.5, clip=100.0)
    rewards = [np.array([1.0, 2.0]), np.array([1.0, 2.0]), np.array([1.0, 2.0])]
    dones = [np.array([False, False]), np.array([True, False]), np.array([False, False])]
    returns_seen, ret = [], np.zeros(2)
    for r, d in zip(rewards, dones, strict=True):
        out = scaler(r, d)
        ret = ret * 0.5 + r
        returns_seen.append(ret.copy())
        var = np.concatenate(returns_seen).var()
        np.testing.assert_allclose(out, r / np.sqrt(var + 1e-8), rtol=1e-5)
        ret[d] = 0.0
    np.testing.assert_allclose(scaler.returns, ret)
    assert scaler.returns[0] == 1.0  # restarted after the done at step 2
