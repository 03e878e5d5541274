"""The policy bundle: `policy.yaml` + `actor.safetensors`, and a numpy runtime to serve it.

Nothing here imports torch: the serving path loads and runs bundles in numpy.
"""
from rl_control.bundle.io import (
    BundleError,
    dump_yaml,
    load_bundle,
    load_bundle_spec,
    record_evaluation,
    save_bundle,
)

__all__ = ['BundleError', 'dump_yaml', 'load_bundle', 'load_bundle_spec', 'record_evaluation',
           'save_bundle']
