"""Training steps launched outside the worker's process: the contract (:mod:`.base`), the
child entry point, and the launchers (subprocess, accelerate, Ray)."""
