"""deploy/: the image recipe, the compose file and the KubeRay manifests agree with the code.

No container runtime is needed: these read the files and check what they rely on (commands and
their options, settings, packages, ports) against the project itself, so a renamed option or a
new package cannot silently break a deployment.
"""

from __future__ import annotations

import re
import shlex
import tomllib
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from evo.app.cli import app
from evo.app.settings import Settings

ROOT = Path(__file__).resolve().parents[1]
DEPLOY = ROOT / "deploy"
OTHER_ENV = {"RAY_AUTH_MODE", "RAY_AUTH_TOKEN", "OPENAI_API_KEY"}


def evo_commands(shell: str) -> list[list[str]]:
    """Each `evo ...` command line in a shell string, split into words."""
    out = []
    for part in re.split(r"&&|;|\n", shell):
        words = shlex.split(part.replace("exec ", " "))
        if words and words[0] == "evo":
            out.append(words)
    return out


def check_evo_command(words: list[str]) -> None:
    """The subcommand exists and knows every option given: the CLI parses the words, then
    `--help` (eager) stops it before anything runs."""
    assert words[0] == "evo"
    result = CliRunner().invoke(app, [*words[1:], "--help"])
    assert result.exit_code == 0, f"{shlex.join(words)}: {result.output}"


def check_env(names: set[str]) -> None:
    fields = set(Settings.model_fields)
    for name in names:
        if name.startswith("EVO_"):
            assert name[4:].lower() in fields, f"{name} is no Evo setting"
        else:
            assert name in OTHER_ENV, f"unexpected variable {name}"


def test_the_image_copies_every_package_the_wheel_needs() -> None:
    text = (DEPLOY / "Dockerfile").read_text()
    copied = re.findall(r"^COPY (?!--from)(.+) (\S+)$", text, flags=re.M)
    sources = {src for line, _ in copied for src in line.split()}
    for src in sources:  # every path copied from the build context exists
        assert (ROOT / src.rstrip("/")).exists(), f"COPY {src}: no such path"
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    for pattern in project["tool"]["setuptools"]["packages"]["find"]["include"]:
        top = pattern.rstrip("*")
        assert f"{top}/" in sources, f"package {top} is not copied into the wheel build"
    # the build hook named in pyproject.toml, and the built dashboard it then finds
    assert "web/build_hook.py" in sources
    assert "COPY --from=dashboard /src/api/static/ api/static/" in text
    ignored = (DEPLOY / "Dockerfile.dockerignore").read_text().splitlines()
    for secret_or_local in ("deploy/.env", "**/.venv", "web/node_modules", ".git"):
        assert secret_or_local in ignored  # never sent to the builder
    cmd = re.search(r"^CMD (\[.*\])$", text, flags=re.M)
    assert cmd is not None
    check_evo_command(yaml.safe_load(cmd.group(1)))


def test_compose_runs_real_commands_with_real_settings() -> None:
    compose = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    services = compose["services"]
    assert {"evo", "ray-worker", "postgres", "redis"} <= set(services)
    evo = services["evo"]
    shell = evo["command"][-1]
    commands = evo_commands(shell)
    assert [c[:2] for c in commands] == [["evo", "serve"]]
    for words in commands:
        check_evo_command(words)
    port = commands[0][commands[0].index("--port") + 1]
    assert evo["ports"] == [f"{port}:{port}"]
    assert f"127.0.0.1:{port}/api/v1/health" in " ".join(evo["healthcheck"]["test"])
    # the workers join the head at the port it listens on
    head_port = re.search(r"--head --port=(\d+)", shell).group(1)
    assert f"--address=evo:{head_port}" in " ".join(services["ray-worker"]["command"])
    for name in ("evo", "ray-worker"):
        env = services[name]["environment"]
        check_env(set(env))
        assert env["RAY_AUTH_MODE"] == "token"  # a cluster reachable by others needs a token
        url = env["EVO_DATABASE_URL"]
        assert url.startswith("postgresql+psycopg://") and "@postgres:5432/" in url
        assert env["EVO_REDIS_URL"].startswith("redis://redis:6379/")
    example = (DEPLOY / "env.example").read_text()
    names = set(re.findall(r"^#? ?([A-Z][A-Z0-9_]+)=", example, flags=re.M))
    check_env(names - {"POSTGRES_PASSWORD"})
    assert "/deploy/.env" in (ROOT / ".gitignore").read_text().splitlines()


def test_the_kuberay_head_serves_evo_and_the_service_reaches_it() -> None:
    docs = list(yaml.safe_load_all((DEPLOY / "kuberay" / "raycluster.yaml").read_text()))
    cluster = next(d for d in docs if d["kind"] == "RayCluster")
    service = next(d for d in docs if d["kind"] == "Service")
    assert cluster["metadata"]["annotations"]["ray.io/overwrite-container-cmd"] == "true"
    head = cluster["spec"]["headGroupSpec"]["template"]["spec"]["containers"][0]
    shell = head["args"][0]
    assert "${KUBERAY_GEN_RAY_START_CMD/--block/}" in shell  # the head must not block the API
    commands = evo_commands(shell.replace("${KUBERAY_GEN_RAY_START_CMD/--block/}", ""))
    assert [c[:2] for c in commands] == [["evo", "serve"]]
    for words in commands:
        check_evo_command(words)
    port = int(commands[0][commands[0].index("--port") + 1])
    named = {p["name"]: p["containerPort"] for p in head["ports"]}
    assert named["evo-api"] == port == head["readinessProbe"]["httpGet"]["port"]
    assert service["spec"]["ports"][0]["targetPort"] == "evo-api"
    labels = service["spec"]["selector"]
    assert labels == {"ray.io/cluster": cluster["metadata"]["name"], "ray.io/node-type": "head"}
    check_env({e["name"] for e in head["env"]})
    for group in cluster["spec"]["workerGroupSpecs"]:
        worker = group["template"]["spec"]["containers"][0]
        assert worker["image"] == head["image"]  # actors import the same code as the driver
        assert "$KUBERAY_GEN_RAY_START_CMD" in worker["args"][0]
    secret = yaml.safe_load((DEPLOY / "kuberay" / "secret.example.yaml").read_text())
    for container in [head] + [g["template"]["spec"]["containers"][0]
                               for g in cluster["spec"]["workerGroupSpecs"]]:
        assert container["envFrom"] == [{"secretRef": {"name": secret["metadata"]["name"]}}]
    check_env(set(secret["stringData"]))


@pytest.mark.parametrize("words", [["evo", "serve", "--hots", "x"], ["evo", "nosuch"]])
def test_the_checks_catch_a_wrong_command(words: list[str]) -> None:
    with pytest.raises(AssertionError):
        check_evo_command(words)
