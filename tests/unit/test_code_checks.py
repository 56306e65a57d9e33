"""The codebase checks itself: ruff (pyproject.toml), mypy and the import-linter layers
(setup.cfg), each run as a test so the README's test command and CI fail on a finding — and
each shown able to fail, on a small file or contract that breaks its rule."""
from __future__ import annotations

import configparser
import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SEARCH_PATH = os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])


def tool(name: str, *args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess:
    executable = shutil.which(name, path=SEARCH_PATH)
    assert executable, f"{name} is not installed: pip install -e '.[test]'"
    return subprocess.run([executable, *args], cwd=cwd, capture_output=True, text=True, timeout=300)


def test_ruff_finds_nothing_in_reconciler_runtime_bench_and_tests():
    run = tool("ruff", "check", "--no-cache", "reconciler", "runtime", "bench", "tests")
    assert run.returncode == 0, run.stdout + run.stderr


def test_ruff_would_catch_a_finding(tmp_path):
    (tmp_path / "bad.py").write_text("import os\n\n\ndef f(items):\n    return list(zip(items, items[1:]))\n")
    run = tool("ruff", "check", "--no-cache", "--config", str(ROOT / "pyproject.toml"), str(tmp_path / "bad.py"))
    assert run.returncode == 1 and "F401" in run.stdout and "B905" in run.stdout, run.stdout


def test_mypy_finds_no_error_in_reconciler_and_runtime():
    run = tool("mypy")  # files and settings from setup.cfg
    assert run.returncode == 0, run.stdout + run.stderr


def test_mypy_checks_both_packages_whole_and_excuses_no_module():
    """All of reconciler/ and runtime/ is checked: no module is left out of `files` or has its
    errors ignored, so a new module cannot join unchecked."""
    config = configparser.ConfigParser()
    config.read(ROOT / "setup.cfg")
    checked = {entry.strip() for entry in config["mypy"]["files"].split(",")}
    assert checked == {"reconciler", "runtime"}
    excused = [section for section in config.sections()
               if section.startswith("mypy-") and config[section].getboolean("ignore_errors", fallback=False)]
    assert excused == []


def test_mypy_would_catch_an_error(tmp_path):
    (tmp_path / "bad.py").write_text("def f(x: str | None) -> str:\n    return x.upper()\n")
    run = tool("mypy", "--config-file", str(ROOT / "setup.cfg"), "--cache-dir", str(tmp_path / "cache"),
               str(tmp_path / "bad.py"))
    assert run.returncode == 1 and "union-attr" in run.stdout, run.stdout


def test_the_import_layers_hold():
    run = tool("lint-imports", "--no-cache")
    assert run.returncode == 0, run.stdout + run.stderr
    assert "3 kept, 0 broken" in run.stdout, run.stdout


def test_the_import_linter_would_catch_a_broken_layer(tmp_path):
    config = tmp_path / "layers.ini"
    # The CLI does import the demo: a contract forbidding it must be reported broken.
    config.write_text("[importlinter]\nroot_packages =\n    reconciler\n\n[importlinter:contract:x]\nname = x\n"
                      "type = forbidden\nsource_modules = reconciler.cli\nforbidden_modules = reconciler.demo\n")
    run = tool("lint-imports", "--no-cache", str(config))
    assert run.returncode == 1 and "BROKEN" in run.stdout, run.stdout
