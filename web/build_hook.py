"""Setuptools hook (named in pyproject.toml): build the dashboard from web/ into api/static/
when a wheel or an sdist is made from a checkout that has not built it yet, so that
`pip install .` gives an `evo serve` that shows the dashboard at /.

Built files already there are used as they are (CI builds them first with `npm ci && npm run
build`). Without npm the package is built without the dashboard, with a warning: the API works,
and / says how to build it. EVO_SKIP_DASHBOARD_BUILD=1 skips the build on purpose.
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
from pathlib import Path

from setuptools.command.build_py import build_py
from setuptools.command.sdist import sdist

log = logging.getLogger(__name__)

ROOT = Path(__file__).resolve().parents[1]
WEB = ROOT / "web"
BUILT = ROOT / "api" / "static" / "index.html"


def build_dashboard() -> None:
    if BUILT.is_file():
        return
    if os.environ.get("EVO_SKIP_DASHBOARD_BUILD") == "1":
        log.warning("EVO_SKIP_DASHBOARD_BUILD=1: building without the dashboard")
        return
    if not (WEB / "package-lock.json").is_file():
        return  # nothing to build from
    npm = shutil.which("npm")
    if npm is None:
        log.warning(
            "npm not found: building without the dashboard (the API works; / says how to "
            "build it). Install Node.js 18+ and reinstall, or run `npm ci && npm run build` "
            "in web/."
        )
        return
    # exactly the locked dependency tree, then the bundle into api/static/
    subprocess.run([npm, "ci", "--no-audit", "--no-fund"], cwd=WEB, check=True)
    subprocess.run([npm, "run", "build"], cwd=WEB, check=True)


# folders the build makes inside the `api` package: data, not code, but setuptools warns about
# any folder it did not see when it looked for packages (before the build made them)
STATIC_PACKAGES = ("api.static", "api.static.assets")


class BuildPy(build_py):
    def run(self) -> None:
        build_dashboard()
        if BUILT.is_file():
            missing = [p for p in STATIC_PACKAGES if p not in self.packages]
            self.packages = [*self.packages, *missing]
        super().run()


class Sdist(sdist):
    def run(self) -> None:
        build_dashboard()
        super().run()

    def make_distribution(self) -> None:
        # this hook (pyproject.toml names it) and the dashboard's sources with their lock file
        self.filelist.extend(
            str(path.relative_to(ROOT))
            for path in sorted(WEB.rglob("*"))
            if path.is_file() and "node_modules" not in path.parts and path.suffix != ".pyc"
        )
        super().make_distribution()
