"""`python -m rl_control.cli`: the `rl-control` command."""
import os
import sys

from rl_control.cli import main

os.environ.setdefault('MPLBACKEND', 'Agg')
sys.exit(main())
