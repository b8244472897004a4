"""In CI a skip is a failure: tests/conftest.py's hooks on a tiny suite in a pytest subprocess, and `make browser`.

A missing prerequisite (the shared data, chromium, sshd) makes a test skip; `.ci/run` sets CI=true, and
there every such skip (in a test, its fixture, a skip mark, or a module's collection) must fail the run.
Outside CI the same suite passes with its skips.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

TINY = """
import pytest


@pytest.fixture
def prerequisite():
    pytest.skip("prerequisite missing")


def test_skips_in_its_fixture(prerequisite):
    pass


def test_skips_in_its_body():
    pytest.skip("tool missing")


@pytest.mark.skip(reason="marked")
def test_marked_skip():
    pass


@pytest.mark.xfail(reason="a known failure, not a missing prerequisite")
def test_xfail():
    assert False


def test_passes():
    pass
"""

MODULE_SKIP = (
    'import pytest\n\npytest.importorskip("no_such_module_here")\n\n\ndef test_never_runs():\n    pass\n'
)


def _run_tiny(tmp_path: Path, ci: str | None) -> subprocess.CompletedProcess:
    shutil.copy(Path(__file__).with_name("conftest.py"), tmp_path / "conftest.py")
    (tmp_path / "pytest.ini").write_text("[pytest]\n")
    (tmp_path / "test_tiny.py").write_text(TINY)
    (tmp_path / "test_module_skip.py").write_text(MODULE_SKIP)
    env = {k: v for k, v in os.environ.items() if k != "CI"}
    if ci is not None:
        env["CI"] = ci
    env["PYTHONPATH"] = os.pathsep.join(
        [str(Path(__file__).parents[1] / "platform"), env.get("PYTHONPATH", "")]
    )
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-rA",
            "-p",
            "no:cacheprovider",
            "--continue-on-collection-errors",
        ]
        + [str(tmp_path)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def _counts(out: str) -> dict[str, int]:
    last = out.strip().splitlines()[-1]
    return {word: int(n) for n, word in re.findall(r"(\d+) (\w+)", last)}


def test_in_ci_every_skip_fails_the_run(tmp_path):
    res = _run_tiny(tmp_path, ci="true")
    out = res.stdout + res.stderr
    assert res.returncode != 0, out
    counts = _counts(res.stdout)
    # a skip in setup (fixture, mark) or collection reports as an error, in the body as a failure
    assert counts.get("failed", 0) + counts.get("errors", 0) == 4, out
    assert "skipped" not in counts and counts.get("passed") == 1 and counts.get("xfailed") == 1, out
    for reason in ("prerequisite missing", "tool missing", "marked", "no_such_module_here"):
        assert re.search(rf"skipped in CI \(CI=true\), which counts as a failure: .*{reason}", out), reason


def test_outside_ci_the_same_skips_pass(tmp_path):
    res = _run_tiny(tmp_path, ci=None)
    assert res.returncode == 0, res.stdout + res.stderr
    counts = _counts(res.stdout)
    assert counts == {"passed": 1, "skipped": 4, "xfailed": 1}, res.stdout


def _make_browser(tmp_path: Path, ci: str | None) -> subprocess.CompletedProcess:
    """`make browser` where chromium is missing and cannot be installed (no real apt-get run)."""
    env = {k: v for k, v in os.environ.items() if k != "CI"} | ({"CI": ci} if ci is not None else {})
    args = ["make", "-s", "browser", f"CHROMIUM={tmp_path / 'no-chromium'}", "APT=false"]
    cwd = Path(__file__).parents[1]
    return subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=60)


def test_make_browser_fails_in_ci_when_chromium_cannot_be_installed(tmp_path):
    res = _make_browser(tmp_path, ci="true")
    assert res.returncode != 0 and "CI is set so this fails" in res.stdout, res.stdout + res.stderr
    res = _make_browser(tmp_path, ci=None)
    assert res.returncode == 0 and "the MLflow UI test will skip" in res.stdout, res.stdout + res.stderr
