"""Program-search problems the project ships, by name."""

from __future__ import annotations

from collections.abc import Callable

from evo.problems.binpacking import bin_packing
from evo.problems.tsp import tsp_construction
from evo.programs import ProgramTask

PROBLEMS: dict[str, Callable[[], ProgramTask]] = {
    "binpacking": bin_packing,
    "tsp": tsp_construction,
}
DESCRIPTIONS = {
    "binpacking": "Online bin packing on Weibull items: evolve the bin-choice priority function.",
    "tsp": "Travelling salesman tours built step by step: evolve the next-city rule.",
}
