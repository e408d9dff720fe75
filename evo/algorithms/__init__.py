"""The registry: one name per method, so a spec, the CLI and the API all say ``algorithm: opro``."""

from __future__ import annotations

from evo.algorithms.base import Algorithm, Params
from evo.algorithms.bbt import BBT
from evo.algorithms.bdpl import BDPL
from evo.algorithms.eoh import EoH
from evo.algorithms.evol_instruct import EvolInstruct
from evo.algorithms.evoprompt import EvoPromptGA
from evo.algorithms.evoprompt_de import EvoPromptDE
from evo.algorithms.evoprompting import EvoPrompting
from evo.algorithms.funsearch import FunSearch
from evo.algorithms.gps import GPS
from evo.algorithms.grips import GrIPS
from evo.algorithms.opro import OPRO
from evo.algorithms.promptbreeder import Promptbreeder
from evo.algorithms.zero_shot_eot import ZeroShotEoT

REGISTRY: dict[str, type[Algorithm]] = {
    cls.name: cls
    for cls in (
        EvoPromptGA,
        OPRO,
        EoH,
        GPS,
        GrIPS,
        EvoPromptDE,
        BBT,
        Promptbreeder,
        EvolInstruct,
        BDPL,
        FunSearch,
        EvoPrompting,
        ZeroShotEoT,
    )
}


class UnknownAlgorithm(ValueError):
    pass


def get_algorithm(name: str) -> type[Algorithm]:
    try:
        return REGISTRY[name]
    except KeyError:
        known = ", ".join(sorted(REGISTRY))
        raise UnknownAlgorithm(f"unknown algorithm {name!r}; known: {known}") from None


__all__ = ["REGISTRY", "Algorithm", "Params", "UnknownAlgorithm", "get_algorithm"]
