"""Training steps launched outside the worker's process: the contract (:mod:`.base`), the
child entry point, and the launchers (subprocess, accelerate, Ray)."""

# the launchers register themselves by name (training.launch.base.register_launcher)
from training.launch import (  # noqa: F401
    accelerate_launcher,
    openrlhf,
    ray_jobs,
    subprocess_launcher,
)
