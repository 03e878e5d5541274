"""Algorithm registry: name -> (agent class, hyperparameter dataclass, on/off-policy).

The modules are imported lazily so that validating a config or loading a bundle does not pay
for importing torch-heavy algorithm code it does not use, and so that this file imports even
while an algorithm module is missing (the error then names the algorithm, not an ImportError).
"""
from __future__ import annotations

from dataclasses import dataclass
import importlib
from typing import Any

# name -> (module, agent class name, config class name, on_policy)
_ALGORITHMS: dict[str, tuple[str, str, str, bool]] = {
    'sac': ('rl_control.algos.sac', 'SAC', 'SACConfig', False),
    'td3': ('rl_control.algos.td3', 'TD3', 'TD3Config', False),
    'ddpg': ('rl_control.algos.td3', 'TD3', 'DDPGConfig', False),
    'a2c': ('rl_control.algos.a2c', 'A2C', 'A2CConfig', True),
    'ppo': ('rl_control.algos.ppo', 'PPO', 'PPOConfig', True),
}

ALGORITHM_NAMES: tuple[str, ...] = tuple(_ALGORITHMS)


@dataclass(frozen=True)
class AlgoSpec:
    """What the loop needs to build an agent for one algorithm name."""

    name: str
    agent_cls: type
    config_cls: type
    on_policy: bool

    def make_config(self, kwargs: dict[str, Any]) -> Any:
        """Build the hyperparameter dataclass (DDPG: `td3.DDPGConfig`, TD3's with its defaults)."""
        return self.config_cls(**kwargs)


def get_algorithm(name: str) -> AlgoSpec:
    """Resolve an algorithm name; KeyError for an unknown name (config.py words the error)."""
    if name not in _ALGORITHMS:
        raise KeyError(name)
    module_name, agent_name, cfg_name, on_policy = _ALGORITHMS[name]
    module = importlib.import_module(module_name)
    agent_cls = getattr(module, agent_name)
    return AlgoSpec(name, agent_cls, getattr(module, cfg_name), on_policy)

