"""Endpoints that are not AWS, or not answering: every command ends with one line saying what
answered and what to check — never a traceback, never minutes of silence."""
from __future__ import annotations

import re
import signal
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from click.testing import CliRunner

from reconciler import aws, cli

COMMANDS = [("plan",), ("drift",), ("outputs",), ("history",), ("apply", "--auto-approve"),
            ("destroy", "--auto-approve")]


class _WebPage(BaseHTTPRequestHandler):
    """A web server on the wrong port: HTML for everything."""

    def _any(self):
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        body = b"<html><body>It works!</body></html>"
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = do_PUT = do_HEAD = do_DELETE = _any

    def log_message(self, *args):
        pass


@pytest.fixture
def web_server():
    server = ThreadingHTTPServer(("127.0.0.1", 0), _WebPage)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    server.server_close()


@pytest.fixture
def silent_endpoint():
    """Accepts connections and never answers."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    yield f"http://127.0.0.1:{listener.getsockname()[1]}"
    listener.close()


@pytest.mark.parametrize("args", COMMANDS, ids=lambda a: a[0])
def test_an_endpoint_that_is_not_aws_is_one_clear_line(reconcile, canvas_file, web_server, args):
    run = reconcile(*args, "--endpoint-url", web_server, timeout=60)
    assert run.code == 1, run.out + run.err
    assert "Traceback" not in run.err and "ResponseParserError" not in run.err
    errors = [line for line in run.err.splitlines() if line.startswith("Error:")]
    assert errors == [f"Error: {web_server} answered, but not as AWS sts does — check --endpoint-url / "
                      f"AWS_ENDPOINT_URL: is it an AWS emulator (reconcile local), on the right port?"]


def test_an_endpoint_without_a_scheme_is_named_with_its_fix(reconcile, canvas_file):
    run = reconcile("plan", "--endpoint-url", "127.0.0.1:4618")
    assert run.code == 1 and "Traceback" not in run.err
    assert ("Error: --endpoint-url '127.0.0.1:4618' is not an endpoint URL: write it with its scheme, such as "
            "'http://127.0.0.1:4618'") in run.err


def test_an_environment_endpoint_without_a_scheme_names_the_variable(reconcile, canvas_file, monkeypatch):
    monkeypatch.setenv("AWS_ENDPOINT_URL", "localhost:4618")
    run = reconcile("drift")
    assert run.code == 1 and "Traceback" not in run.err
    assert "Error: AWS_ENDPOINT_URL 'localhost:4618' is not an endpoint URL" in run.err
    assert "'http://localhost:4618'" in run.err


def test_a_hung_endpoint_says_it_is_waiting_then_gives_up_with_one_line(canvas_file, silent_endpoint, monkeypatch):
    # The real budget (about a minute) with small numbers, so the test takes a second.
    monkeypatch.setattr(aws, "READ_TIMEOUT", 0.3)
    monkeypatch.setattr(aws, "CONNECT_TIMEOUT", 0.3)
    monkeypatch.setattr(aws, "MAX_ATTEMPTS", 2)
    monkeypatch.setattr(aws, "STILL_WAITING_AFTER", 0.1)
    monkeypatch.chdir(canvas_file.parent)
    result = CliRunner().invoke(cli.main, ["plan", "--endpoint-url", silent_endpoint])
    assert result.exit_code == 1, result.output
    # A plan's reads go out at once, to five services: whichever waits first says so, once.
    assert re.search(rf"still waiting for (sts|s3|ecr|iam|lambda) at {re.escape(silent_endpoint)} ", result.stderr)
    assert result.stderr.count("still waiting") == 1
    assert "Error: no answer in time" in result.stderr and "(2 attempts)" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("args", [("plan",), ("drift",), ("apply", "--auto-approve")], ids=lambda a: a[0])
def test_ctrl_c_while_reads_hang_ends_the_command_at_once(args, start_reconcile, canvas_file):
    """Ctrl-C says "Interrupted." and the process ends then: it does not wait out the ~55 s its
    reads still blocked on a silent endpoint have left, nor say "still waiting" after it."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(16)
        listener.settimeout(30)
        run = start_reconcile(*args, "--endpoint-url", f"http://127.0.0.1:{listener.getsockname()[1]}",
                              cwd=canvas_file.parent)
        held, _ = listener.accept()  # a read is in flight, and will never be answered
        try:
            run.send_signal(signal.SIGINT)
            # Far less than the reads' own timeouts: a run still waiting on them fails here.
            _, err = run.communicate(timeout=8)
        finally:
            run.kill()
            held.close()
    assert run.returncode == 130, err
    assert err.rstrip().endswith("run the command again to continue from live state."), err
    assert "Traceback" not in err


def test_the_stated_budget_for_a_hung_endpoint_is_under_a_minute():
    assert aws.worst_case_seconds() <= 60
    assert aws.STILL_WAITING_AFTER == 10
    config = aws.retry_config()
    assert (config.connect_timeout, config.read_timeout) == (aws.CONNECT_TIMEOUT, aws.READ_TIMEOUT)
    assert config.retries["max_attempts"] == aws.MAX_ATTEMPTS


def test_history_that_cannot_read_aws_is_an_error_not_an_empty_list(reconcile, canvas_file, web_server):
    run = reconcile("history", "--endpoint-url", web_server)
    assert run.code == 1
    assert "No applies recorded." not in run.out
