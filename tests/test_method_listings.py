"""Every registered method is listed where a user looks for one: `evo algorithms`, the REST
`/api/v1/algorithms`, and the dashboard's method list (which the dashboard reads from that
endpoint). One check over the registry, so a method added later is covered too."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from api import create_app
from api.keys import create_key
from evo.algorithms import REGISTRY
from evo.app.settings import Settings
from storage import Store

# methods added after the first ones: listed by name, so that one dropped from the registry is
# noticed (the parametrized check below covers only what the registry holds)
NEWER = ("promptbreeder", "funsearch", "evoprompting", "evol-instruct", "zero-shot-eot", "bbt",
         "bdpl")
SUBMIT_VIEW = Path(__file__).resolve().parent.parent / "web" / "src" / "views" / "submit.ts"


@pytest.fixture(scope="module")
def cli_rows() -> dict[str, str]:
    """`evo algorithms`: each row's first cell (the name) and the row's first line."""
    from evo.app.cli import app

    out = CliRunner().invoke(app, ["algorithms"], env={"COLUMNS": "200"})
    assert out.exit_code == 0, out.output
    rows = (re.match(r"│ (\S+)\s+│", line) for line in out.stdout.splitlines())
    return {m.group(1): m.string for m in rows if m}


@pytest.fixture(scope="module")
def api_listing(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, dict]]:
    url = f"sqlite:///{tmp_path_factory.mktemp('listing') / 'evo.db'}"
    store = Store(url)
    try:
        client = TestClient(create_app(store, Settings(database_url=url, executor="inprocess")))
        token = create_key(store, "someone")[1]
        r = client.get("/api/v1/algorithms", headers={"Authorization": f"Bearer {token}"})
        assert r.status_code == 200, r.text
        yield {a["name"]: a for a in r.json()}
    finally:
        store.close()


def test_the_registry_holds_the_newer_methods() -> None:
    assert set(NEWER) <= set(REGISTRY)


@pytest.mark.parametrize("name", sorted(REGISTRY))
def test_every_method_is_listed_by_the_cli_and_the_api(
    name: str, cli_rows: dict[str, str], api_listing: dict[str, dict]
) -> None:
    cls = REGISTRY[name]
    assert name in cli_rows
    assert cls.summary.split()[0] in cli_rows[name]  # its own row, its own summary
    listed = api_listing[name]
    assert listed["summary"] == cls.summary
    assert listed["kinds"] == list(cls.kinds) and listed["result"] == cls.result
    assert set(listed["defaults"]) == set(cls.params_model.model_fields)


def test_the_dashboard_offers_every_method_the_api_lists() -> None:
    # the submit form's method list is the endpoint's answer, one option per method, unfiltered:
    # so the API's listing above is the dashboard's too (the form itself needs a browser)
    source = SUBMIT_VIEW.read_text()
    assert 'getJson<Algorithm[]>("/algorithms")' in source
    assert re.search(r"replace\(algorithmSelect, algorithms\.map\(", source)
    assert "algorithms.filter(" not in source
    hard_coded = [n for n in REGISTRY if n != "evoprompt-ga" and f'"{n}"' in source]
    assert hard_coded == []  # no method named in the form's code (evoprompt-ga: the default)
