"""The bundled local model reads labels from log-probabilities, and the job's stats say so."""

from __future__ import annotations

from pathlib import Path

import pytest

from evo.app.settings import Settings
from storage import Store
from tests.test_e2e_local import small_copy
from workers.runner import optimize

pytestmark = pytest.mark.model


def test_local_model_labels_are_read_from_logprobs(tmp_path: Path) -> None:
    settings = Settings(database_url=f"sqlite:///{tmp_path / 'labels.db'}", executor="inprocess")
    spec = {
        "task": small_copy(tmp_path, "sentiment", n=4),
        "algorithm": {"name": "evoprompt-ga", "population": 2, "generations": 1},
        "models": {"task": {"provider": "local", "workers": 1}},
        "evaluation": {"top_k": 1, "test": False},
        "budget": {"calls": 100},
    }
    result = optimize(spec, settings=settings)
    assert result.status == "completed"
    with Store(settings.database_url) as store:
        asked = [c for c in store.llm_calls(result.job_id) if c.purpose == "evaluate"]
        stored = store.get_job(result.job_id).stats["label_scoring"]
    assert asked  # every scored answer has a ledger row, paid or from the cache
    assert stored == result.stats["label_scoring"] == {"logprobs": len(asked), "parsed": 0}
