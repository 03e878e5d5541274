"""Interoperability with other RL libraries (Stable-Baselines3 model import)."""
