"""gymnasium glue: the env factory, vector envs, the Panda reach tasks and their registration.

`import rl_control` registers every env id (`envs/registration.py`, no simulator import).
"""
