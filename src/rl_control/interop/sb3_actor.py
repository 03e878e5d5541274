"""SB3's deterministic actor as linear layers: what `import-sb3` can express, and why not.

SAC: latent_pi then mu, squashed by tanh (stable_baselines3/sac/policies.py Actor); TD3/DDPG:
the actor's mu, which ends in Tanh (td3/policies.py); PPO: mlp_extractor.policy_net then
action_net (common/policies.py ActorCriticPolicy), clipped or squashed. Only parameter-free
flattening extractors, Linear layers and one hidden activation (ReLU or Tanh) have a bundle
form; anything else is refused naming the module where it sits. `_self_check` then compares the
converted bundle policy with SB3's own predict.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from rl_control.bundle.policy import Policy
from rl_control.interop.sb3_files import Sb3ImportError

__all__ = ['_actor_layers', '_self_check']


def _actor_layers(model: Any, algo: str, where: str) -> tuple[list[tuple[np.ndarray,
                                                                          np.ndarray]],
                                                              str, str]:
    """SB3's deterministic actor as (linear layers (W, b), hidden activation, output)."""
    from torch import nn

    policy = model.policy
    if algo == 'SAC':
        actor = policy.actor
        _check_extractor(actor.features_extractor, f'{where}: actor.features_extractor')
        if not isinstance(actor.mu, nn.Linear):
            raise Sb3ImportError(f'{where}: actor.mu is {_describe(actor.mu)}: gSDE with '
                                 'clip_mean (tanh of a clipped mean) has no bundle form; '
                                 'train with use_sde=False or clip_mean=0')
        chain = [*_flat(actor.latent_pi, 'actor.latent_pi'), ('actor.mu', actor.mu)]
        output = 'tanh'
    elif algo in ('TD3', 'DDPG'):
        actor = policy.actor
        _check_extractor(actor.features_extractor, f'{where}: actor.features_extractor')
        chain = _flat(actor.mu, 'actor.mu')
        if not chain or not isinstance(chain[-1][1], nn.Tanh):
            raise Sb3ImportError(f'{where}: actor.mu does not end in Tanh ({_describe(actor.mu)})')
        chain, output = chain[:-1], 'tanh'
    else:  # PPO
        extractor = getattr(policy, 'pi_features_extractor', policy.features_extractor)
        _check_extractor(extractor, f'{where}: policy.pi_features_extractor')
        dist = type(policy.action_dist).__name__
        if dist not in ('DiagGaussianDistribution', 'StateDependentNoiseDistribution'):
            raise Sb3ImportError(f'{where}: action distribution {dist} is not supported '
                                 '(continuous Box actions only)')
        chain = [*_flat(policy.mlp_extractor.policy_net, 'mlp_extractor.policy_net'),
                 ('action_net', policy.action_net)]
        output = 'tanh' if policy.squash_output else 'clip'
    return (*_linears(chain, where), output)


def _flat(module: Any, name: str) -> list[tuple[str, Any]]:
    from torch import nn

    if isinstance(module, nn.Sequential):
        return [pair for i, m in enumerate(module) for pair in _flat(m, f'{name}[{i}]')]
    return [(name, module)]


def _describe(module: Any) -> str:
    return type(module).__name__ if not list(module.children()) else \
        f'{type(module).__name__}({", ".join(type(m).__name__ for m in module.children())})'


def _linears(chain: list[tuple[str, Any]], where: str
             ) -> tuple[list[tuple[np.ndarray, np.ndarray]], str]:
    """Linear (act Linear)*: the layers and the one hidden activation, or a named refusal."""
    from torch import nn

    acts = {nn.ReLU: 'relu', nn.Tanh: 'tanh'}
    chain = [(n, m) for n, m in chain if not isinstance(m, nn.Identity)]
    layers, found = [], set()
    for k, (name, module) in enumerate(chain):
        want_linear = k % 2 == 0
        if want_linear and isinstance(module, nn.Linear):
            w = module.weight.detach().cpu().numpy().astype(np.float32)
            b = (module.bias.detach().cpu().numpy() if module.bias is not None
                 else np.zeros(w.shape[0])).astype(np.float32)
            layers.append((w, b))
        elif not want_linear and type(module) in acts:
            found.add(acts[type(module)])
        else:
            kind = 'a Linear layer' if want_linear else 'ReLU or Tanh'
            raise Sb3ImportError(f'{where}: {name} is {_describe(module)} where the bundle '
                                 f'format needs {kind} (an MLP of Linear + ReLU|Tanh)')
    if not layers or len(chain) % 2 == 0:
        raise Sb3ImportError(f'{where}: the actor is not an MLP ending in a Linear layer')
    if len(found) > 1:
        raise Sb3ImportError(f'{where}: mixed hidden activations {sorted(found)}; a bundle '
                             'has one')
    return layers, found.pop() if found else 'relu'


def _check_extractor(extractor: Any, where: str) -> None:
    """Only parameter-free flattening: FlattenExtractor, or CombinedExtractor of nn.Flatten."""
    from stable_baselines3.common.torch_layers import CombinedExtractor, FlattenExtractor
    from torch import nn

    if type(extractor) is FlattenExtractor:
        return
    if type(extractor) is CombinedExtractor:
        bad = [f'{k}: {type(m).__name__}' for k, m in extractor.extractors.items()
               if not isinstance(m, nn.Flatten)]
        if not bad:
            return
        raise Sb3ImportError(f'{where}: CombinedExtractor with {", ".join(bad)} (image '
                             'inputs): only MLP policies on vector observations are supported')
    raise Sb3ImportError(f'{where}: {type(extractor).__name__} is not supported (only '
                         'FlattenExtractor / CombinedExtractor of vector inputs)')


# -- the check ------------------------------------------------------------------------------------
def _self_check(model: Any, vecnorm: Any, env: Any, policy: Policy, low: np.ndarray,
                high: np.ndarray, n: int, seed: int) -> tuple[float, int]:
    """The largest |bundle - SB3 predict| in [-1, 1] units on `n` rollout observations.

    Random actions from seeded resets; observations the env really produces: a goal env's
    achieved_goal equals ee_pos in them, which the folded first layer relies on.
    """
    import gymnasium as gym

    from rl_control.envs.factory import policy_input

    raw, k = [], 0
    rng = np.random.default_rng(seed)
    obs, _ = env.reset(seed=seed)
    while len(raw) < n:
        raw.append(obs)
        obs, _, term, trunc, _ = env.step(rng.uniform(-1.0, 1.0, env.action_space.shape))
        if term or trunc:
            k += 1
            obs, _ = env.reset(seed=seed + k)
    space, env_space = model.observation_space, env.observation_space
    if isinstance(env_space, gym.spaces.Dict):
        batch = {key: np.stack([o[key] for o in raw]) for key in env_space.spaces}
        sb3_obs: Any = batch
        if not isinstance(space, gym.spaces.Dict):  # FlattenObservation: the Dict's order
            sb3_obs = np.stack([gym.spaces.utils.flatten(env_space, o) for o in raw])
        contract_obs = policy_input(batch)
    else:
        sb3_obs = contract_obs = np.stack(raw).astype(np.float32)
    if vecnorm is not None:
        sb3_obs = vecnorm.normalize_obs(sb3_obs)
    expected, _ = model.predict(sb3_obs, deterministic=True)  # SB3's own BasePolicy.predict
    half = (high - low) / 2.0
    ours = low + (policy.act(contract_obs).astype(np.float64) + 1.0) * half
    err = np.abs(ours - np.asarray(expected, np.float64).reshape(ours.shape)) / half
    return float(err.max()), len(raw)
