"""The search space of `rl-control sweep`.

SPACE.yaml is parsed and checked against the base config before Ray starts (the format and
the errors: sweep.py), and sampled values are applied to the config as `--set` would.
"""

from __future__ import annotations

import copy
import dataclasses
from dataclasses import dataclass
import difflib
import json
import math
from pathlib import Path
import types
import typing
from typing import Any, Union

import yaml

from rl_control.algos.registry import get_algorithm
from rl_control.train.config import (
    _NOT_YAML,
    ConfigError,
    EvalConfig,
    HerConfig,
    TrainConfig,
    apply_override,
)

SPACE_TYPES = ('loguniform', 'uniform', 'int', 'choice')
_SPEC_FIELDS = {'loguniform': ('low', 'high'), 'uniform': ('low', 'high'),
                'int': ('low', 'high', 'log'), 'choice': ('values',)}
_SECTIONS = {'eval': EvalConfig, 'her': HerConfig}


@dataclass(frozen=True)
class Param:
    """One searched key of the space.

    Choices are searched by index (Optuna's categoricals must be scalars; values such as
    [64, 64] are not) and decoded back to the value in the trial.
    """

    key: str
    type: str
    low: float | None = None
    high: float | None = None
    values: tuple[Any, ...] = ()
    log: bool = False

    def domain(self) -> Any:
        """The Ray Tune search domain."""
        from ray import tune

        if self.type == 'loguniform':
            return tune.loguniform(self.low, self.high)
        if self.type == 'uniform':
            return tune.uniform(self.low, self.high)
        if self.type == 'int':  # tune's randint excludes its upper bound; ours includes it
            sampler = tune.lograndint if self.log else tune.randint
            return sampler(int(self.low), int(self.high) + 1)
        return tune.choice(list(range(len(self.values))))

    def decode(self, sampled: Any) -> Any:
        """The config value for a sampled point (plain Python types, YAML-dumpable)."""
        if self.type == 'choice':
            return copy.deepcopy(self.values[int(sampled)])
        if self.type == 'int':
            return int(sampled)
        return float(sampled)

    def encode(self, value: Any) -> Any | None:
        """The point that decodes to `value`, or None where `value` lies outside the space."""
        if self.type == 'choice':
            plain = _plain(value)
            for i, v in enumerate(self.values):
                if _plain(v) == plain:
                    return i
            return None
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return None
        if not self.low <= value <= self.high:
            return None
        if self.type == 'int':
            return int(value) if float(value).is_integer() else None
        return float(value)


def _plain(value: Any) -> Any:
    """Tuples as lists, recursively (a config's (64, 64) is the YAML [64, 64])."""
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def load_space(path: str | Path, base: TrainConfig) -> list[Param]:
    """Read and validate a SPACE file against the base config; see the module docstring."""
    source = str(path)
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f'{source}: no such space file')
    try:
        raw = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise ConfigError(f'{source}: not valid YAML: {exc}') from None
    if not isinstance(raw, dict) or not raw:
        raise ConfigError(f'{source}: the top level must be a mapping of dotted config keys to '
                          "{type: ..., ...}, e.g. 'algo_kwargs.lr: {type: loguniform, low: "
                          "1.0e-4, high: 1.0e-2}'")
    return [_param(source, str(key), spec, base) for key, spec in raw.items()]


def _param(source: str, key: str, spec: Any, base: TrainConfig) -> Param:
    where = f'{source}: {key}'
    hint = _key_hint(where, key, base)
    if not isinstance(spec, dict):
        raise ConfigError(f'{where}: expected a mapping such as {{type: uniform, low: 0.0, '
                          f'high: 1.0}}, got {spec!r}')
    kind = spec.get('type')
    if kind not in SPACE_TYPES:
        raise ConfigError(f'{where}: type: {kind!r} is not one of {list(SPACE_TYPES)}'
                          + _suggest(str(kind), list(SPACE_TYPES)))
    allowed = _SPEC_FIELDS[kind]
    for name in spec:
        if name != 'type' and name not in allowed:
            raise ConfigError(f'{where}: {name}: not a field of a {kind} distribution '
                              f'(fields: {", ".join(allowed)})' + _suggest(str(name), allowed))
    if kind == 'choice':
        values = spec.get('values')
        if not isinstance(values, list) or not values:
            raise ConfigError(f'{where}: values: expected a non-empty list, got {values!r}')
        return Param(key, kind, values=tuple(values))
    for name in ('low', 'high'):
        if name not in spec:
            raise ConfigError(f'{where}: {name}: required for a {kind} distribution')
        value = spec[name]
        if isinstance(value, str):  # YAML 1.1 reads 1e-3 (no dot) as a string
            try:
                value = float(value)
            except ValueError:
                pass
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        if kind == 'int':
            ok = ok and float(value).is_integer()
        if not ok or not math.isfinite(value):
            expected = 'an integer' if kind == 'int' else 'a number'
            raise ConfigError(f'{where}: {name}: expected {expected}, got {spec[name]!r}')
        spec = {**spec, name: value}
    low, high = spec['low'], spec['high']
    log = spec.get('log', False)
    if not isinstance(log, bool):
        raise ConfigError(f'{where}: log: expected true or false, got {log!r}')
    if (low >= high) if kind != 'int' else (low > high):
        raise ConfigError(f'{where}: low ({low}) must be below high ({high})')
    if (kind == 'loguniform' or log) and low <= 0:
        raise ConfigError(f'{where}: low: a log scale needs low > 0, got {low}')
    _check_numeric(where, key, kind, hint)
    return Param(key, kind, low=low, high=high, log=log)


def _key_hint(where: str, key: str, base: TrainConfig) -> Any:
    """The type hint of a dotted config key, or a ConfigError naming what is wrong with it."""
    parts = key.split('.')
    if any(not p for p in parts):
        raise ConfigError(f'{where}: not a dotted config key')
    top_hints = typing.get_type_hints(TrainConfig)
    fields = [f.name for f in dataclasses.fields(TrainConfig) if f.name not in _NOT_YAML]
    top = parts[0]
    if top not in fields:
        raise ConfigError(f'{where}: unknown config key {top!r}' + _suggest(top, fields))
    if top == 'seed':
        raise ConfigError(f'{where}: the seeds are not searched: a trial trains seeds '
                          f'{base.seed} .. {base.seed} + K - 1 (--seeds-per-trial K)')
    if top == 'env_kwargs':
        if len(parts) < 2:
            raise ConfigError(f'{where}: name one env keyword, e.g. env_kwargs.robot')
        return Any  # the env decides; a bad value is that trial's error
    if top == 'algo_kwargs':
        cls = get_algorithm(base.algo).config_cls
    elif top in _SECTIONS:
        cls = _SECTIONS[top]
    else:
        if len(parts) > 1:
            raise ConfigError(f'{where}: {top} is a single value, not a section')
        return top_hints[top]
    if len(parts) != 2:
        raise ConfigError(f'{where}: name one key of the {top} section, e.g. {top}.'
                          f'{dataclasses.fields(cls)[0].name}')
    names = [f.name for f in dataclasses.fields(cls)]
    if parts[1] not in names:
        what = f'{base.algo} has no hyperparameter' if top == 'algo_kwargs' else \
            f'{top} has no key'
        raise ConfigError(f'{where}: {what} {parts[1]!r}' + _suggest(parts[1], names))
    return typing.get_type_hints(cls)[parts[1]]


def _check_numeric(where: str, key: str, kind: str, hint: Any) -> None:
    """A numeric distribution must produce values the key's type accepts."""
    if hint is Any:
        return
    args = typing.get_args(hint) if typing.get_origin(hint) in (Union, types.UnionType) \
        else (hint,)
    if float in args:
        return
    if int in args:
        if kind == 'int':
            return
        raise ConfigError(f'{where}: takes an integer: use type int (or choice), not {kind}')
    names = ' | '.join(getattr(a, '__name__', str(a)) for a in args if a is not type(None))
    raise ConfigError(f'{where}: takes {names}, not a number: use type choice')


def _suggest(word: str, options: list[str] | tuple[str, ...]) -> str:
    close = difflib.get_close_matches(word, list(options), n=1, cutoff=0.5)
    return f'; did you mean {close[0]!r}?' if close else ''


def base_point(params: list[Param], cfg: TrainConfig) -> dict[str, Any] | None:
    """The base config's values as an encoded point, or None if one lies outside the space."""
    point = {}
    for p in params:
        encoded = p.encode(_config_value(cfg, p.key))
        if encoded is None:
            return None
        point[p.key] = encoded
    return point


def _config_value(cfg: TrainConfig, key: str) -> Any:
    """The effective value of a dotted key in a built config (algorithm defaults included)."""
    top, _, rest = key.partition('.')
    if top == 'algo_kwargs':
        return getattr(cfg.algo_config, rest)
    if top == 'env_kwargs':
        node: Any = cfg.env_kwargs
        for part in rest.split('.'):
            if not isinstance(node, dict) or part not in node:
                return None
            node = node[part]
        return node
    value = getattr(cfg, top)
    return getattr(value, rest) if rest and value is not None else value


def apply_values(raw: dict[str, Any], values: dict[str, Any], source: str) -> dict[str, Any]:
    """A copy of the raw config with dotted `values` set exactly as `--set KEY=VALUE` sets them."""
    out = copy.deepcopy(raw)
    for key, value in values.items():
        apply_override(out, f'{key}={json.dumps(value)}', source)
    return out
