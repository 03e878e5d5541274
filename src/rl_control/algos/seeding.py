"""Independent random streams inside an agent, all derived from the agent's one seed.

An agent draws random numbers for several purposes: network initialization, action sampling
(SAC's reparameterization, A2C's Gaussian), TD3's target-policy smoothing noise and its
exploration noise. Seeding them `seed`, `seed + 1`, `seed + 2` would make seed s's sampling
stream the init stream of seed s + 1: runs of neighbouring seeds would be correlated, which is
exactly what a multi-seed experiment must not be.

Here each stream is a child of `numpy.random.SeedSequence(seed)`: stream i is
`SeedSequence(seed).spawn(n)[i]` (written `SeedSequence(seed, spawn_key=(i,))`, the same
object), hashed to a 64-bit integer seed. Children of different seeds, and different children of
one seed, never share or overlap a stream, whatever the seeds. The index of every stream is fixed
in `STREAMS`, so adding a stream later never changes the others.

Torch generators are CPU generators whatever the agent's device: a draw is made on the CPU and
moved, so the same seed gives the same numbers on a CPU and on a GPU, and a checkpoint's
generator state resumes on either.
"""
from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np
import torch

# Stream name -> spawn index. Append only: an index, once used, keeps its meaning.
STREAMS: dict[str, int] = {'init': 0, 'policy': 1, 'target_noise': 2, 'exploration': 3}


def stream_seed(seed: int | None, stream: str) -> int | None:
    """The 64-bit seed of one named stream of `seed` (None stays None: fresh OS entropy)."""
    if seed is None:
        return None
    child = np.random.SeedSequence(int(seed), spawn_key=(STREAMS[stream],))
    return int(child.generate_state(1, np.uint64)[0])


@contextmanager
def seeded_init(seed: int | None) -> Iterator[None]:
    """Network init drawn from `seed`'s 'init' stream, leaving the global torch RNG untouched."""
    with torch.random.fork_rng(devices=[]):
        init = stream_seed(seed, 'init')
        if init is not None:
            torch.manual_seed(init)
        yield


def torch_generator(seed: int | None, stream: str = 'policy') -> torch.Generator:
    """A private CPU generator on one stream of `seed`, saved in state_dict for exact resume."""
    g = torch.Generator()
    value = stream_seed(seed, stream)
    if value is None:
        g.seed()
    else:
        g.manual_seed(value)
    return g


def standard_normal(shape: tuple[int, ...] | torch.Size, generator: torch.Generator | None,
                    like: torch.Tensor) -> torch.Tensor:
    """N(0, 1) draws from a CPU generator, in `like`'s dtype, on `like`'s device.

    On a CPU agent the final `.to` is a no-op, so the CPU path costs what `torch.randn` costs.
    """
    return torch.randn(shape, generator=generator, dtype=like.dtype).to(like.device)
