"""The OpenAPI schema is the contract: requests generated from it (valid and invalid) never get a
server error, and every answer has a status, content type, headers and body the schema
documents. Run against the live server with an admin key, on real records as well."""

from __future__ import annotations

import time

import httpx
import jsonschema
import pytest
import schemathesis
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from schemathesis import GenerationMode
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from evo.app.settings import Settings
from evo.spec_io import parse_spec
from storage import Store
from tests.api_helpers import PREFIX, LiveApi, scripted_spec
from workers import jobs

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]
EXAMPLES_PER_OPERATION = 30


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory):
    url = f"sqlite:///{tmp_path_factory.mktemp('schema-db') / 'evo.db'}"
    # No generated spec can start a job here: every budget is over this maximum or cannot pay
    # for the final scoring, so the fuzzing never runs a model.
    settings = Settings(database_url=url, executor="inprocess", max_budget_calls=1)
    with Store(url) as store, LiveApi(store, settings) as api:
        yield api


@pytest.fixture(scope="module")
def admin(live: LiveApi) -> dict[str, str]:
    return {"Authorization": f"Bearer {live.key('root', admin=True)}"}


@pytest.fixture(scope="module")
def finished_job(live: LiveApi) -> str:
    """A real completed job (queued past the API's budget rule, straight into the store)."""
    job = jobs.submit(live.store, parse_spec(scripted_spec(generations=1, seed=9)), owner="root")
    live.service.wake()
    deadline = time.monotonic() + 30
    while live.store.get_job(job.id).status != "completed":
        assert time.monotonic() < deadline
        time.sleep(0.05)
    return job.id


@pytest.fixture(scope="module")
def api_schema(live: LiveApi):
    return schemathesis.openapi.from_url(f"{live.base_url}{PREFIX}/openapi.json")


OPERATIONS = [
    ("POST", "/jobs"),
    ("GET", "/jobs"),
    ("GET", "/jobs/{job_id}"),
    ("POST", "/jobs/{job_id}/cancel"),
    ("POST", "/jobs/{job_id}/pause"),
    ("POST", "/jobs/{job_id}/resume"),
    ("GET", "/jobs/{job_id}/generations"),
    ("GET", "/jobs/{job_id}/candidates"),
    ("GET", "/jobs/{job_id}/lineage"),
    ("GET", "/jobs/{job_id}/events"),
    ("GET", "/jobs/{job_id}/export"),
    ("GET", "/jobs/{job_id}/dataset"),
    ("POST", "/jobs/{job_id}/predict"),
    ("GET", "/candidates/{candidate_id}"),
    ("GET", "/candidates/{candidate_id}/ancestry"),
    ("GET", "/tasks"),
    ("GET", "/algorithms"),
    ("GET", "/me"),
    ("GET", "/health"),
    ("GET", "/metrics"),
]


# Invalid requests for every operation that takes any input (health takes none: no key, no
# parameters, so there is nothing to get wrong).
CASES = [
    pytest.param(method, path, mode, id=f"{method} {path} {mode.value}")
    for method, path in OPERATIONS
    for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE)
    if not (path == "/health" and mode is GenerationMode.NEGATIVE)
]


@pytest.mark.parametrize(("method", "path", "mode"), CASES)
def test_generated_requests_conform_to_the_schema(
    api_schema, admin: dict[str, str], method: str, path: str, mode: GenerationMode
) -> None:
    operation = api_schema[PREFIX + path][method]
    calls = []

    @given(case=operation.as_strategy(generation_mode=mode))
    @hypothesis_settings(
        max_examples=EXAMPLES_PER_OPERATION,
        deadline=None,
        suppress_health_check=list(HealthCheck),
        derandomize=True,
        database=None,
    )
    def check(case) -> None:
        calls.append(case.call_and_validate(headers=admin, checks=CHECKS, timeout=30))

    check()
    # the strategy produced requests, and each one passed every check
    assert calls
    if mode is GenerationMode.NEGATIVE:
        assert any(400 <= r.status_code < 500 for r in calls)


def test_real_records_conform_to_the_schema(live: LiveApi, api_schema, admin: dict[str, str],
                                            finished_job: str) -> None:
    job = live.store.get_job(finished_job)
    assert job is not None and job.best_candidate_id
    cand = job.best_candidate_id
    calls = [
        ("/jobs", "GET", {}, {"limit": 5}),
        ("/jobs/{job_id}", "GET", {"job_id": job.id}, {}),
        ("/jobs/{job_id}/generations", "GET", {"job_id": job.id}, {}),
        ("/jobs/{job_id}/candidates", "GET", {"job_id": job.id}, {"sort": "-score"}),
        ("/jobs/{job_id}/lineage", "GET", {"job_id": job.id}, {}),
        ("/jobs/{job_id}/events", "GET", {"job_id": job.id}, {}),
        ("/jobs/{job_id}/export", "GET", {"job_id": job.id}, {"format": "md"}),
        ("/jobs/{job_id}/export", "GET", {"job_id": job.id}, {"format": "json"}),
        ("/jobs/{job_id}/cancel", "POST", {"job_id": job.id}, {}),
        ("/candidates/{candidate_id}", "GET", {"candidate_id": cand}, {}),
        ("/candidates/{candidate_id}/ancestry", "GET", {"candidate_id": cand}, {}),
        ("/candidates/{candidate_id}/outcomes", "GET", {"candidate_id": cand}, {"split": "dev"}),
        ("/tasks", "GET", {}, {}),
        ("/algorithms", "GET", {}, {}),
        ("/me", "GET", {}, {}),
        ("/health", "GET", {}, {}),
        ("/metrics", "GET", {}, {}),
    ]
    statuses = []
    for path, method, path_parameters, query in calls:
        operation = api_schema[PREFIX + path][method]
        case = operation.Case(path_parameters=path_parameters, query=query)
        response = case.call_and_validate(headers=admin, checks=CHECKS, timeout=30)
        statuses.append(response.status_code)
    # everything answered, and cancelling a completed job is a documented 409
    assert statuses == [200] * 8 + [409] + [200] * 8
    predict = api_schema[PREFIX + "/jobs/{job_id}/predict"]["POST"].Case(
        path_parameters={"job_id": job.id}, body={"inputs": ["fine", "awful"]},
        media_type="application/json")
    assert predict.call_and_validate(headers=admin, checks=CHECKS, timeout=30).status_code == 200


def test_the_schema_documents_every_route(live: LiveApi) -> None:
    doc = httpx.get(f"{live.base_url}{PREFIX}/openapi.json").json()
    assert set(doc["paths"]) == {
        PREFIX + p for p in (
            "/jobs", "/jobs/{job_id}", "/jobs/{job_id}/cancel", "/jobs/{job_id}/pause",
            "/jobs/{job_id}/resume", "/jobs/{job_id}/generations", "/jobs/{job_id}/candidates",
            "/jobs/{job_id}/lineage", "/jobs/{job_id}/events", "/jobs/{job_id}/export",
            "/jobs/{job_id}/dataset", "/jobs/{job_id}/predict", "/candidates/{candidate_id}",
            "/candidates/{candidate_id}/ancestry", "/candidates/{candidate_id}/outcomes", "/tasks",
            "/algorithms", "/me", "/health", "/metrics",
        )
    }
    submit = doc["paths"][f"{PREFIX}/jobs"]["post"]
    assert submit["requestBody"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/JobSpec"}
    assert {"201", "401", "413", "422"} <= set(submit["responses"])
    spec = doc["components"]["schemas"]["JobSpec"]
    assert spec["required"] == ["task"] and "budget" in spec["properties"]
    assert doc["components"]["securitySchemes"]["HTTPBearer"]["scheme"] == "bearer"



def test_options_and_other_methods_a_path_does_not_take_list_every_method_it_does(
    live: LiveApi,
) -> None:
    doc = httpx.get(f"{live.base_url}{PREFIX}/openapi.json").json()
    for path, operations in doc["paths"].items():
        url = live.base_url + path.format(job_id="0123456789ab", candidate_id="0123456789ab")
        documented = {method.upper() for method in operations}
        for method in ("OPTIONS", "DELETE", "PUT", "PATCH", *({"GET", "POST"} - documented)):
            r = httpx.request(method, url)
            assert r.status_code == 405, (method, path, r.status_code)
            allowed = {m.strip() for m in r.headers["allow"].split(",")}
            assert allowed == documented, (method, path, r.headers["allow"])


# Operations whose every schema-valid request (on a real job) must be answered 200: the server
# refuses nothing the schema allows (and the generated negative cases above check the converse).
ACCEPTING = ["/jobs/{job_id}/events", "/jobs/{job_id}/candidates", "/jobs/{job_id}/generations",
             "/jobs/{job_id}/export"]


@pytest.mark.parametrize("path", ACCEPTING)
def test_every_request_the_schema_allows_is_answered_200(
    api_schema, admin: dict[str, str], finished_job: str, path: str
) -> None:
    operation = api_schema[PREFIX + path]["GET"]
    statuses = []

    @given(case=operation.as_strategy(generation_mode=GenerationMode.POSITIVE))
    @hypothesis_settings(
        max_examples=EXAMPLES_PER_OPERATION * 2,
        deadline=None,
        suppress_health_check=list(HealthCheck),
        derandomize=True,
        database=None,
    )
    def check(case) -> None:
        case.path_parameters = {"job_id": finished_job}
        response = case.call(headers=admin, timeout=30)
        assert response.status_code == 200, (case.query, case.headers, response.text)
        statuses.append(response.status_code)

    check()
    assert statuses


def schema_validator(doc: dict, schema: dict) -> jsonschema.Draft202012Validator:
    """Validates against ``schema`` of the API's document (its ``$ref``s resolved)."""
    return jsonschema.Draft202012Validator({**schema, "components": doc["components"]})


def test_last_event_id_is_the_digits_of_an_event_id_in_schema_and_server(
    live: LiveApi, admin: dict[str, str], finished_job: str
) -> None:
    doc = httpx.get(f"{live.base_url}{PREFIX}/openapi.json").json()
    (header,) = [p for p in doc["paths"][f"{PREFIX}/jobs/{{job_id}}/events"]["get"]["parameters"]
                 if p["in"] == "header"]
    assert header["name"].lower() == "last-event-id" and not header.get("required")
    assert header["schema"]["type"] == "string"  # a header is text: never null, never a number
    valid = schema_validator(doc, header["schema"])
    url = f"{live.base_url}{PREFIX}/jobs/{finished_job}/events"
    every = [int(line.removeprefix("id: ")) for line in httpx.get(url, headers=admin).text
             .splitlines() if line.startswith("id: ")]
    assert len(every) >= 3
    for value, answer in [
        (str(every[1]), 200), ("0", 200), ("9" * 19, 200),
        ("null", 422), ("", 422), ("-1", 422), ("1.0", 422), ("1_0", 422), ("9" * 20, 422),
    ]:
        r = httpx.get(url, headers={**admin, "Last-Event-ID": value})
        assert r.status_code == answer, (value, r.text)
        assert valid.is_valid(value) == (answer == 200), value
        if answer == 200:
            replayed = [int(line.removeprefix("id: ")) for line in r.text.splitlines()
                        if line.startswith("id: ")]
            assert replayed == [i for i in every if i > int(value)]


def test_score_bounds_that_cross_are_valid_and_match_no_candidate(
    live: LiveApi, admin: dict[str, str], finished_job: str
) -> None:
    url = f"{live.base_url}{PREFIX}/jobs/{finished_job}/candidates"
    r = httpx.get(url, headers=admin, params={"min_score": 0.75, "max_score": 0.25})
    assert r.status_code == 200, r.text
    assert r.json() == {"total": 0, "limit": 50, "offset": 0, "items": []}
    # the same bounds the right way round do match
    assert httpx.get(url, headers=admin, params={"min_score": 0, "max_score": 1}).json()["total"]


def test_a_task_named_by_a_string_is_a_built_in_one_in_schema_and_server(
    live: LiveApi, admin: dict[str, str]
) -> None:
    doc = httpx.get(f"{live.base_url}{PREFIX}/openapi.json").json()
    valid = schema_validator(doc, {"$ref": "#/components/schemas/JobSpec"})
    names = [t["name"] for t in httpx.get(f"{live.base_url}{PREFIX}/tasks", headers=admin).json()]
    assert {"sentiment", "arithmetic", "summary", "tsp"} <= set(names)
    url = f"{live.base_url}{PREFIX}/jobs"
    budget = {"calls": 1}  # within this server's maximum: the task is what is looked at
    for task in ["", "poetry", "Sentiment", "sentiment ", {"builtin": "poetry"},
                 {"builtin": "tsp"}]:
        assert not valid.is_valid({"task": task}), task
        r = httpx.post(url, headers=admin, json={"task": task, "budget": budget})
        assert r.status_code == 422, (task, r.text)
        assert ["body", "task"] in [p["loc"][:2] for p in r.json()["detail"]], (task, r.text)
    for name in names:
        assert valid.is_valid({"task": name}), name
        # refused here for its budget (one call cannot pay for a job), never for its task
        r = httpx.post(url, headers=admin, json={"task": name, "budget": budget})
        assert r.status_code == 422, (name, r.text)
        assert ["body", "task"] not in [p["loc"][:2] for p in r.json()["detail"]], (name, r.text)
