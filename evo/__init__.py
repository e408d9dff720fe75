"""Evo: evolutionary prompt optimization. ``evo.optimize(spec)`` runs a job, returns its result."""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"
__all__ = ["optimize"]


def optimize(spec: Any, **kwargs: Any) -> Any:
    """Run a job spec (a path, a mapping or a JobSpec) to the end (``workers.runner.optimize``)."""
    from workers.runner import optimize as _optimize

    return _optimize(spec, **kwargs)
