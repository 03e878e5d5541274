"""Learning algorithms (torch only): networks, SAC/TD3/DDPG/A2C, replay and HER buffers.

Imports nothing else of the package, no gymnasium and no logger: an algorithm maps batches to
updates (`update(batch) -> metrics`) and knows nothing of robots, envs or files.
"""
