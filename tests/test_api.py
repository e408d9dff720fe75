"""The REST API over real HTTP: uvicorn on a loopback port, its own job service, the scripted
model. Jobs submitted here run to completion and export; tenants see only their own jobs (and
get 404 for anyone else's); bad input is a 422 naming the field, never a 500; events stream live
and resume; model keys given in a spec never leave the server's memory."""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, inspect, text

from api import create_app, errors
from api.keys import create_key, revoke
from api.limits import NO_SERVER_KEY
from evo.app.settings import Settings
from storage import JOB_STATUSES, Store
from tests.api_helpers import PREFIX, LiveApi, read_sse, scripted_spec, wait_status
from tests.servers import Reply, ScriptedOpenAIServer, chat_reply, free_port
from workers import jobs

ROOT = Path(__file__).resolve().parent.parent
MAX_CALLS = 50_000
MAX_TOKENS = 5_000_000
UNKNOWN = "0123456789abcdef0123456789abcdef"


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small custom task the server may read (its EVO_API_DATA_DIR)."""
    folder = tmp_path_factory.mktemp("api-data")
    for split, n in (("train", 8), ("dev", 12), ("test", 12)):
        rows = [{"text": f"{split} item {i} is {'good' if i % 2 else 'bad'}",
                 "label": "good" if i % 2 else "bad"} for i in range(n)]
        (folder / f"{split}.jsonl").write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    return folder


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory, data_dir: Path):
    url = f"sqlite:///{tmp_path_factory.mktemp('api-db') / 'evo.db'}"
    settings = Settings(database_url=url, executor="inprocess", max_jobs=2,
                        max_budget_calls=MAX_CALLS, max_budget_tokens=MAX_TOKENS,
                        api_data_dir=str(data_dir))
    with Store(url) as store, LiveApi(store, settings) as live:
        yield live


@pytest.fixture(scope="module")
def keys(api: LiveApi) -> dict[str, str]:
    return {"alice": api.key("alice"), "bob": api.key("bob"), "root": api.key("root", admin=True)}


@pytest.fixture(scope="module")
def alice(api: LiveApi, keys: dict[str, str]):
    with api.client(keys["alice"]) as client:
        yield client


@pytest.fixture(scope="module")
def bob(api: LiveApi, keys: dict[str, str]):
    with api.client(keys["bob"]) as client:
        yield client


@pytest.fixture(scope="module")
def root(api: LiveApi, keys: dict[str, str]):
    with api.client(keys["root"]) as client:
        yield client


@pytest.fixture(scope="module")
def anon(api: LiveApi):
    with api.client() as client:
        yield client


@pytest.fixture(scope="module")
def done_job(alice: httpx.Client) -> dict[str, Any]:
    """A completed job of alice's: 4 generations (0..3)."""
    r = alice.post("/jobs", json=scripted_spec(generations=3, seed=3))
    assert r.status_code == 201, r.text
    return wait_status(alice, r.json()["id"], "completed")


def job_routes(job_id: str) -> list[tuple[str, str]]:
    return [
        ("GET", f"/jobs/{job_id}"),
        ("POST", f"/jobs/{job_id}/cancel"),
        ("POST", f"/jobs/{job_id}/pause"),
        ("POST", f"/jobs/{job_id}/resume"),
        ("GET", f"/jobs/{job_id}/generations"),
        ("GET", f"/jobs/{job_id}/candidates"),
        ("GET", f"/jobs/{job_id}/lineage"),
        ("GET", f"/jobs/{job_id}/events"),
        ("GET", f"/jobs/{job_id}/export"),
    ]


def candidate_routes(candidate_id: str) -> list[tuple[str, str]]:
    return [("GET", f"/candidates/{candidate_id}"), ("GET", f"/candidates/{candidate_id}/ancestry"),
            ("GET", f"/candidates/{candidate_id}/outcomes")]


def all_candidates(client: httpx.Client, job_id: str, **params: Any) -> dict[str, Any]:
    r = client.get(f"/jobs/{job_id}/candidates", params={"limit": 500, **params})
    assert r.status_code == 200, r.text
    return r.json()


def events_of(client: httpx.Client, job_id: str, last_id: int | None = None) -> list:
    headers = {} if last_id is None else {"Last-Event-ID": str(last_id)}
    with client.stream("GET", f"/jobs/{job_id}/events", headers=headers) as r:
        assert r.status_code == 200
        assert r.headers["content-type"].startswith("text/event-stream")
        return list(read_sse(r.iter_lines()))


def problem_locs(r: httpx.Response) -> list[list]:
    assert r.status_code == 422, (r.status_code, r.text)
    return [p["loc"] for p in r.json()["detail"]]


# --- jobs ----------------------------------------------------------------------------------------


def test_a_submitted_job_runs_to_completion_and_exports(alice: httpx.Client,
                                                        done_job: dict) -> None:
    assert done_job["owner"] == "alice" and done_job["best_candidate_id"]
    assert done_job["stats"]["calls"] > 0
    budget = done_job["spec"]["budget"]
    # the spec's own call limit is kept; the token limit it left open gets the server's maximum
    assert budget["calls"] == 20_000 and budget["tokens"] == MAX_TOKENS

    r = alice.get(f"/jobs/{done_job['id']}/export", params={"format": "json", "top": 2})
    assert r.status_code == 200 and r.headers["content-type"] == "application/json"
    exported = r.json()
    assert exported["job_id"] == done_job["id"] and len(exported["prompts"]) == 2
    best = exported["prompts"][0]
    shown = alice.get(f"/candidates/{best['candidate_id']}").json()
    assert best["prompt"] == shown["text"]
    assert best["dev_score"] == shown["scores"]["dev"]["value"]
    # the paired test of the winner against the best seed on test, stated in the job and export
    versus = done_job["stats"]["vs_seed"]
    assert exported["versus_seed"] == versus and versus["sentence"]
    # the winner's per-example test results: what a paired comparison is computed from
    per_example = alice.get(f"/candidates/{best['candidate_id']}/outcomes").json()
    assert per_example["split"] == "test" and per_example["items"]
    right = sum(o["score"] for o in per_example["items"])
    assert right / len(per_example["items"]) == pytest.approx(best["test_score"])

    md = alice.get(f"/jobs/{done_job['id']}/export", params={"format": "md"})
    assert md.headers["content-type"].startswith("text/markdown")
    assert md.text.startswith("# scripted 3") and best["prompt"] in md.text
    assert versus["sentence"] in md.text
    yml = alice.get(f"/jobs/{done_job['id']}/export", params={"format": "yaml", "top": 2})
    assert yml.headers["content-type"].startswith("application/yaml")
    assert yaml.safe_load(yml.text) == exported
    txt = alice.get(f"/jobs/{done_job['id']}/export", params={"format": "txt"})
    assert txt.headers["content-type"].startswith("text/plain") and txt.text == best["prompt"]


def stopped_early(api: LiveApi, owner: str, status: str) -> str:
    """A job of ``owner``'s that stopped in ``status`` before any candidate was scored on the
    whole dev split (written straight into the store: no service claims it)."""
    return api.store.create_job(job_id=uuid.uuid4().hex, name=f"{status} early",
                                task="sentiment", algorithm="evoprompt-ga",
                                spec=scripted_spec(), seed=0, status=status, owner=owner).id


@pytest.mark.parametrize("status", ["failed", "cancelled", "paused"])
def test_a_job_without_a_best_prompt_exports_nothing_and_says_why(
    api: LiveApi, alice: httpx.Client, tmp_path: Path, status: str
) -> None:
    job_id = stopped_early(api, "alice", status)
    details = set()
    for fmt in ("json", "yaml", "md", "txt"):
        r = alice.get(f"/jobs/{job_id}/export", params={"format": fmt})
        assert r.status_code == 409, (fmt, r.status_code, r.text)
        assert r.headers["content-type"] == "application/json"
        details.add(r.json()["detail"])
    (detail,) = details  # the same answer whatever the format
    assert detail.startswith(f"job {job_id} is {status} and has no best prompt")
    assert ("yet" in detail) == (status == "paused")  # a paused job may still get one

    # `evo export` refuses alike: the same message, status 2, no traceback, no file written
    out = tmp_path / "best.txt"
    cli = subprocess.run(
        [sys.executable, "-m", "evo.app.cli", "export", job_id[:8], "--format", "txt",
         "-o", str(out), "--db", api.settings.database_url],
        capture_output=True, text=True, timeout=120, cwd=ROOT,
        env={**os.environ, "COLUMNS": "200"},
    )
    assert cli.returncode == 2, (cli.stdout, cli.stderr)
    assert detail in " ".join(cli.stderr.split())
    assert "Traceback" not in cli.stderr and cli.stdout == "" and not out.exists()


def test_submit_answers_201_with_the_job_and_its_location(alice: httpx.Client) -> None:
    r = alice.post("/jobs", json=scripted_spec(generations=1, seed=11))
    assert r.status_code == 201
    job = r.json()
    assert job["status"] == "queued" and job["owner"] == "alice" and job["name"] == "scripted 11"
    assert r.headers["location"] == f"{PREFIX}/jobs/{job['id']}"
    again = alice.get(r.headers["location"].removeprefix(PREFIX))
    assert again.status_code == 200 and again.json()["id"] == job["id"]
    wait_status(alice, job["id"], "completed")


def test_list_jobs_pages_and_filters(alice: httpx.Client, done_job: dict) -> None:
    ids = []
    for seed in (21, 22, 23):
        ids.append(alice.post("/jobs", json=scripted_spec(generations=1, seed=seed)).json()["id"])
    for job_id in ids:
        wait_status(alice, job_id, "completed")
    everything = alice.get("/jobs", params={"limit": 200}).json()
    assert everything["total"] == len(everything["items"]) >= 4
    listed = [j["id"] for j in everything["items"]]
    assert listed.index(ids[2]) < listed.index(ids[1]) < listed.index(ids[0])  # newest first
    pages = [alice.get("/jobs", params={"limit": 2, "offset": o}).json() for o in (0, 2, 4, 6)]
    assert [j["id"] for p in pages for j in p["items"]] == listed[:8]
    assert {p["total"] for p in pages} == {everything["total"]}
    done = alice.get("/jobs", params={"status": "completed", "algorithm": "evoprompt-ga",
                                      "task": "sentiment"}).json()
    assert done["total"] >= 4 and {j["status"] for j in done["items"]} == {"completed"}
    assert alice.get("/jobs", params={"algorithm": "opro"}).json()["total"] == 0


def test_generations_report_fitness_diversity_and_cost(alice: httpx.Client,
                                                       done_job: dict) -> None:
    gens = alice.get(f"/jobs/{done_job['id']}/generations").json()
    assert [g["generation"] for g in gens] == [0, 1, 2, 3]
    totals = [g["calls_total"] for g in gens]
    assert totals == sorted(totals) and sum(g["calls"] for g in gens) == totals[-1]
    assert sum(g["tokens"] for g in gens) == gens[-1]["tokens_total"]
    # the best search score the jobs list shows while a job runs, kept in its stats
    stats = alice.get(f"/jobs/{done_job['id']}").json()["stats"]
    assert stats["best_search"] == max(g["best"] for g in gens)
    for g in gens:
        assert g["size"] >= 3 and g["best"] >= g["mean"]
        assert 0 < g["diversity"] <= 1 and g["distinct"] <= g["size"]
        best = alice.get(f"/candidates/{g['best_candidate_id']}").json()
        assert best["generation"] == g["generation"]


def test_generations_are_paged(alice: httpx.Client, done_job: dict) -> None:
    url = f"/jobs/{done_job['id']}/generations"
    whole = alice.get(url).json()
    pages, after = [], -1
    while page := alice.get(url, params={"after": after, "limit": 3}).json():
        assert len(page) <= 3
        pages += page
        after = page[-1]["generation"]
    assert pages == whole  # the spend of a page's first row counts from the one before it
    assert alice.get(url, params={"after": 1}).json() == whole[2:]
    assert alice.get(url, params={"after": 3}).json() == []


def test_candidates_are_filtered_sorted_and_paged(alice: httpx.Client, api: LiveApi,
                                                  done_job: dict) -> None:
    job_id = done_job["id"]
    full = all_candidates(alice, job_id)
    items = full["items"]
    assert full["total"] == len(items) == len(api.store.candidates(job_id))
    assert [c["id"] for c in items] == [c.id for c in api.store.candidates(job_id)]

    gen1 = all_candidates(alice, job_id, generation=1)
    assert gen1["total"] == sum(c["generation"] == 1 for c in items) > 0
    assert {c["generation"] for c in gen1["items"]} == {1}
    seeds = all_candidates(alice, job_id, operator="seed")
    assert seeds["total"] == sum(c["operator"] == "seed" for c in items) > 0

    ranked = all_candidates(alice, job_id, sort="-score")["items"]
    scores = [c["score"] for c in ranked if c["score"] is not None]
    assert scores == sorted(scores, reverse=True) and len(scores) > 3
    assert all(c["score"] is None for c in ranked[len(scores):])
    rising = [c["score"] for c in all_candidates(alice, job_id, sort="score")["items"]]
    assert rising[: len(scores)] == sorted(scores)

    low, high = sorted(scores)[1], sorted(scores)[-2]
    window = all_candidates(alice, job_id, min_score=low, max_score=high)
    assert window["total"] == sum(low <= s <= high for s in scores)
    assert all(low <= c["score"] <= high for c in window["items"])

    paged = []
    for offset in range(0, full["total"], 5):
        page = alice.get(f"/jobs/{job_id}/candidates",
                         params={"limit": 5, "offset": offset}).json()
        assert page["total"] == full["total"] and len(page["items"]) <= 5
        paged += [c["id"] for c in page["items"]]
    assert paged == [c["id"] for c in items]
    newest = all_candidates(alice, job_id, sort="-created")["items"]
    assert [c["id"] for c in newest] == [c["id"] for c in reversed(items)]
    by_gen = [c["generation"] for c in all_candidates(alice, job_id, sort="-generation")["items"]]
    assert by_gen == sorted(by_gen, reverse=True)
    # bounds that cross match nothing: an empty page, as the schema allows them
    assert all_candidates(alice, job_id, min_score=0.9, max_score=0.1)["total"] == 0


def test_each_candidate_score_says_its_split_and_how_many_examples(
    alice: httpx.Client, done_job: dict
) -> None:
    job_id = done_job["id"]
    items = all_candidates(alice, job_id, sort="-score")["items"]
    board = alice.get(f"/jobs/{job_id}/export", params={"format": "json", "top": 2}).json()
    on_whole, on_sample = set(), set()
    for c in items:
        on = c["score_on"]
        assert on is not None and on["split"] == "dev" and on["value"] == c["score"], c
        # every candidate was scored by the search on its sample of 6 dev examples first
        assert c["search_score"]["subset"] == "6" and c["search_score"]["n"] == 6, c
        if on["subset"] is None:
            on_whole.add(c["id"])
            assert on["n"] == 100  # the sentiment task's whole dev split
        else:
            on_sample.add(c["id"])
            assert on == c["search_score"]
    # the leaderboard's prompts are exactly those scored on the whole split (finalists and seeds)
    assert {p["candidate_id"] for p in board["prompts"]} <= on_whole
    assert on_sample, "the search's other candidates keep their sample scores"
    detail = alice.get(f"/candidates/{board['prompts'][0]['candidate_id']}").json()
    assert detail["score_on"]["subset"] is None and detail["search_score"]["n"] == 6


def test_a_candidate_shows_scores_family_and_the_call_that_made_it(
    alice: httpx.Client, api: LiveApi, done_job: dict
) -> None:
    job_id = done_job["id"]
    items = all_candidates(alice, job_id)["items"]
    child = next(c for c in items if c["operator"] == "ga_crossover_mutation")
    detail = alice.get(f"/candidates/{child['id']}").json()
    assert detail["text"] == child["text"] and detail["parents"] == child["parents"]
    assert detail["job_id"] == job_id and "dev" in detail["scores"]
    assert detail["evaluations"] and detail["evaluations"][0]["split"] == "dev"
    made_by = detail["made_by"]
    assert made_by is not None and made_by["key"] == detail["meta"]["made_by"]
    assert child["text"].strip() in made_by["text"]
    assert made_by["messages"] and made_by["messages"][-1]["content"]
    for parent in detail["parents"]:
        assert child["id"] in alice.get(f"/candidates/{parent}").json()["children"]

    seed = alice.get(f"/candidates/{next(c['id'] for c in items if c['operator'] == 'seed')}")
    assert seed.json()["made_by"] is None and seed.json()["parents"] == []

    ancestry = alice.get(f"/candidates/{child['id']}/ancestry").json()
    ancestors = [a["id"] for a in ancestry["ancestors"]]
    assert ancestors == [a.id for a in api.store.ancestry(child["id"])]
    assert set(child["parents"]) <= set(ancestors)

    graph = alice.get(f"/jobs/{job_id}/lineage").json()
    assert {n["id"] for n in graph["nodes"]} == {c["id"] for c in items}
    assert {n["id"]: n["kind"] for n in graph["nodes"]} == {c["id"]: c["kind"] for c in items}
    edges = {(e["source"], e["target"]) for e in graph["edges"]}
    assert edges == {(e.parent_id, e.child_id) for e in api.store.lineage(job_id)}
    assert {(p, child["id"]) for p in child["parents"]} <= edges


# --- control -------------------------------------------------------------------------------------


def test_events_stream_live_end_with_the_job_and_resume(alice: httpx.Client,
                                                        done_job: dict) -> None:
    job = alice.post("/jobs", json=scripted_spec(generations=1000, seed=5)).json()
    seen = []
    with alice.stream("GET", f"/jobs/{job['id']}/events") as r:
        assert r.status_code == 200 and r.headers["cache-control"] == "no-cache"
        for event in read_sse(r.iter_lines()):
            seen.append(event)
            if sum(e.event == "GenerationDone" for e in seen) == 3:
                # generations arrive while the job is still running
                assert alice.get(f"/jobs/{job['id']}").json()["status"] == "running"
                cancelled = alice.post(f"/jobs/{job['id']}/cancel")
                assert cancelled.status_code == 200
                assert (cancelled.json()["pending_control"] == "cancel"
                        or cancelled.json()["status"] == "cancelled")
    assert seen[0].event == "JobStarted" and seen[-1].event == "JobEnded"
    assert seen[-1].data["status"] == "cancelled"
    ids = [e.id for e in seen]
    assert ids == sorted(set(ids))
    gens = [e.data["generation"] for e in seen if e.event == "GenerationDone"]
    assert gens == list(range(len(gens))) and len(gens) >= 3
    assert all(e.data["job_id"] == job["id"] and e.data["kind"] == e.event for e in seen)

    again = alice.post(f"/jobs/{job['id']}/cancel")
    assert again.status_code == 409 and "cancelled" in again.json()["detail"]

    # reconnecting with Last-Event-ID replays only what came after it, then ends
    replay = events_of(alice, job["id"], last_id=seen[1].id)
    assert [(e.id, e.event, e.data) for e in replay] == [(e.id, e.event, e.data)
                                                          for e in seen[2:]]
    assert events_of(alice, job["id"], last_id=seen[-1].id) == []

    # a finished job's stream is its whole history, then ends
    history = [e.event for e in events_of(alice, done_job["id"])]
    assert history == ["JobStarted"] + ["GenerationDone"] * 4 + ["JobEnded"]
    assert problem_locs(alice.get(f"/jobs/{job['id']}/events",
                                  headers={"Last-Event-ID": "yesterday"})) == [
        ["header", "last-event-id"]]


def test_pause_resume_and_cancel_over_http(alice: httpx.Client, done_job: dict) -> None:
    job_id = alice.post("/jobs", json=scripted_spec(generations=1000, seed=6)).json()["id"]
    deadline = time.monotonic() + 30
    while len(alice.get(f"/jobs/{job_id}/generations").json()) < 2:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    r = alice.post(f"/jobs/{job_id}/pause")
    assert r.status_code == 200
    paused = wait_status(alice, job_id, "paused")
    assert "paused" in paused["reason"]
    made = len(alice.get(f"/jobs/{job_id}/generations").json())

    r = alice.post(f"/jobs/{job_id}/resume")
    assert r.status_code == 200 and r.json()["status"] in ("queued", "running")
    wait_status(alice, job_id, "running")
    deadline = time.monotonic() + 30
    while len(alice.get(f"/jobs/{job_id}/generations").json()) <= made:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert alice.post(f"/jobs/{job_id}/resume").status_code == 409  # it is running
    assert alice.post(f"/jobs/{job_id}/cancel").status_code == 200
    wait_status(alice, job_id, "cancelled")
    assert alice.post(f"/jobs/{job_id}/pause").status_code == 409

    done = alice.post(f"/jobs/{done_job['id']}/resume")
    assert done.status_code == 409 and "completed" in done.json()["detail"]
    assert alice.post(f"/jobs/{done_job['id']}/cancel").status_code == 409


# --- tenants and keys ----------------------------------------------------------------------------


def test_another_tenants_jobs_and_candidates_are_404(alice: httpx.Client, bob: httpx.Client,
                                                    root: httpx.Client, done_job: dict) -> None:
    job_id = done_job["id"]
    candidate = done_job["best_candidate_id"]
    for method, path in job_routes(job_id):
        theirs = bob.request(method, path)
        missing = bob.request(method, path.replace(job_id, UNKNOWN))
        assert theirs.status_code == missing.status_code == 404, (method, path)
        assert theirs.json() == missing.json() == {"detail": "no such job"}
    for method, path in candidate_routes(candidate):
        theirs = bob.request(method, path)
        missing = bob.request(method, path.replace(candidate, UNKNOWN))
        assert theirs.status_code == missing.status_code == 404, (method, path)
        assert theirs.json() == missing.json() == {"detail": "no such candidate"}
    assert alice.get(f"/jobs/{job_id}").json()["status"] == "completed"  # bob changed nothing

    bobs = bob.post("/jobs", json=scripted_spec(generations=1, seed=31)).json()
    assert bobs["owner"] == "bob"
    listed = bob.get("/jobs", params={"limit": 200}).json()
    assert {j["owner"] for j in listed["items"]} == {"bob"}
    assert bob.get("/jobs", params={"owner": "alice"}).json() == {
        "total": 0, "limit": 50, "offset": 0, "items": []}
    assert alice.get(f"/jobs/{bobs['id']}").status_code == 404

    # an admin key sees and acts on everyone's jobs
    every = root.get("/jobs", params={"limit": 200}).json()
    assert {"alice", "bob"} <= {j["owner"] for j in every["items"]}
    only = root.get("/jobs", params={"owner": "alice", "limit": 200}).json()
    assert only["total"] >= 1 and {j["owner"] for j in only["items"]} == {"alice"}
    for method, path in job_routes(job_id) + candidate_routes(candidate):
        if method == "GET":
            assert root.request(method, path).status_code == 200, path
    assert root.post(f"/jobs/{job_id}/cancel").status_code == 409  # completed: a real answer
    wait_status(root, bobs["id"], "completed")


def test_a_404_says_what_is_missing_never_the_id_asked_for(
    api: LiveApi, alice: httpx.Client, bob: httpx.Client, done_job: dict
) -> None:
    job_id, candidate = done_job["id"], done_job["best_candidate_id"]
    asked = [
        (bob, job_id, job_routes(job_id), "no such job"),  # another tenant's
        (alice, UNKNOWN, job_routes(UNKNOWN), "no such job"),  # nobody's
        (alice, job_id[:8], job_routes(job_id[:8]), "no such job"),  # a prefix: ids go whole
        (alice, "evo_key-like_value", job_routes("evo_key-like_value"), "no such job"),
        (bob, candidate, candidate_routes(candidate), "no such candidate"),
        (alice, UNKNOWN, candidate_routes(UNKNOWN), "no such candidate"),
    ]
    for client, ref, routes, detail in asked:
        for method, path in routes:
            r = client.request(method, path)
            assert r.status_code == 404 and r.json() == {"detail": detail}, (method, path)
            assert ref not in r.text and ref not in str(r.headers)

    # the job service's own "not found" names the id it was given: the API does not pass it on
    app = FastAPI()
    errors.install(app)

    @app.post("/cancel/{ref}")
    def cancel(ref: str) -> str:
        return jobs.cancel(api.store, ref).id

    with TestClient(app) as client:
        r = client.post(f"/cancel/{UNKNOWN}")
    assert r.status_code == 404 and r.json() == {"detail": "no such job"}


def test_requests_without_a_valid_key_are_401(api: LiveApi, anon: httpx.Client,
                                              done_job: dict) -> None:
    routes = [*job_routes(done_job["id"]), *candidate_routes(done_job["best_candidate_id"]),
              ("GET", "/jobs"), ("POST", "/jobs"), ("GET", "/tasks"), ("GET", "/algorithms"),
              ("GET", "/metrics"), ("GET", "/me")]
    bad = [
        {},
        {"Authorization": "Bearer evo_not-a-key-at-all"},
        {"Authorization": "Bearer"},
        {"Authorization": "Basic YWxpY2U6c2VjcmV0"},
    ]
    for method, path in routes:
        for headers in bad:
            r = anon.request(method, path, headers=headers, json=scripted_spec())
            assert r.status_code == 401, (method, path, headers, r.text)
            assert r.headers["www-authenticate"].startswith("Bearer")
            assert "detail" in r.json()
    carol = api.key("carol")
    with api.client(carol) as client:
        assert client.get("/jobs").status_code == 200
        assert revoke(api.store, "carol") == 1
        refused = client.get("/jobs")
        assert refused.status_code == 401 and "revoked" in refused.json()["detail"]
    assert anon.get("/health").json() == {"status": "ok", "store": "ok",
                                          "redis": "not configured"}


# --- bad input -----------------------------------------------------------------------------------


def nested(depth: int) -> Any:
    value: Any = 1
    for _ in range(depth):
        value = [value]
    return value


BAD_BODIES: list[tuple[str, bytes | dict, list]] = [
    ("not json", b"{bad", ["body"]),
    ("empty", b"", ["body"]),
    ("a list", b"[1, 2]", ["body"]),
    ("a string", b'"sentiment"', ["body"]),
    ("not utf-8", b"\xff\xfe\x00{", ["body"]),
    ("NaN", b'{"task": "sentiment", "seed": NaN}', ["body"]),
    ("huge float", b'{"task": "sentiment", "seed": 1e999}', ["body"]),
    ("huge int", {"task": "sentiment", "seed": 10**30}, ["body", "seed"]),
    ("nul", {"task": "sentiment", "name": "a\x00b"}, ["body", "name"]),
    ("lone surrogate", b'{"task": "sentiment", "name": "x\\ud800y"}', ["body", "name"]),
    ("too deep", {"task": "sentiment", "algorithm": {"name": "opro", "x": nested(60)}}, None),
    ("wrong type", {"task": "sentiment", "algorithm": {"population": "ten"}},
     ["body", "algorithm", "population"]),
    ("unknown field", {"task": "sentiment", "colour": "blue"}, ["body", "colour"]),
    ("task not text", {"task": 5}, ["body", "task"]),
    ("no task", {"seed": 1}, ["body", "task"]),
    ("unknown task", {"task": "poetry"}, ["body", "task"]),
    ("unknown algorithm", {"task": "sentiment", "algorithm": {"name": "sgd"}},
     ["body", "algorithm", "name"]),
    ("long name", {"task": "sentiment", "name": "n" * 300}, ["body", "name"]),
    ("over max calls", {"task": "sentiment", "budget": {"calls": MAX_CALLS + 1}},
     ["body", "budget", "calls"]),
    ("over max tokens", {"task": "sentiment", "budget": {"tokens": MAX_TOKENS * 2}},
     ["body", "budget", "tokens"]),
    ("too few calls", {"task": "sentiment", "budget": {"calls": 5}}, ["body", "budget", "calls"]),
    ("data outside", {"task": {"data": "/etc/passwd", "labels": ["a"]}}, ["body", "task", "data"]),
    ("data escapes", {"task": {"data": {"train": "../x.jsonl", "dev": "dev.jsonl",
                                        "test": "test.jsonl"}}},
     ["body", "task", "data", "train"]),
    ("code metric", {"task": {"builtin": "sentiment", "metric": "subprocess:call"}},
     ["body", "task", "metric"]),
    ("server key elsewhere", {"task": "sentiment", "models": {"task": {
        "provider": "openai", "model": "m", "base_url": "http://198.51.100.7/v1"}}},
     ["body", "models", "task", "base_url"]),
    ("another env var", {"task": "sentiment", "models": {"task": {
        "provider": "openai", "model": "m", "api_key_env": "AWS_SECRET_ACCESS_KEY"}}},
     ["body", "models", "task", "api_key_env"]),
    ("local model file", {"task": "sentiment", "models": {"task": {"model": "/etc/shadow"}}},
     ["body", "models", "task", "model"]),
    ("sample beyond the split", {"task": "sentiment", "algorithm": {
        "name": "evoprompt-ga", "dev_subset": 101}}, ["body", "algorithm", "dev_subset"]),
    ("context beyond training", {"task": "sentiment", "models": {"task": {"n_ctx": 100_000}}},
     ["body", "models", "task", "n_ctx"]),
]


@pytest.mark.parametrize(("body", "loc"), [(b, loc) for _, b, loc in BAD_BODIES],
                         ids=[name for name, _, _ in BAD_BODIES])
def test_a_bad_spec_is_422_naming_the_field(alice: httpx.Client, body: Any, loc: list) -> None:
    r = alice.post("/jobs", content=body) if isinstance(body, bytes) else alice.post(
        "/jobs", json=body)
    locs = problem_locs(r)
    for problem in r.json()["detail"]:
        assert problem["msg"] and problem["type"] and problem["loc"][0] == "body"
    if loc is not None:
        assert loc in locs, r.json()


def test_budget_messages_say_what_is_allowed(alice: httpx.Client) -> None:
    r = alice.post("/jobs", json={**scripted_spec(), "budget": {"calls": MAX_CALLS * 3}})
    (problem,) = r.json()["detail"]
    assert problem["loc"] == ["body", "budget", "calls"] and str(MAX_CALLS) in problem["msg"]
    # a budget without a call limit runs under the server's maximum
    open_ended = alice.post("/jobs", json={**scripted_spec(generations=1, seed=41),
                                           "budget": {"calls": None, "seconds": 30}})
    assert open_ended.status_code == 201, open_ended.text
    assert open_ended.json()["spec"]["budget"] == {"calls": MAX_CALLS, "tokens": MAX_TOKENS,
                                                   "seconds": 30.0}
    wait_status(alice, open_ended.json()["id"], "completed")


def test_odd_but_valid_unicode_is_kept(alice: httpx.Client) -> None:
    name = "prompts für Ünïcode 🚀 名前 \u200d"
    r = alice.post("/jobs", json={**scripted_spec(generations=1, seed=42), "name": name})
    assert r.status_code == 201 and r.json()["name"] == name
    assert wait_status(alice, r.json()["id"], "completed")["name"] == name


BAD_QUERIES = [
    ("/jobs", {"limit": 0}, ["query", "limit"]),
    ("/jobs", {"limit": "lots"}, ["query", "limit"]),
    ("/jobs", {"limit": 10**30}, ["query", "limit"]),
    ("/jobs", {"offset": -1}, ["query", "offset"]),
    ("/jobs", {"offset": 10**30}, ["query", "offset"]),
    ("/jobs", {"status": "sleeping"}, ["query", "status"]),
    ("/jobs", {"algorithm": "ga\x00"}, ["query", "algorithm"]),
    ("/jobs", {"task": "t" * 300}, ["query", "task"]),
    ("/jobs/{job}/candidates", {"sort": "random"}, ["query", "sort"]),
    ("/jobs/{job}/candidates", {"min_score": "nan"}, ["query", "min_score"]),
    ("/jobs/{job}/candidates", {"max_score": "inf"}, ["query", "max_score"]),
    ("/jobs/{job}/candidates", {"generation": -1}, ["query", "generation"]),
    ("/jobs/{job}/candidates", {"operator": "\x00"}, ["query", "operator"]),
    ("/jobs/{job}/candidates", {"limit": 501}, ["query", "limit"]),
    ("/jobs/{job}/generations", {"limit": 0}, ["query", "limit"]),
    ("/jobs/{job}/generations", {"limit": 10_001}, ["query", "limit"]),
    ("/jobs/{job}/generations", {"after": -2}, ["query", "after"]),
    ("/jobs/{job}/generations", {"after": "x"}, ["query", "after"]),
    ("/jobs/{job}/export", {"format": "pdf"}, ["query", "format"]),
    ("/jobs/{job}/export", {"top": 0}, ["query", "top"]),
]


def test_bad_query_values_are_422_and_odd_ids_404(alice: httpx.Client, done_job: dict) -> None:
    for path, params, loc in BAD_QUERIES:
        r = alice.get(path.format(job=done_job["id"]), params=params)
        assert loc in problem_locs(r), (path, params)
        assert "input" not in r.json()["detail"][0]  # input is never echoed back
    for odd in ("%00", "x" * 500, "%F0%9F%9A%80", "..%2F..%2Fetc", "%FF%FE", "a'b\"c", "1e999"):
        for method, path in job_routes(odd) + candidate_routes(odd):
            r = alice.request(method, path)
            assert r.status_code == 404, (method, path, r.text)


def test_bodies_over_the_limit_are_413(alice: httpx.Client, api: LiveApi) -> None:
    limit = api.settings.max_body_bytes
    declared = alice.post("/jobs", content=b" " * (limit + 1),
                          headers={"content-type": "application/json"})
    assert declared.status_code == 413 and str(limit) in declared.json()["detail"]

    def chunks():  # no Content-Length: counted as it arrives
        for _ in range(2 * limit // 65536 + 1):
            yield b" " * 65536

    streamed = alice.post("/jobs", content=chunks())
    assert streamed.status_code == 413
    assert alice.get("/health").status_code == 200
    assert alice.post("/jobs", content=b" " * (limit - 10)).status_code == 422  # read, empty


# --- secrets -------------------------------------------------------------------------------------


def test_inline_model_keys_are_used_but_never_stored_shown_or_logged(
    api: LiveApi, alice: httpx.Client, root: httpx.Client, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    secret = "sk-rest-inline-5f0e8d3c2b1a"
    reply = Reply(body=chat_reply("positive", logprobs=[("positive", -0.2), ("negative", -2)]))
    with ScriptedOpenAIServer([reply]) as server:
        spec = {
            "task": "sentiment",
            "models": {"task": {"provider": "openai", "model": "m",
                                "base_url": server.base_url, "api_key": secret}},
            "algorithm": {"name": "evoprompt-ga", "population": 3, "generations": 1,
                          "dev_subset": 4},
            "evaluation": {"top_k": 1, "test": False},
            "budget": {"calls": 600},
        }
        refused = alice.post("/jobs", json={**spec, "seed": "x"})
        assert refused.status_code == 422 and secret not in refused.text
        r = alice.post("/jobs", json=spec)
        assert r.status_code == 201 and secret not in r.text
        job_id = r.json()["id"]
        done = wait_status(alice, job_id, "completed", "failed")
        assert done["status"] == "completed", done["reason"]
        assert server.received
        assert {c.headers["authorization"] for c in server.received} == {f"Bearer {secret}"}
    stored = api.store.get_job(job_id)
    assert stored.spec["models"]["task"]["api_key_env"] == NO_SERVER_KEY
    assert "api_key" not in stored.spec["models"]["task"]

    texts = [r.text]
    for client in (alice, root):
        texts.append(client.get("/jobs", params={"limit": 200}).text)
        for method, path in job_routes(job_id):
            if method == "GET" and not path.endswith(("/events", "/export")):
                texts.append(client.get(path).text)
    for fmt in ("json", "yaml", "md", "txt"):
        texts.append(alice.get(f"/jobs/{job_id}/export", params={"format": fmt}).text)
    texts.append(json.dumps([e.data for e in events_of(alice, job_id)]))
    for c in all_candidates(alice, job_id)["items"]:
        texts.append(alice.get(f"/candidates/{c['id']}").text)
        texts.append(alice.get(f"/candidates/{c['id']}/ancestry").text)
    texts.append(root.get("/metrics").text)
    assert len(texts) > 20 and all(secret not in t for t in texts)
    assert secret not in caplog.text

    # nor in any row of any table
    engine = create_engine(api.settings.database_url)
    try:
        with engine.connect() as conn:
            for table in inspect(engine).get_table_names():
                rows = conn.execute(text(f'SELECT * FROM "{table}"')).fetchall()
                assert secret not in repr(rows), table
    finally:
        engine.dispose()


# --- files, server, metrics ----------------------------------------------------------------------


def test_a_task_from_the_servers_data_folder(alice: httpx.Client, data_dir: Path) -> None:
    spec = {
        **scripted_spec(generations=1, seed=51),
        "task": {"name": "goodbad", "data": {s: f"{s}.jsonl" for s in ("train", "dev", "test")},
                 "columns": {"input": "text", "target": "label"}, "labels": ["good", "bad"]},
    }
    r = alice.post("/jobs", json=spec)
    assert r.status_code == 201, r.text
    assert r.json()["task"] == "goodbad"
    assert r.json()["spec"]["task"]["data"]["dev"] == str(data_dir.resolve() / "dev.jsonl")
    assert wait_status(alice, r.json()["id"], "completed")["best_candidate_id"]
    missing = {**spec, "task": {**spec["task"], "data": {**spec["task"]["data"],
                                                         "dev": "gone.jsonl"}}}
    locs = problem_locs(alice.post("/jobs", json=missing))
    assert ["body", "task"] in locs


def test_me_names_the_key_and_says_whether_it_is_an_admin(
    alice: httpx.Client, root: httpx.Client, anon: httpx.Client
) -> None:
    assert alice.get("/me").json() == {"name": "alice", "admin": False}
    assert root.get("/me").json() == {"name": "root", "admin": True}
    assert anon.get("/me").status_code == 401


def test_a_job_submitted_from_the_command_line_is_seen_by_the_key_of_its_owner(
    tmp_path: Path,
) -> None:
    db = f"sqlite:///{tmp_path / 'cli.db'}"
    spec = tmp_path / "spec.yaml"
    spec.write_text(yaml.safe_dump(scripted_spec(generations=1, seed=71)))
    env = {**os.environ, "PYTHONPATH": str(ROOT), "COLUMNS": "200", "EVO_OWNER": "dana"}
    submitted = subprocess.run([sys.executable, "-m", "evo.app.cli", "submit", str(spec),
                                "--db", db], env=env, capture_output=True, text=True,
                               timeout=120, cwd=tmp_path)
    assert submitted.returncode == 0, submitted.stderr
    settings = Settings(database_url=db, executor="inprocess")
    with Store(db) as store:
        (job,) = store.list_jobs()
        assert job.owner == "dana"
        # no `with`: the app's job service never starts, the job only has to be listed
        client = TestClient(create_app(store, settings))
        for name, admin, sees in [("dana", False, True), ("erik", False, False),
                                  ("ops", True, True)]:
            auth = {"Authorization": f"Bearer {create_key(store, name, admin=admin)[1]}"}
            assert client.get(f"{PREFIX}/me", headers=auth).json() == {
                "name": name, "admin": admin}
            listed = client.get(f"{PREFIX}/jobs", headers=auth).json()["items"]
            assert [j["id"] for j in listed] == ([job.id] if sees else []), name


def test_tasks_and_algorithms_describe_what_a_spec_may_use(alice: httpx.Client) -> None:
    tasks = {t["name"]: t for t in alice.get("/tasks").json()}
    assert {"sentiment", "topic", "arithmetic", "summary", "binpacking", "tsp"} <= set(tasks)
    assert tasks["sentiment"]["kind"] == "prompt" and tasks["sentiment"]["splits"]["dev"] == 100
    assert set(tasks["sentiment"]["labels"]) == {"positive", "negative"}
    assert tasks["binpacking"]["kind"] == "program"
    assert tasks["sentiment"]["rubric"] is None and tasks["sentiment"]["json_schema"] is None
    rubric = tasks["summary"]["rubric"]
    assert [c["name"] for c in rubric["criteria"]] == ["faithfulness", "coverage", "brevity"]
    assert rubric["mode"] == "pointwise" and rubric["reference"] is True
    assert tasks["contacts"]["json_schema"]["type"] == "object"
    algos = {a["name"]: a for a in alice.get("/algorithms").json()}
    ga = algos["evoprompt-ga"]
    assert ga["parameters"]["properties"]["population"]["maximum"] == 500
    assert ga["defaults"]["population"] == 10 and ga["templates"]
    assert algos["eoh"]["kinds"] == ["program"]


def test_metrics_count_jobs_and_requests_by_route(api: LiveApi, alice: httpx.Client,
                                                  bob: httpx.Client, root: httpx.Client,
                                                  anon: httpx.Client, done_job: dict) -> None:
    bob.get(f"/jobs/{done_job['id']}")  # a 404
    r = root.get("/metrics")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain")
    lines = r.text.splitlines()
    counts = api.store.jobs_by_status()
    assert f'evo_jobs{{status="completed"}} {float(counts["completed"])}' in lines
    for status in JOB_STATUSES:  # every status has a series, zero or not
        assert any(line.startswith(f'evo_jobs{{status="{status}"}} ') for line in lines)
    assert "evo_store_up 1.0" in lines
    route = f'route="{PREFIX}/jobs/{{job_id}}"'
    assert any(line.startswith("evo_http_requests_total") and route in line
               and 'status="404"' in line for line in lines)
    assert any(line.startswith("evo_http_request_duration_seconds_count") and route in line
               for line in lines)
    assert done_job["id"] not in r.text  # routes, not paths: no series per id
    assert alice.get("/metrics").status_code == 403
    assert anon.get("/metrics").status_code == 401


def test_health_reports_redis_when_configured(tmp_path: Path, redis_url: str) -> None:
    url = f"sqlite:///{tmp_path / 'h.db'}"
    for redis, code, state in ((redis_url, 200, "ok"), ("redis://127.0.0.1:1/0", 503, "error")):
        settings = Settings(database_url=url, executor="inprocess", redis_url=redis)
        with Store(url) as store, LiveApi(store, settings) as live, live.client() as client:
            r = client.get("/health")
            assert r.status_code == code
            assert r.json() == {"status": "ok" if code == 200 else "unavailable",
                                "store": "ok", "redis": state}


def test_the_api_on_postgres(pg_url: str) -> None:
    settings = Settings(database_url=pg_url, executor="inprocess", max_budget_calls=MAX_CALLS)
    with Store(pg_url) as store, LiveApi(store, settings) as live:
        dana, eve = live.client(live.key("dana")), live.client(live.key("eve"))
        ops = live.client(live.key("ops", admin=True))
        with dana, eve, ops:
            job = dana.post("/jobs", json=scripted_spec(generations=2, seed=7)).json()
            done = wait_status(dana, job["id"], "completed")
            items = all_candidates(dana, job["id"], sort="-score")["items"]
            scores = [c["score"] for c in items if c["score"] is not None]
            assert scores == sorted(scores, reverse=True) and scores
            assert all(c["score"] is None for c in items[len(scores):])
            top = all_candidates(dana, job["id"], min_score=scores[0],
                                 operator=items[0]["operator"])
            assert items[0]["id"] in {c["id"] for c in top["items"]}
            assert all(c["score"] == scores[0] for c in top["items"])
            assert len(dana.get(f"/jobs/{job['id']}/generations").json()) == 3
            assert dana.get(f"/jobs/{job['id']}/lineage").json()["edges"]
            detail = dana.get(f"/candidates/{done['best_candidate_id']}").json()
            assert detail["scores"]["dev"]["n"] == 100
            for method, path in job_routes(job["id"]):
                assert eve.request(method, path).status_code == 404
            assert eve.get("/jobs/%00").status_code == 404
            assert dana.get(f"/jobs/{job['id']}/candidates",
                            params={"operator": "\x00"}).status_code == 422
            metrics = ops.get("/metrics").text
            assert 'evo_jobs{status="completed"} 1.0' in metrics.splitlines()
            assert ops.get("/jobs").json()["total"] == 1


def test_evo_serve_and_keys_from_the_command_line(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'serve.db'}"
    env = {**os.environ, "EVO_EXECUTOR": "inprocess", "PYTHONPATH": str(ROOT), "COLUMNS": "200"}
    evo = [sys.executable, "-m", "evo.app.cli"]
    made = subprocess.run([*evo, "keys", "create", "ops", "--admin", "--db", db], env=env,
                          capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert made.returncode == 0, made.stderr
    token = made.stdout.strip()
    assert token.startswith("evo_") and "not shown again" in made.stderr
    port = free_port()
    server = subprocess.Popen([*evo, "serve", "--port", str(port), "--db", db], env=env,
                              cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                              text=True)
    try:
        base = f"http://127.0.0.1:{port}{PREFIX}"
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{base}/health", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert server.poll() is None and time.monotonic() < deadline
            time.sleep(0.1)
        with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {token}"}) as ops:
            job = ops.post("/jobs", json=scripted_spec(generations=1, seed=61))
            assert job.status_code == 201
            assert wait_status(ops, job.json()["id"], "completed")["owner"] == "ops"
    finally:
        server.send_signal(signal.SIGINT)
        output, _ = server.communicate(timeout=30)
    assert server.returncode == 0, output
    with Store(db) as store:
        (record,) = store.api_keys()
        assert record.name == "ops" and record.admin and token.startswith(record.hint)
        assert store.get_job(job.json()["id"]).status == "completed"
    listed = subprocess.run([*evo, "keys", "list", "--db", db], env=env, capture_output=True,
                            text=True, timeout=60, cwd=tmp_path)
    assert "ops" in listed.stdout and token not in listed.stdout
