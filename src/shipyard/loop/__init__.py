"""The delivery loop: plan → implement → verify → review → ship, and diagnose on repeats."""
