"""policy.yaml sections as dataclasses: unknown keys are an error naming them and the known ones.

One rule for every section a bundle or config carries (`shaper:`, `action.cartesian:`,
`action.gripper:`, `randomization:`), so a typo in any of them fails the same way instead of
being dropped.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict
from typing import Any


def checked(cls: type, d: Mapping[str, Any] | None, section: str,
            error: type[Exception] = ValueError) -> dict[str, Any]:
    """`d` as a dict after checking every key is a field of dataclass `cls`."""
    d = dict(d or {})
    known = sorted(cls.__dataclass_fields__)  # type: ignore[attr-defined]
    unknown = sorted(set(d) - set(known))
    if unknown:
        raise error(f'{section}: unknown key(s) {unknown}; known: {known}')
    return d


def ranges_from_dict(cls: type, d: Mapping[str, Any] | None, section: str) -> Any:
    """A dataclass of floats and (low, high) ranges from YAML (lists become tuples)."""
    return cls(**{k: tuple(v) if isinstance(v, list) else v
                  for k, v in checked(cls, d, section).items()})


def ranges_to_yaml(obj: Any) -> dict[str, Any]:
    """Plain types for policy.yaml: ranges as lists, scalars as floats."""
    return {k: list(v) if isinstance(v, tuple) else float(v) for k, v in asdict(obj).items()}


def floats_from_dict(cls: type, d: Mapping[str, Any] | None, section: str,
                     error: type[Exception] = ValueError) -> dict[str, float]:
    """The checked section with every value as a float."""
    return {k: float(v) for k, v in checked(cls, d, section, error).items()}
