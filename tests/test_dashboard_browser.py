"""The dashboard in a real browser: headless Chromium driven by Playwright, against the real app
served on loopback with jobs on the scripted model.

A person signs in with a key, submits a job from the form, watches the chart gain a point per
generation (through a dropped event stream, resumed with Last-Event-ID), opens the winner's
family tree and its diffs, exports every format and compares two jobs; a bad spec shows each of
the server's messages beside the field it names; another tenant's job is never shown. A
screenshot of each view is written to EVO_TEST_ARTIFACTS (default: a temporary folder).

Chromium comes from Debian's package (`.ci/run` installs it); without it these tests fail,
they do not skip.
"""

from __future__ import annotations

import asyncio
import json
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from api.dashboard import dashboard_built
from api.routes_events import sse
from evo.app.settings import Settings
from evo.llm import LLMRequest, LLMResponse
from storage import Store
from tests.api_helpers import LiveApi, scripted_spec, wait_status
from workers.scripted import ScriptedClient

CHROMIUM = os.environ.get("EVO_TEST_CHROMIUM", "/usr/bin/chromium")
# Each call that writes a candidate (not one that scores an example) takes this long, so that a
# job's search runs for a few seconds, long enough to be watched, on any machine.
WRITE_LATENCY_S = 0.15
GENERATIONS = 10

SPEC = """\
name: watched live
task: sentiment
algorithm:
  name: evoprompt-ga
  population: 4
  generations: 2
  dev_subset: 6
models:
  task:
    provider: local
budget:
  calls: 20000
evaluation:
  top_k: 2
seed: 2
"""

# Appends what the chart shows each time it changes, with the job's status and the event
# stream's state at that moment.
WATCH_CHART = """() => {
  window.chartLog = [];
  new MutationObserver((records) => {
    // records come in batches: each one's value is the next one's old value
    const mine = records.filter((r) => r.target.id === "score-chart");
    mine.forEach((r, i) => {
      window.chartLog.push({
        points: Number(i + 1 < mine.length ? mine[i + 1].oldValue : r.target.dataset.points),
        status: document.querySelector(".page-head .badge")?.dataset.status ?? null,
        stream: document.getElementById("stream-state")?.dataset.state ?? null,
      });
    });
  }).observe(document.body, {
    subtree: true, attributes: true, attributeOldValue: true, attributeFilter: ["data-points"],
  });
}"""


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not Path(CHROMIUM).is_file():
        pytest.fail(
            f"no Chromium at {CHROMIUM}: install Debian's package (`apt-get install -y "
            "chromium`, which .ci/run does) or point EVO_TEST_CHROMIUM at one",
            pytrace=False,
        )
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.fail("Playwright for Python is missing: pip install -e '.[dev]'", pytrace=False)
    if not dashboard_built():
        pytest.fail("the dashboard is not built: cd web && npm ci && npm run build "
                    "(.ci/run does this before the tests)", pytrace=False)
    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield chromium
        chromium.close()


@pytest.fixture(scope="module")
def artifacts(tmp_path_factory: pytest.TempPathFactory) -> Path:
    given = os.environ.get("EVO_TEST_ARTIFACTS")
    folder = Path(given) if given else tmp_path_factory.mktemp("dashboard-artifacts")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveApi]:
    real_call = ScriptedClient.call

    async def slower(self: ScriptedClient, request: LLMRequest) -> LLMResponse:
        if not request.labels:
            await asyncio.sleep(WRITE_LATENCY_S)
        return await real_call(self, request)

    url = f"sqlite:///{tmp_path_factory.mktemp('dashboard-browser-db') / 'evo.db'}"
    settings = Settings(database_url=url, executor="inprocess", max_jobs=2)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(ScriptedClient, "call", slower)
        with Store(url) as store, LiveApi(store, settings) as api:
            yield api


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1280, "height": 900}, accept_downloads=True)
    context.set_default_timeout(20_000)
    tab = context.new_page()
    errors: list[str] = []
    tab.on("pageerror", lambda exc: errors.append(str(exc)))
    yield tab
    context.close()
    assert not errors, f"the page threw: {errors}"


def sign_in(page: Any, api: LiveApi, key: str) -> None:
    page.goto(api.base_url + "/")
    page.fill("#api-key", key)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_selector("#jobs-table tbody tr")  # loaded: a job, or the line saying none


def sign_in_with_a_long_job(page: Any, api: LiveApi, key: str, client: Any, seed: int) -> dict:
    """Submit a long scripted job, wait until it runs, and open the dashboard signed in."""
    job = client.post("/jobs", json=scripted_spec(generations=60, seed=seed)).json()
    wait_status(client, job["id"], "running")
    sign_in(page, api, key)
    return dict(job)


def open_form(page: Any) -> None:
    if page.get_attribute("#new-job", "open") is None:
        page.click("#new-job summary")
    page.wait_for_selector('[data-path="algorithm.population"]')


def field(path: str) -> str:
    return f'[data-path="{path}"]'


def error_beside(path: str) -> str:
    return f'.field-error[data-for="{path}"]'


def shoot(page: Any, folder: Path, name: str) -> None:
    page.wait_for_timeout(300)  # let the charts and the graph settle
    page.screenshot(path=str(folder / f"{name}.png"), full_page=True)


def test_sign_in_submit_watch_explain_export_and_compare(
    live: LiveApi, page: Any, artifacts: Path
) -> None:
    alice_key, bob_key = live.key("alice"), live.key("bob")
    with live.client(alice_key) as alice, live.client(bob_key) as bob:
        theirs = bob.post("/jobs", json=scripted_spec(generations=1, seed=2)).json()
        earlier = alice.post("/jobs", json=scripted_spec(generations=3, seed=4)).json()
        wait_status(alice, earlier["id"], "completed")
        wait_status(bob, theirs["id"], "completed")

        # sign in: a wrong key is refused on the spot
        page.goto(live.base_url + "/")
        page.wait_for_selector("#api-key")
        shoot(page, artifacts, "login")
        page.fill("#api-key", "not-a-key")
        page.get_by_role("button", name="Sign in").click()
        page.wait_for_selector("text=This key was refused")
        sign_in(page, live, alice_key)
        page.wait_for_selector(f'tr[data-job="{earlier["id"]}"]')
        assert page.locator(f'tr[data-job="{theirs["id"]}"]').count() == 0

        # the event stream drops after two events; the page must resume after the second
        headers: list[str | None] = []
        resumed_after: list[int] = []

        def events(route: Any) -> None:
            headers.append(route.request.headers.get("last-event-id"))
            if len(headers) > 1:
                route.continue_()
                return
            job_id = route.request.url.split("/jobs/")[1].split("/")[0]
            deadline = time.monotonic() + 20
            while len(rows := live.store.events(job_id)) < 2:
                assert time.monotonic() < deadline, "the job wrote no events"
                time.sleep(0.02)
            resumed_after.append(rows[1][0])
            body = "".join(sse(i, str(p["kind"]), p) for i, p in rows[:2])
            route.fulfill(status=200, headers={"Content-Type": "text/event-stream"}, body=body)

        page.route("**/api/v1/jobs/*/events", events)

        # submit from the form: the spec editor and the fields edit one spec
        open_form(page)
        page.fill("#spec-editor", SPEC)
        page.dispatch_event("#spec-editor", "input")
        assert page.input_value(field("algorithm.population")) == "4"
        page.fill(field("algorithm.generations"), str(GENERATIONS))
        page.select_option(field("models.task.provider"), "scripted")
        edited = yaml.safe_load(page.input_value("#spec-editor"))
        assert edited["algorithm"]["generations"] == GENERATIONS
        assert edited["models"]["task"]["provider"] == "scripted"
        shoot(page, artifacts, "jobs")
        page.evaluate(WATCH_CHART)
        page.get_by_role("button", name="Submit job").click()
        page.wait_for_url("**/#/jobs/*")
        job_id = page.url.rsplit("/", 1)[1]

        # watch it: one point per generation, added while the job runs
        page.wait_for_selector("#leaderboard-table", timeout=45_000)
        page.wait_for_selector('#stream-state[data-state="closed"]')
        log = page.evaluate("window.chartLog")
        counts = [entry["points"] for entry in log]
        assert counts[-1] == GENERATIONS + 1
        grown = [n for i, n in enumerate(counts) if n and (i == 0 or n != counts[i - 1])]
        assert grown == list(range(1, GENERATIONS + 2)), counts
        assert any(e["status"] == "running" and e["stream"] == "open" and e["points"] > 2
                   for e in log), log
        assert headers[0] is None and headers[1] == str(resumed_after[0])
        job = wait_status(alice, job_id, "completed")
        assert page.text_content('[data-meter="calls"] .meter-value').startswith(
            f"{job['stats']['calls']:,} / 20,000")

        # the leaderboard, then the candidates sorted by length on the server
        board = page.locator("#leaderboard-table tbody tr[data-candidate]")
        assert board.count() == 2
        assert board.first.get_attribute("data-candidate") == job["best_candidate_id"]
        # the paired test of the winner against the best seed on test, as the job states it
        sentence = job["stats"]["vs_seed"]["sentence"]
        assert sentence.lower() in page.text_content("#versus-seed").lower()
        page.click('#candidates-table button[data-sort="length"]')
        page.wait_for_selector('#candidates-table th[aria-sort="descending"] [data-sort="length"]')
        page.wait_for_function("""() => {
          const cells = [...document.querySelectorAll('#candidates-table tbody td:nth-child(4)')];
          const n = cells.map((c) => Number(c.textContent));
          return n.length > 1 && n.every((v, i) => i === 0 || n[i - 1] >= v);
        }""")
        shoot(page, artifacts, "job")

        # export: each format downloads exactly what the API serves
        files: dict[str, str] = {}
        for fmt in ("json", "yaml", "md", "txt"):
            with page.expect_download() as download:
                page.click(f'[data-export="{fmt}"]')
            files[fmt] = saved = Path(download.value.path()).read_text(encoding="utf-8")
            served = alice.get(f"/jobs/{job_id}/export", params={"format": fmt, "top": 2}).text
            assert saved == served
            assert download.value.suggested_filename == f"evo-{job_id[:8]}.{fmt}"
            page.wait_for_selector(f'pre.export-text[data-format="{fmt}"]')
        exported = json.loads(files["json"])
        assert exported["prompts"][0]["candidate_id"] == job["best_candidate_id"]
        assert yaml.safe_load(files["yaml"]) == exported
        assert files["md"].startswith("# watched live")
        assert files["txt"].split("\n\n")[0] == exported["prompts"][0]["prompt"]

        # the winner's family tree: its prompt and what changed from each parent
        page.click("#winner-lineage")
        page.wait_for_selector("#candidate-detail .diff")
        best = alice.get(f"/candidates/{job['best_candidate_id']}").json()
        assert best["parents"], "the winner of this seed should not be a seed prompt"
        ancestors = alice.get(f"/candidates/{best['id']}/ancestry").json()["ancestors"]
        assert int(page.get_attribute("#lineage-graph", "data-nodes")) == len(ancestors) + 1
        assert page.text_content("#detail-prompt") == best["text"]
        assert page.locator("#candidate-detail .diff-block").count() == len(best["parents"])
        assert page.locator("#candidate-detail .diff ins, #candidate-detail .diff del").count()
        shoot(page, artifacts, "lineage")
        seed = next(a for a in ancestors if a["operator"] == "seed")
        page.click(f'#members-table tr[data-candidate="{seed["id"]}"]')
        page.wait_for_selector("text=A seed: it has no parents.")
        assert page.text_content("#detail-prompt") == seed["text"]

        # compare the two jobs on one chart and one table
        page.goto(live.base_url + "/#/jobs")
        for one in (job_id, earlier["id"]):
            page.check(f'tr[data-job="{one}"] input[type="checkbox"]')
        page.click("#compare-selected")
        page.wait_for_selector(f'#compare-table tr[data-job="{earlier["id"]}"]')
        assert page.locator("#compare-table tbody tr").count() == 2
        assert page.get_attribute("#compare-chart", "data-points") == str(GENERATIONS + 1)
        shoot(page, artifacts, "compare")

        # another tenant's job is not there, whichever way it is asked for
        for view in (f"#/jobs/{theirs['id']}", f"#/jobs/{theirs['id']}/lineage"):
            page.goto(f"{live.base_url}/{view}")
            page.wait_for_selector("#job-error, #lineage-error")
            assert "no such job" in page.text_content("#job-error, #lineage-error")


def test_a_bad_spec_shows_each_message_beside_its_field(
    live: LiveApi, page: Any, artifacts: Path
) -> None:
    key = live.key("dave")
    sign_in(page, live, key)
    open_form(page)
    page.fill("#spec-editor", SPEC + "colour: red\n")
    page.dispatch_event("#spec-editor", "input")
    page.fill(field("budget.calls"), "lots")
    page.get_by_role("button", name="Submit job").click()
    budget = page.locator(error_beside("budget.calls"))
    budget.wait_for()
    assert "valid integer" in budget.text_content()
    assert page.get_attribute(field("budget.calls"), "aria-invalid") == "true"
    # a field without an input of its own is named beside the editor
    assert "colour" in page.text_content(error_beside("spec"))
    assert page.text_content(error_beside("seed")) == ""

    # the method's parameters are checked next: beside the population
    page.fill("#spec-editor", SPEC)
    page.dispatch_event("#spec-editor", "input")
    page.fill(field("algorithm.population"), "1")
    page.get_by_role("button", name="Submit job").click()
    population = page.locator(error_beside("algorithm.population"))
    population.wait_for()
    assert "greater than or equal to 2" in population.text_content()
    assert page.text_content(error_beside("budget.calls")) == ""
    assert page.text_content(error_beside("spec")) == ""
    shoot(page, artifacts, "submit-errors")

    # then the server's own limits: a budget over its maximum, beside the budget
    page.fill(field("algorithm.population"), "4")
    page.fill(field("budget.calls"), "100000000")
    page.get_by_role("button", name="Submit job").click()
    budget.wait_for()
    assert "100000" in budget.text_content()
    assert page.text_content(error_beside("algorithm.population")) == ""

    # YAML that does not parse is caught before anything is sent
    page.fill("#spec-editor", "task: [sentiment\n")
    page.dispatch_event("#spec-editor", "input")
    page.get_by_role("button", name="Submit job").click()
    assert "line" in page.text_content(error_beside("spec"))
    with live.client(key) as dave:
        assert dave.get("/jobs").json()["total"] == 0


def test_pause_resume_and_cancel_from_the_jobs_table(live: LiveApi, page: Any) -> None:
    key = live.key("erin")
    with live.client(key) as erin:
        job = sign_in_with_a_long_job(page, live, key, erin, seed=6)
        page.on("dialog", lambda dialog: dialog.accept())  # "Cancel job ...?"
        row = f'tr[data-job="{job["id"]}"]'

        def when(status: str) -> None:
            page.wait_for_selector(f'{row} .badge[data-status="{status}"]', timeout=30_000)

        when("running")
        # its best search score so far and its spend, from the job's stats as it runs
        page.wait_for_selector(f"{row} td.num:text-matches('^[01][.][0-9]{{3}}$')", timeout=30_000)
        page.wait_for_selector(f"{row} .spend span:text-matches('^[1-9][0-9,]*( / |$)')")
        assert page.locator(f"{row} [data-action]").evaluate_all(
            "bs => bs.map(b => b.dataset.action)") == ["pause", "cancel"]
        page.click(f'{row} [data-action="pause"]')
        when("paused")  # after its generation's checkpoint
        assert wait_status(erin, job["id"], "paused")["status"] == "paused"
        page.click(f'{row} [data-action="resume"]')
        page.wait_for_selector(f'{row} .badge:is([data-status="queued"], [data-status="running"])')
        wait_status(erin, job["id"], "running")
        page.click(f'{row} [data-action="cancel"]')
        when("cancelled")
        stopped = wait_status(erin, job["id"], "cancelled")
        assert stopped["stats"]["candidates"] > 0  # what it recorded is kept


def test_compare_follows_a_running_job_a_page_at_a_time(live: LiveApi, page: Any) -> None:
    key = live.key("fay")
    with live.client(key) as fay:
        job = sign_in_with_a_long_job(page, live, key, fay, seed=8)
        asked: list[str] = []
        page.on("request", lambda r: asked.append(r.url) if "/generations" in r.url else None)
        page.evaluate(f"location.hash = '#/compare/{job['id']}'")
        chart = "#compare-chart"

        def drawn() -> int:
            return int(page.get_attribute(chart, "data-points") or 0)

        page.wait_for_function(
            f"() => Number(document.querySelector('{chart}')?.dataset.points) >= 3",
            timeout=30_000)
        seen = drawn()
        page.wait_for_function(
            f"() => Number(document.querySelector('{chart}').dataset.points) > {seen}",
            timeout=30_000)  # it grows while the job runs
        # after the first read, each poll asks only for the generations after those it holds
        after = [int(u.split("after=")[1].split("&")[0]) for u in asked]
        assert after[0] == -1 and max(after) >= 0, asked
        mark = len(asked)
        fay.post(f"/jobs/{job['id']}/cancel")
        wait_status(fay, job["id"], "cancelled")
        gens = fay.get(f"/jobs/{job['id']}/generations").json()
        # once it has stopped, the whole job is read again (the next poll, within 3 s; the
        # chart may hold every generation before that, from the pages) and drawn in full
        for _ in range(100):
            if any(u.endswith("after=-1") for u in asked[mark:]):
                break
            page.wait_for_timeout(100)
        page.wait_for_function(
            f"() => document.querySelector('{chart}').dataset.points === '{len(gens)}'",
            timeout=30_000)
        assert asked[-1].endswith("after=-1"), asked[mark:]
        cells = page.locator(f'#compare-table tr[data-job="{job["id"]}"] td.num')
        assert cells.first.text_content() == str(len(gens))


def boxes(page: Any, attribute: str) -> list[list[float]]:
    return json.loads(page.get_attribute("#lineage-graph", attribute) or "[]")


def test_scores_say_their_split_and_the_chart_spans_the_planned_generations(
    live: LiveApi, page: Any, artifacts: Path
) -> None:
    key = live.key("hana")
    with live.client(key) as hana:
        spec = scripted_spec(generations=4, seed=12)
        job = wait_status(hana, hana.post("/jobs", json=spec).json()["id"], "completed")
        rows = live.store.events(job["id"])
        kinds = [str(p["kind"]) for _, p in rows]
        # the page hears of one generation only, as if the job were still in its first
        first = rows[: kinds.index("GenerationDone") + 1]
        body = "".join(sse(i, str(p["kind"]), p) for i, p in first)
        page.route("**/api/v1/jobs/*/events", lambda route: route.fulfill(
            status=200, headers={"Content-Type": "text/event-stream"}, body=body))
        sign_in(page, live, key)
        page.goto(f"{live.base_url}/#/jobs/{job['id']}")
        page.wait_for_selector('#score-chart[data-points="1"][data-x-ticks]')
        chart = page.locator("#score-chart")
        # one generation drawn, the axis over the job's 5 (0 to 4), one tick per generation
        assert (chart.get_attribute("data-x-min"), chart.get_attribute("data-x-max")) == ("0", "4")
        assert chart.get_attribute("data-x-ticks") == "0,1,2,3,4"

        # each candidate's score names the examples it is on, as the API says
        page.wait_for_selector("#leaderboard-table")
        page.wait_for_selector("#candidates-table td.score-cell")
        page_one = hana.get(f"/jobs/{job['id']}/candidates", params={"sort": "-score", "limit": 20})
        listed = {c["id"]: c for c in page_one.json()["items"]}
        cells = page.locator("#candidates-table tbody tr[data-candidate]")
        assert cells.count() == len(listed)
        shown = {"full": 0, "sample": 0}
        for i in range(cells.count()):
            row = cells.nth(i)
            c = listed[row.get_attribute("data-candidate")]
            cell = row.locator("td.score-cell")
            basis = cell.locator(".basis").all_text_contents()
            if c["score_on"]["subset"] is None:
                assert cell.get_attribute("data-basis") == "full"
                assert basis == ["full dev · n=100",
                                 f"search {c['search_score']['value']:.3f} · dev sample · n=6"]
            else:
                assert cell.get_attribute("data-basis") == "sample"
                assert basis == ["dev sample · n=6"]
            shown[cell.get_attribute("data-basis")] += 1
        assert shown["full"] and shown["sample"], shown
        # and the leaderboard says what it ranks by
        assert "ranked by full-dev score" in page.text_content("#leaderboard-basis")
        assert "all 100 dev examples" in page.text_content("#leaderboard-basis")
        assert page.text_content("#leaderboard-table th:nth-child(2)") == "Full dev (n=100)"
        shoot(page, artifacts, "job-scores")


def test_every_edge_label_of_the_family_tree_is_drawn_whole(
    live: LiveApi, page: Any, artifacts: Path
) -> None:
    key = live.key("ivan")
    with live.client(key) as ivan:
        job = wait_status(ivan, ivan.post("/jobs", json=scripted_spec(generations=3, seed=2))
                          .json()["id"], "completed")
        # the newest candidate with the largest family
        newest = ivan.get(f"/jobs/{job['id']}/candidates",
                          params={"generation": 3, "limit": 50}).json()["items"]
        families = [(c, ivan.get(f"/candidates/{c['id']}/ancestry").json()["ancestors"])
                    for c in newest]
        child, ancestors = max(families, key=lambda f: len(f[1]))
        sign_in(page, live, key)
        page.goto(f"{live.base_url}/#/jobs/{job['id']}/lineage/{child['id']}")
        page.wait_for_selector("#lineage-graph[data-label-boxes]")
        members = {child["id"]} | {a["id"] for a in ancestors}
        edges = {(p, m["id"]) for m in [child, *ancestors] for p in m["parents"] if p in members}
        labels, nodes = boxes(page, "data-label-boxes"), boxes(page, "data-node-boxes")
        assert len(labels) == len(edges) > 0 and len(nodes) == len(members)
        width, height = page.evaluate(
            "() => { const g = document.getElementById('lineage-graph');"
            " return [g.clientWidth, g.clientHeight]; }")

        def apart(a: list[float], b: list[float]) -> bool:
            return a[2] <= b[0] or b[2] <= a[0] or a[3] <= b[1] or b[3] <= a[1]

        for label in labels:
            x1, y1, x2, y2 = label
            assert 0 <= x1 < x2 <= width and 0 <= y1 < y2 <= height, (label, width, height)
            assert all(apart(label, n) for n in nodes), label
        assert all(apart(a, b) for i, a in enumerate(labels) for b in labels[i + 1:])
        shoot(page, artifacts, "lineage-labels")


def test_a_search_warning_shows_live_and_when_the_page_is_opened_later(
    live: LiveApi, page: Any, artifacts: Path
) -> None:
    key = live.key("jude")
    message = ("Every candidate scored the same (0.500): the task model may be answering one "
               "label to everything, or the dev sample may be too small to tell prompts apart.")
    with live.client(key) as jude:
        job = sign_in_with_a_long_job(page, live, key, jude, seed=14)
        page.goto(f"{live.base_url}/#/jobs/{job['id']}")
        page.wait_for_selector('#stream-state[data-state="open"]')
        page.wait_for_selector("#score-chart:not([data-points='0'])", timeout=30_000)
        assert page.locator("#job-warnings").is_hidden()
        # the job says it once, as a running job does: stored with its events
        live.store.write_batch(job["id"], events=[{
            "kind": "SearchWarning", "job_id": job["id"], "code": "no_spread",
            "message": message}])
        warning = page.locator('#job-warnings .warning[data-code="no_spread"]')
        warning.wait_for(timeout=20_000)
        assert warning.locator(".warning-text").text_content() == message
        shoot(page, artifacts, "job-warning")
        jude.post(f"/jobs/{job['id']}/cancel")
        wait_status(jude, job["id"], "cancelled")

        # opened after the fact: read again from the stored events, shown once
        page.reload()
        page.wait_for_selector('#stream-state[data-state="closed"]')
        assert page.locator("#job-warnings .warning").count() == 1
        assert page.text_content('#job-warnings [data-code="no_spread"] .warning-text') == message


def test_a_key_that_sees_no_jobs_is_told_which_jobs_it_sees(live: LiveApi, page: Any,
                                                             artifacts: Path) -> None:
    key = live.key("kim")
    sign_in(page, live, key)
    why = page.locator("#no-jobs")
    why.wait_for()
    text = why.text_content()
    assert 'No jobs owned by "kim"' in text
    assert 'evo keys create "$USER"' in text and "EVO_OWNER=kim" in text
    assert "admin key" in text
    assert page.text_content("#whose-jobs") == 'Jobs owned by "kim", the name of this key.'
    shoot(page, artifacts, "jobs-empty")


def test_a_data_set_job_shows_its_items_and_per_round_counts(live: LiveApi, page: Any,
                                                             artifacts: Path) -> None:
    key = live.key("lee")
    spec = {"name": "instructions", "task": "sentiment",
            "models": {"task": {"provider": "scripted"}},
            "algorithm": {"name": "evol-instruct", "rounds": 2, "seeds": 6},
            "budget": {"calls": 200}, "seed": 3}
    with live.client(key) as lee:
        job = lee.post("/jobs", json=spec).json()
        wait_status(lee, job["id"], "completed")
        data = lee.get(f"/jobs/{job['id']}/dataset").json()
    sign_in(page, live, key)
    option = page.locator('[data-path="algorithm.name"] option[value="evol-instruct"]')
    assert option.text_content() == "evol-instruct (makes a data set)"
    page.goto(f"{live.base_url}/#/jobs/{job['id']}")
    page.wait_for_selector("#dataset-rounds tbody tr")
    rounds = page.locator("#dataset-rounds tbody tr")
    assert rounds.count() == 3 == len(data["rounds"])
    for i, r in enumerate(data["rounds"]):
        cells = rounds.nth(i).locator("td").all_text_contents()
        assert cells[1:3] == [str(r["kept"]), str(r["eliminated"])]
    items = page.locator("#dataset-items tbody tr")
    assert items.count() == min(20, data["total"]) > 0
    first = data["items"][0]
    assert items.first.locator(".prompt").all_text_contents() == [first["instruction"],
                                                                  first["response"]]
    # no best prompt: no score chart, no winner's family tree, no prompt export
    assert page.locator("#score-chart").is_hidden()
    assert page.locator("#winner-lineage").count() == 0
    shoot(page, artifacts, "dataset")
    items.first.get_by_role("link", name="family tree").click()
    page.wait_for_url(f"**/#/jobs/{job['id']}/lineage/{first['id']}")
    # the family tree of the last item: one ancestor per round back to its seed
    last = data["items"][-1]
    page.goto(f"{live.base_url}/#/jobs/{job['id']}/lineage/{last['id']}")
    page.wait_for_selector("#lineage-graph[data-nodes]")
    assert int(page.get_attribute("#lineage-graph", "data-nodes")) == last["round"] + 1
    shoot(page, artifacts, "dataset-lineage")
