"""The policy-serving path must not import torch.

Why: torch costs ~5 s of node start-up and hundreds of MB, and the server evaluates the actor in
numpy. One stray module-level `import torch` (e.g. via checkpoint.py) silently brings it back,
so this checks the real import graph in a fresh interpreter, where nothing is cached.
"""
import importlib.util
import subprocess
import sys

import pytest

SERVING_MODULES = ('rl_control.bundle.io', 'rl_control.bundle.policy',
                   'rl_control.contract.spec', 'rl_control.serve.safety',
                   'rl_control.bundle.atomic')


def _imports_torch(modules: tuple[str, ...]) -> list[str]:
    """The torch modules a fresh interpreter has loaded after importing `modules`."""
    code = (f'import sys\nfor m in {list(modules)!r}:\n    __import__(m)\n'
            "print(' '.join(sorted(k for k in sys.modules if k.split('.')[0] == 'torch')))")
    out = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True,
                         timeout=120, check=False)
    assert out.returncode == 0, out.stderr
    return out.stdout.split()


def test_serving_modules_do_not_import_torch():
    loaded = _imports_torch(SERVING_MODULES)
    assert not loaded, f'serving path imported torch: {loaded[:5]} (python -X importtime ...)'


def test_policy_server_does_not_import_torch():
    if importlib.util.find_spec('rclpy') is None:
        pytest.skip('rclpy is not importable here')
    loaded = _imports_torch(('rl_control.ros.policy_server', 'rl_control.ros.conversions'))
    assert not loaded, f'policy_server imported torch: {loaded[:5]}'


def test_persistence_uses_the_bundle_atomic_writers():
    # One implementation of the crash-safe writers serves checkpoints and bundles.
    from rl_control.bundle import atomic
    from rl_control.train import persistence

    assert persistence.atomic_write_bytes is atomic.atomic_write_bytes
    assert persistence.atomic_write_text is atomic.atomic_write_text
