"""The dashboard's serving (its page and files, or a message saying how to build them) and what
the REST API gained for it: candidates sorted by operator and by text length."""

from __future__ import annotations

import gzip
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from api import create_app
from api.dashboard import CSP
from evo.app.settings import Settings
from storage import Store
from tests.api_helpers import LiveApi, scripted_spec, wait_status


@pytest.fixture
def fake_build(tmp_path: Path) -> Path:
    """A stand-in for a built dashboard: the page and two hashed files, one also gzipped."""
    root = tmp_path / "static"
    (root / "assets").mkdir(parents=True)
    (root / "index.html").write_text(
        '<!doctype html><script defer src="assets/app-ABC123.js"></script>'
    )
    script = b"console.log('dashboard');" * 40
    (root / "assets" / "app-ABC123.js").write_bytes(script)
    (root / "assets" / "app-ABC123.js.gz").write_bytes(gzip.compress(script))
    (root / "assets" / "app-DEF456.css").write_text("body { color: black; }")
    (tmp_path / "secret.txt").write_text("not for the web")
    return root


def offline_app(store: Store, settings: Settings, dashboard_dir: Path) -> TestClient:
    # without `with`, the app's job service is never started: only the files are asked for
    return TestClient(create_app(store, settings, dashboard_dir=dashboard_dir))


def test_the_page_and_its_files_are_served(store: Store, settings: Settings,
                                           fake_build: Path) -> None:
    client = offline_app(store, settings, fake_build)
    page = client.get("/")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert page.headers["content-security-policy"] == CSP
    assert page.headers["cache-control"] == "no-cache"
    assert "assets/app-ABC123.js" in page.text

    plain = client.get("/assets/app-ABC123.js", headers={"Accept-Encoding": "identity"})
    assert plain.status_code == 200
    assert plain.headers["content-type"].startswith("text/javascript")
    assert "immutable" in plain.headers["cache-control"]
    assert "content-encoding" not in plain.headers
    packed = client.get("/assets/app-ABC123.js", headers={"Accept-Encoding": "gzip, br"})
    assert packed.headers["content-encoding"] == "gzip"
    assert packed.content == plain.content  # httpx undoes the gzip
    assert client.get("/assets/app-DEF456.css").headers["content-type"].startswith("text/css")


def test_dashboard_requests_keep_their_own_routes_in_the_metrics(
    store: Store, settings: Settings, fake_build: Path
) -> None:
    client = TestClient(create_app(store, settings.model_copy(update={"metrics_public": True}),
                                   dashboard_dir=fake_build))
    client.get("/")
    client.get("/assets/app-ABC123.js")
    text = client.get("/api/v1/metrics").text
    assert 'route="/"' in text and 'route="/assets/{name}"' in text
    assert 'route="/api/v1/"' not in text and 'route="/api/v1/assets/{name}"' not in text


@pytest.mark.parametrize("path", [
    "/assets/app-XYZ.js",            # not there
    "/assets/app-ABC123.js.gz",      # only served as the encoding of the .js
    "/assets/..%2Findex.html",       # outside the folder
    "/assets/..%2F..%2Fsecret.txt",
    "/assets/.hidden.js",
    "/index.html",                   # the page is served at / only
])
def test_nothing_else_is_served(store: Store, settings: Settings, fake_build: Path,
                                path: str) -> None:
    response = offline_app(store, settings, fake_build).get(path)
    assert response.status_code == 404
    assert "not for the web" not in response.text


def test_without_a_build_the_page_says_how_to_build_it_and_the_api_works(
    store: Store, settings: Settings, tmp_path: Path
) -> None:
    client = offline_app(store, settings, tmp_path / "never-built")
    page = client.get("/")
    assert page.status_code == 503
    assert "npm ci && npm run build" in page.text
    assert "/api/v1/docs" in page.text
    assert client.get("/assets/app.js").status_code == 404
    assert client.get("/api/v1/health").json()["store"] == "ok"
    assert client.get("/api/v1/jobs").status_code == 401


def test_the_dashboard_is_not_part_of_the_api_schema(store: Store, settings: Settings,
                                                     fake_build: Path) -> None:
    schema = offline_app(store, settings, fake_build).get("/api/v1/openapi.json").json()
    assert "/" not in schema["paths"]
    assert not [p for p in schema["paths"] if p.startswith("/assets")]
    sort = next(p for p in schema["paths"]["/api/v1/jobs/{job_id}/candidates"]["get"]["parameters"]
                if p["name"] == "sort")
    assert {"operator", "-operator", "length", "-length", "score"} <= set(sort["schema"]["enum"])


# --- sorting candidates by operator and by length ------------------------------------------------


@pytest.fixture(scope="module")
def finished(tmp_path_factory: pytest.TempPathFactory):
    url = f"sqlite:///{tmp_path_factory.mktemp('dashboard-db') / 'evo.db'}"
    settings = Settings(database_url=url, executor="inprocess")
    with Store(url) as store, LiveApi(store, settings) as live, \
            live.client(live.key("carol")) as client:
        job = client.post("/jobs", json=scripted_spec(generations=3, seed=5)).json()
        wait_status(client, job["id"], "completed")
        yield client, job["id"]


def everything(client: httpx.Client, job_id: str, **query: Any) -> list[dict[str, Any]]:
    """Every candidate in the asked order, read in pages of 4."""
    out: list[dict[str, Any]] = []
    while True:
        page = client.get(f"/jobs/{job_id}/candidates",
                          params={**query, "limit": 4, "offset": len(out)}).json()
        out += page["items"]
        if len(out) >= page["total"]:
            return out


def test_candidates_sort_by_length_and_operator_across_pages(finished) -> None:
    client, job_id = finished
    created = everything(client, job_id)
    assert len(created) > 8
    order = {c["id"]: i for i, c in enumerate(created)}

    shortest = everything(client, job_id, sort="length")
    assert sorted(c["id"] for c in shortest) == sorted(order)
    assert [(len(c["text"]), order[c["id"]]) for c in shortest] == sorted(
        (len(c["text"]), order[c["id"]]) for c in created)
    longest = everything(client, job_id, sort="-length")
    lengths = [len(c["text"]) for c in longest]
    assert lengths == sorted(lengths, reverse=True)

    by_operator = everything(client, job_id, sort="operator")
    assert [c["operator"] for c in by_operator] == sorted(c["operator"] for c in created)
    assert {c["operator"] for c in by_operator} == {"seed", "ga_crossover_mutation"}
    backwards = everything(client, job_id, sort="-operator")
    assert [c["operator"] for c in backwards] == sorted((c["operator"] for c in created),
                                                        reverse=True)


def test_new_sorts_keep_the_filters_and_scores(finished) -> None:
    client, job_id = finished
    page = client.get(f"/jobs/{job_id}/candidates",
                      params={"sort": "-length", "generation": 0, "limit": 50}).json()
    assert page["total"] == len(page["items"]) == 3
    assert {c["operator"] for c in page["items"]} == {"seed"}
    by_score = {c["id"]: c["score"] for c in everything(client, job_id, sort="score")}
    for c in page["items"]:
        assert c["score"] == by_score[c["id"]]
    high = client.get(f"/jobs/{job_id}/candidates",
                      params={"sort": "operator", "min_score": 0.5}).json()
    assert high["items"] and all(c["score"] >= 0.5 for c in high["items"])
    bad = client.get(f"/jobs/{job_id}/candidates", params={"sort": "size"})
    assert bad.status_code == 422
    assert bad.json()["detail"][0]["loc"] == ["query", "sort"]
