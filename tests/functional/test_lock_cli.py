"""`reconcile force-unlock` and `--lock-timeout` through the command line, against moto in-process."""
import pytest
from click.testing import CliRunner
from moto_harness import STACK

from reconciler import cli, lock


@pytest.fixture
def stale_lock(canvas, names):
    canvas.converge()
    held = lock.held(canvas.clients, bucket=names.bucket, stack=STACK, operation="apply")
    # Never released, as after kill -9; the fixture keeps the generator alive, since a
    # collected one would run its finally and release.
    yield held.__enter__()


def test_force_unlock_asks_first_and_keeps_the_lock_unless_told_yes(canvas, names, stale_lock, monkeypatch):
    monkeypatch.setattr(cli, "stdin_is_tty", lambda: True)
    args = ["force-unlock", stale_lock["id"], "-f", str(canvas.path)]

    kept = CliRunner().invoke(cli.main, args, input="no\n")
    assert kept.exit_code == 1 and "force-unlock cancelled; nothing was removed" in kept.output
    assert "The lock is apply by arn:aws:" in kept.output
    assert lock.read(canvas.clients, bucket=names.bucket, stack=STACK)["id"] == stale_lock["id"]

    removed = CliRunner().invoke(cli.main, args, input="yes\n")
    assert removed.exit_code == 0, removed.output
    assert f"Lock {stale_lock['id']} removed" in removed.output
    assert lock.read(canvas.clients, bucket=names.bucket, stack=STACK) is None


def test_force_unlock_of_another_id_exits_1_and_removes_nothing(canvas, names, stale_lock):
    result = CliRunner().invoke(cli.main, ["force-unlock", "wrong", "--auto-approve", "-f", str(canvas.path)])
    assert result.exit_code == 1 and "nothing was removed" in result.output and "Traceback" not in result.output
    assert lock.read(canvas.clients, bucket=names.bucket, stack=STACK) is not None


def test_destroy_while_locked_exits_1_naming_the_holder(canvas, names, stale_lock):
    result = CliRunner().invoke(cli.main, ["destroy", "--auto-approve", "-f", str(canvas.path)])
    assert result.exit_code == 1, result.output
    assert f"the stack {STACK} is locked: apply by arn:aws:" in result.output
    assert f"reconcile force-unlock {stale_lock['id']}" in result.output


@pytest.mark.parametrize("command", ["apply", "destroy"])
def test_a_bad_lock_timeout_is_one_clear_message(canvas, command):
    result = CliRunner().invoke(cli.main, [command, "--lock-timeout", "soon", "-f", str(canvas.path)])
    assert result.exit_code == 1 and "--lock-timeout 'soon'" in result.output and "Traceback" not in result.output
