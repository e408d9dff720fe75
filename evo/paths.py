"""Where Evo keeps its data on this machine when nothing else is configured."""

from __future__ import annotations

import os
from pathlib import Path


def evo_home() -> Path:
    """The folder Evo keeps its data in: ``EVO_HOME``, else the user's data folder (the same
    wherever a command runs, so a job run from one folder is found from any other)."""
    if home := os.environ.get("EVO_HOME"):
        return Path(home).expanduser().absolute()
    import platformdirs

    return platformdirs.user_data_path("evo")


def default_store_path() -> Path:
    return evo_home() / "evo.db"


def default_database_url() -> str:
    return f"sqlite:///{default_store_path()}"
