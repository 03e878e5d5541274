"""The training loop: collectors, schedule, persistence, run logging, evaluation, configs."""
