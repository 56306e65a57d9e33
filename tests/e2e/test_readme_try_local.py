"""README's "try your own canvas.yaml" section, run as a script: the commands are taken from
README.md itself and run word for word (only the port is a free one), so the README and the
tool cannot drift apart again."""
from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from tests.e2e.conftest import ROOT
from tests.e2e.test_local import read_until
from tests.local_net import free_port

BEGIN, END = "<!-- try-local:begin", "<!-- try-local:end -->"


def readme_blocks() -> list[str]:
    text = (ROOT / "README.md").read_text()
    section = text[text.index(BEGIN):text.index(END)]
    return re.findall(r"```bash\n(.*?)```", section, flags=re.S)


def test_the_section_has_the_emulator_command_then_the_script():
    emulator, script = readme_blocks()
    assert emulator.split("#")[0].split() == ["reconcile", "local"]
    for needed in ("AWS_SESSION_TOKEN=", "AWS_DEFAULT_REGION=", "unset AWS_PROFILE", "reconcile stand-in-image",
                   "reconcile apply"):
        assert needed in script


def test_the_readme_commands_deploy_the_repositorys_canvas_yaml_against_reconcile_local(canvas_file, tmp_path):
    emulator, script = readme_blocks()
    port = str(free_port())
    # A newcomer's shell: the venv's reconcile on PATH, no AWS settings of their own.
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(PATH=f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}", HOME=str(tmp_path))
    command = emulator.split("#")[0].split() + ["--port", port]
    server = subprocess.Popen(command, cwd=tmp_path, env=env, text=True,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        read_until(server, "unset AWS_PROFILE")
        run = subprocess.run(["bash", "-euo", "pipefail", "-c", script.replace("4566", port)], cwd=tmp_path,
                             env=env, capture_output=True, text=True, timeout=240)
    finally:
        server.terminate()
        server.wait(15)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "Registered a stand-in image as python-repl-container-lambda:v1.2" in run.stdout
    assert re.search(r"Registered a stand-in image as python-repl-container-lambda:canvas-[0-9a-f]{16}", run.stdout)
    assert "Apply complete: 6 change(s) made." in run.stdout
    assert "No changes." in run.stdout or "0 to create, 0 to update" in run.stdout
    assert "Traceback" not in run.stderr
