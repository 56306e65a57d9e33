"""The `reconcile` command line: validate, plan, show, apply, outputs, destroy, drift, history, logs,
status, db (info, versions, pull, restore, push), demo, local. Thin: each command loads the spec,
hands the work to its module and renders the answer; known failures print one clear message."""
from __future__ import annotations

import atexit
import functools
import json
import os
import sys
import threading
from pathlib import Path

import click

from reconciler import __version__
from reconciler.errors import ReconcileError

# Each command imports what it uses when it runs: validate, --help and --version load neither
# boto3 nor deepdiff (issue 12: they start in a fraction of the time a plan needs).

EXIT_OK, EXIT_ERROR, EXIT_CHANGES, EXIT_INTERRUPTED = 0, 1, 2, 130


def _fail(message: str) -> None:
    click.echo(click.style("Error: ", fg="red", bold=True) + message, err=True)
    sys.exit(EXIT_ERROR)


def _warn(message: str) -> None:
    click.echo(click.style("Warning: ", fg="yellow", bold=True) + message, err=True)


def known_errors(command):
    """Every failure a person can act on ends as one message and exit 1, never a traceback."""
    @functools.wraps(command)
    def wrapper(*args, **kwargs):
        try:
            return command(*args, **kwargs)
        except ReconcileError as exc:
            _fail(str(exc))
        except KeyboardInterrupt:
            # No state file can be left half-written: live AWS is the truth, so say how to go on.
            click.echo("\nInterrupted. Whatever finished stays done; run the command again to continue "
                       "from live state.", err=True)
            sys.exit(EXIT_INTERRUPTED)
        except Exception as exc:
            if _is_spec_error(exc):
                click.echo(str(exc), err=True)
                sys.exit(EXIT_ERROR)
            if not _is_aws_error(exc):
                raise
            from reconciler.aws import describe_connection_error, error_code, error_message

            _fail(describe_connection_error(exc) or f"{error_code(exc)}: {error_message(exc)}")
    return wrapper


_QUICK_EXIT = False  # set by a read-only command: once it has printed, nothing is left to close


def quick_exit(command):
    """A command that only reads and prints: when it is the one the process was started for
    (not one the demo runs in-process), `entry` ends the process as soon as it is done."""
    @functools.wraps(command)
    def wrapper(*args, **kwargs):
        global _QUICK_EXIT
        _QUICK_EXIT = sys.argv[1:2] == [click.get_current_context().info_name]
        return command(*args, **kwargs)
    return wrapper


def entry() -> None:
    """The console script (and `python -m reconciler`). After a read-only command the process
    ends without tearing the interpreter down: freeing botocore's loaded models and everything
    else took ~0.15 s of a no-op plan's 0.7 s (issue 12), and that command has nothing left to
    write. After Ctrl-C it ends without waiting for the threads still blocked on AWS. Anything
    else, an error included, ends as Python always ends."""
    try:
        main(prog_name="reconcile")
    except SystemExit as done:
        # Exit 130 is Ctrl-C's (a command's, or the demo's after its cleanup). Python would then
        # wait for the read threads still blocked on AWS (up to the ~55 s a hung endpoint is
        # given, saying "still waiting" after "Interrupted."): what they were reading is
        # abandoned, and whatever a write finished stays done.
        interrupted = done.code == EXIT_INTERRUPTED
        if _QUICK_EXIT or interrupted:
            _end_now(done.code, abandon_threads=interrupted)
        raise


def _end_now(code: object, *, abandon_threads: bool = False) -> None:
    code = 0 if code is None else code
    if not isinstance(code, int):
        return  # sys.exit("text"): Python prints it
    if not abandon_threads and any(t.is_alive() and not t.daemon for t in threading.enumerate()
                                   if t is not threading.main_thread()):
        return  # a thread Python would wait for
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except (OSError, ValueError):
        return  # a closed pipe: Python reports it as it always has
    atexit._run_exitfuncs()  # logging's flush, and any other handler, as at a normal exit
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except (OSError, ValueError):
        os._exit(120)  # what Python exits with when it cannot flush stdout at the end
    os._exit(code)


def _is_spec_error(exc: Exception) -> bool:
    spec = sys.modules.get("reconciler.spec")  # not loaded: the error cannot be one of its
    return spec is not None and isinstance(exc, spec.SpecError)


def _is_aws_error(exc: Exception) -> bool:
    botocore = sys.modules.get("botocore.exceptions")
    return botocore is not None and isinstance(exc, (botocore.ClientError, botocore.BotoCoreError))


def spec_options(command):
    """-f and --region: all that a command which never calls AWS takes (validate)."""
    options = [
        click.option("-f", "--file", "file", default="canvas.yaml", show_default=True,
                     help="The canvas.yaml to read."),
        click.option("--region", help="Override the spec's region."),
    ]
    for option in reversed(options):
        command = option(command)
    return command


def common_options(command):
    options = [
        click.option("--profile", help="AWS profile to use (as for the AWS CLI)."),
        click.option("--endpoint-url", help="Send every AWS call here (an emulator); "
                                            "AWS_ENDPOINT_URL works too."),
    ]
    for option in reversed(options):
        command = option(command)
    return spec_options(command)


_WARNED: set[str] = set()


class Context:
    """What every command needs: the validated spec, the region in force, AWS clients."""

    def __init__(self, file: str, region: str | None, profile: str | None, endpoint_url: str | None):
        from reconciler.spec import check_region, load_spec

        self.spec = load_spec(file)
        for warning in self.spec.warnings:
            if warning not in _WARNED:  # once per process: the demo runs many commands in one
                _WARNED.add(warning)
                _warn(warning)
        if region is not None and check_region(region):
            raise ReconcileError(f"--region: {check_region(region)}")
        self.region = region or self.spec.region
        self.profile, self.endpoint_url = profile, endpoint_url

    def clients(self):
        from reconciler.aws import Clients

        return Clients(region=self.region, profile=self.profile, endpoint_url=self.endpoint_url)

    def plan(self):
        from reconciler.planner import build_plan

        return build_plan(self.spec, self.clients(), region=self.region)

    def target(self, clients):
        from reconciler.planner import discover_target

        return discover_target(clients, self.region)


class _Group(click.Group):
    """The command list shows each command's whole first sentence (click cuts it at 45 columns with
    "..."), and plain `reconcile` prints the help and exits 0: asking what there is is no error."""

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = [(name, command.get_short_help_str(limit=200)) for name in self.list_commands(ctx)
                if (command := self.get_command(ctx, name)) is not None and not command.hidden]
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)


@click.group(cls=_Group, invoke_without_command=True,
             context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 120})
@click.version_option(__version__, prog_name="reconcile")
@click.pass_context
def main(ctx: click.Context) -> None:
    """Keep a SQLite-on-S3 Lambda app on AWS true to canvas.yaml."""
    if ctx.invoked_subcommand is None:
        click.echo(ctx.get_help())


@main.command()
@spec_options
@quick_exit
@known_errors
def validate(file, region) -> None:
    """Check canvas.yaml without calling AWS."""
    ctx = Context(file, region, None, None)
    click.echo(f"{file} is valid: stack {ctx.spec.stack} in {ctx.region}.")


@main.command()
@common_options
@click.option("--json", "as_json", is_flag=True, help="Print the plan as one JSON document.")
@click.option("--detailed-exitcode", is_flag=True, help="Exit 0 no changes, 1 error, 2 changes present.")
@click.option("--out", "out", metavar="FILE",
              help="Also save the plan to FILE, for review and `reconcile apply FILE` (no secret in clear).")
@quick_exit
@known_errors
def plan(file, region, profile, endpoint_url, as_json, detailed_exitcode, out) -> None:
    """Show what differs between canvas.yaml and live AWS (read-only)."""
    from reconciler.render import render_json, render_text

    ctx = Context(file, region, profile, endpoint_url)
    result = ctx.plan()
    if out is not None:
        from reconciler import saved_plan

        saved_plan.write(out, saved_plan.document(result, spec=ctx.spec))
    click.echo(render_json(result) if as_json else render_text(result))
    if out is not None:
        click.echo(f"Saved this plan to {out}. To apply exactly it: reconcile apply {out}", err=True)
    sys.exit(EXIT_CHANGES if detailed_exitcode and result.has_changes else EXIT_OK)


@main.command()
@common_options
@click.option("--auto-approve", is_flag=True, help="Apply without asking for confirmation.")
@click.option("--lock-timeout", default="0s", show_default=True, metavar="DURATION",
              help="Wait this long (30s, 5m) for another apply's lock instead of exiting 1 at once.")
@click.argument("plan_file", metavar="[PLAN_FILE]", required=False)
@known_errors
def apply(file, region, profile, endpoint_url, auto_approve, lock_timeout, plan_file) -> None:
    """Change live AWS so it matches canvas.yaml, only where it differs (or exactly as a saved plan says)."""
    from reconciler import lock, saved_plan
    from reconciler.apply import failure_report
    from reconciler.planner import build_plan
    from reconciler.render import render_text
    from reconciler.safe_apply import locked_apply
    from reconciler.target import Target

    timeout = lock.parse_timeout(lock_timeout)
    saved = saved_plan.load(plan_file) if plan_file else None
    ctx = Context(file, region, profile, endpoint_url)
    clients = ctx.clients()
    result = build_plan(ctx.spec, clients, region=ctx.region)
    account = result.account
    assert account is not None  # build_plan always reads it (STS); only destroy's plans lack it
    target = Target(region=ctx.region, account=account)  # the lock's re-plan needs no STS call
    text = render_text(result)
    if saved is not None:
        # The saved plan was the approval: no prompt, but only if it is still exactly what would happen.
        saved_plan.check_matches(saved, path=plan_file, spec=ctx.spec, region=ctx.region, account=account)
        saved_plan.check_fresh(saved, result, path=plan_file)
        click.echo(saved_plan.header(saved, path=plan_file) + " It still matches live AWS.\n" + text)
    else:
        if result.has_changes and not auto_approve and not stdin_is_tty():
            # Nobody can read the plan to say yes: its summary and the refusal, not pages of plan.
            click.echo(text.splitlines()[-1])
            _confirm()
        click.echo(text)
        if result.has_changes and not auto_approve:
            _confirm()
    if result.has_changes:
        click.echo("")
    result, outcome = locked_apply(result, clients, spec=ctx.spec, replan=lambda: build_plan(
        ctx.spec, clients, region=ctx.region, target=target), echo=click.echo, render=render_text,
        auto_approved=auto_approve and saved is None, lock_timeout=timeout)
    if not outcome.ok:
        click.echo("\n".join(failure_report(outcome)), err=True)
        sys.exit(EXIT_ERROR)
    if result.has_changes:
        click.echo(f"\nApply complete: {len(outcome.done)} change(s) made.")
    _recorded(outcome.recorded)


@main.command()
@click.argument("plan_file", metavar="PLAN_FILE")
@click.option("--json", "as_json", is_flag=True, help="Print the plan as `plan --json` did.")
@quick_exit
@known_errors
def show(plan_file, as_json) -> None:
    """Show a saved plan (from plan --out) without calling AWS."""
    from reconciler import saved_plan
    from reconciler.render import render_text

    saved = saved_plan.load(plan_file)
    if as_json:
        click.echo(json.dumps(saved["plan"], indent=2))
        return
    click.echo(saved_plan.header(saved, path=plan_file) + "\n" + render_text(saved_plan.revive(saved, path=plan_file)))


def _recorded(location: str | None) -> None:
    if location:
        click.echo(f"Recorded in {location}.")


@main.command()
@common_options
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@quick_exit
@known_errors
def outputs(file, region, profile, endpoint_url, as_json) -> None:
    """Show the Function URL, bucket, database key, ARNs and the image digest, read live."""
    from reconciler.outputs import read_outputs

    ctx = Context(file, region, profile, endpoint_url)
    clients = ctx.clients()
    values = read_outputs(ctx.spec, clients, target=ctx.target(clients))
    if as_json:
        click.echo(json.dumps(values, indent=2))
        return
    for name, value in values.items():
        click.echo(f"{name} = {value if value is not None else '(not deployed)'}")


@main.command()
@common_options
@click.option("--auto-approve", is_flag=True, help="Destroy without asking for confirmation.")
@click.option("--force", is_flag=True, help="Also delete a repository that still holds images.")
@click.option("--delete-bucket", is_flag=True, help="Also empty and delete the bucket: the database is lost.")
@click.option("--confirm-bucket", metavar="NAME", help="With --auto-approve --delete-bucket: the bucket's name.")
@click.option("--lock-timeout", default="0s", show_default=True, metavar="DURATION",
              help="Wait this long (30s, 5m) for another apply's lock instead of exiting 1 at once.")
@known_errors
def destroy(file, region, profile, endpoint_url, auto_approve, force, delete_bucket, confirm_bucket,
            lock_timeout) -> None:
    """Delete the stack's resources (only those tagged for it); the bucket is kept by default."""
    from reconciler import lock
    from reconciler.apply import failure_report
    from reconciler.destroy import build_destroy_plan, check_bucket_confirmation, confirmation_word
    from reconciler.render import render_text

    lock.parse_timeout(lock_timeout)
    ctx = Context(file, region, profile, endpoint_url)
    bucket = ctx.spec.bucket["name"]
    check_bucket_confirmation(bucket, delete_bucket=delete_bucket, auto_approve=auto_approve,
                              confirm_bucket=confirm_bucket)
    clients = ctx.clients()
    result = build_destroy_plan(ctx.spec, clients, target=ctx.target(clients), force=force,
                                delete_bucket=delete_bucket)
    if not result.has_changes:
        click.echo("\n".join([f"  {note}" for note in result.notes] + ["Nothing to destroy."]))
        return
    click.echo(render_text(result))
    if not auto_approve:
        _confirm("destroy", expected=confirmation_word(result, bucket))
    click.echo("")
    from reconciler.safe_apply import locked_destroy

    outcome, recorded = locked_destroy(result, clients, spec=ctx.spec, echo=click.echo,
                                       lock_timeout=lock.parse_timeout(lock_timeout))
    if not outcome.ok:
        click.echo("\n".join(failure_report(outcome)), err=True)
        sys.exit(EXIT_ERROR)
    click.echo(f"\nDestroy complete: {len(outcome.done)} deleted.")
    _recorded(recorded)


@main.command("force-unlock")
@common_options
@click.argument("lock_id")
@click.option("--auto-approve", is_flag=True, help="Remove the lock without asking for confirmation.")
@known_errors
def force_unlock(file, region, profile, endpoint_url, lock_id, auto_approve) -> None:
    """Remove the stack's lock left by an apply or destroy that was killed (kill -9, a lost machine)."""
    from reconciler import lock

    ctx = Context(file, region, profile, endpoint_url)
    clients, bucket, stack = ctx.clients(), ctx.spec.bucket["name"], ctx.spec.stack
    holder = lock.read(clients, bucket=bucket, stack=stack)
    if holder is not None and holder.get("id") == lock_id and not auto_approve:
        click.echo(f"The lock is {lock.describe(holder, lock._utcnow())}.\n"
                   "Remove it only if that process is no longer running: two applies at once can leave "
                   "the record contradicting AWS.")
        _confirm("force-unlock")
    lock.force_unlock(clients, bucket=bucket, stack=stack, lock_id=lock_id)
    click.echo(f"Lock {lock_id} removed from s3://{bucket}/{lock.lock_key(stack)}.")


@main.command()
@common_options
@click.option("--format", "output_format", type=click.Choice(["text", "markdown"]), default="text",
              show_default=True, help="markdown: a table for a CI job summary or a pull-request comment.")
@quick_exit
@known_errors
def drift(file, region, profile, endpoint_url, output_format) -> None:
    """Report only what changed in AWS since the last apply (exit 0 none, 2 drift, 1 error)."""
    from reconciler.render import render_drift_markdown, render_drift_text

    result = Context(file, region, profile, endpoint_url).plan()
    if result.baseline is not None and result.baseline.problem:
        raise ReconcileError(f"cannot tell drift: the record of the last apply ({result.baseline.location}) "
                             f"could not be read: {result.baseline.problem} — the caller needs s3:GetObject on "
                             f"it (see README: the drift check's read-only policy)")
    click.echo(render_drift_markdown(result) if output_format == "markdown" else render_drift_text(result))
    sys.exit(EXIT_CHANGES if result.drifted else EXIT_OK)


@main.command()
@common_options
@click.option("--limit", type=click.IntRange(min=1), help="Show only the newest N applies.")
@quick_exit
@known_errors
def history(file, region, profile, endpoint_url, limit) -> None:
    """List past applies, newest first, from the versions of the last-applied record."""
    from reconciler import record
    from reconciler.render import render_history

    ctx = Context(file, region, profile, endpoint_url)
    bucket, stack = ctx.spec.bucket["name"], ctx.spec.stack
    clients = ctx.clients()
    ctx.target(clients)  # AWS must answer as AWS before an empty listing can mean "never applied"
    entries = record.history(clients, bucket=bucket, stack=stack, limit=limit)
    click.echo(render_history(entries, stack=stack, location=record.location(bucket, stack)))


@main.command()
@common_options
@click.option("--since", default="10m", show_default=True, metavar="DURATION",
              help="Start this far back (30s, 10m, 2h, 1d, 1w) or at an ISO 8601 time (UTC if no zone).")
@click.option("--follow", is_flag=True, help="Keep polling for new events until Ctrl-C.")
@click.option("--filter", "pattern", metavar="TEXT",
              help="A CloudWatch Logs filter pattern, passed to FilterLogEvents as it is "
                   "(a term, \"an exact phrase\", ...; CloudWatch's syntax, not a regular expression).")
@click.option("--runtime", "runtime_only", is_flag=True,
              help="Only the runtime's own lines (restore, sync, conflict, 503 ...), not Lambda's "
                   "START/END/REPORT lines nor the app's output; combines with --filter.")
@click.option("--poll-interval", type=click.FloatRange(min=0.05), default=2.0, hidden=True,
              envvar="RECONCILE_LOGS_POLL_SECONDS", help="Seconds between --follow's polls (tests).")
@known_errors
def logs(file, region, profile, endpoint_url, since, follow, pattern, runtime_only, poll_interval) -> None:
    """Show the function's CloudWatch logs, oldest first: time, stream, message (like `aws logs tail`)."""
    import time
    from datetime import datetime, timezone

    from reconciler import logs as function_logs
    from reconciler.timespec import parse_since

    start = function_logs.to_millis(parse_since(since, datetime.now(timezone.utc)))
    ctx = Context(file, region, profile, endpoint_url)
    client, name = ctx.clients().client("logs"), ctx.spec.function["name"]

    def show(events: list) -> None:
        for event in function_logs.keep(events, runtime_only=runtime_only):
            click.echo(function_logs.render(event))

    follower = function_logs.Follower(
        lambda since_ms: function_logs.read_events(client, function=name, start=since_ms, pattern=pattern),
        start=start)
    if not follow:
        show(follower.poll())
        return
    try:
        function_logs.follow(follower, show=show, sleep=time.sleep, interval=poll_interval)
    except KeyboardInterrupt:
        return  # Ctrl-C is how --follow ends: nothing failed


@main.command()
@common_options
@click.option("--since", default="1h", show_default=True, metavar="DURATION",
              help="The metrics' window: this far back (30s, 10m, 2h, 1d, 1w) or from an ISO 8601 time.")
@click.option("--max-error-rate", type=click.FloatRange(min=0, max=100), default=5.0, show_default=True,
              metavar="PERCENT", help="Exit 1 when Errors / Invocations in the window is over this.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document.")
@click.option("--probe-url", hidden=True, envvar="RECONCILE_STATUS_PROBE_URL",
              help="GET this instead of the Function URL (tests: an emulator's URL is not reachable).")
@known_errors
def status(file, region, profile, endpoint_url, since, max_error_rate, as_json, probe_url) -> None:
    """Show the function's state, image, URL and metrics (exit 1 when failed, erroring or not answering)."""
    from datetime import datetime, timezone

    from reconciler.status import build_report, render_text
    from reconciler.timespec import parse_since

    end = datetime.now(timezone.utc)
    start = parse_since(since, end)
    if start >= end:
        raise ReconcileError(f"--since {since}: the window must start before now")
    ctx = Context(file, region, profile, endpoint_url)
    report = build_report(ctx.clients(), ctx.spec, start=start, end=end, max_error_rate=max_error_rate / 100,
                          probe_url=probe_url)
    click.echo(json.dumps(report, indent=2) if as_json else render_text(report))
    sys.exit(EXIT_OK if report["healthy"] else EXIT_ERROR)


@main.command()
@click.option("--app", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="A Python app for the runtime to serve instead of the sample taskboard "
                   "(it gets PORT and DB_PATH, must answer GET --ready-path below 500, and the last "
                   "two steps use its /api/tasks as the taskboard's).")
@click.option("--ready-path", metavar="PATH", callback=lambda ctx, param, value: _ready_path(value),
              help="The path the runtime polls until the app is ready "
                   "[default: /healthz for the taskboard, / with --app, as READY_PATH].")
@click.option("--keep", is_flag=True,
              help="Keep the emulator and its stack at the end until Ctrl-C, to run the printed commands yourself.")
def demo(app, ready_path, keep) -> None:
    """Run the whole story against a local AWS emulator: no AWS account, no Docker."""
    from reconciler.demo import run_demo  # moto loads only for the commands that use it

    sys.exit(run_demo(main, app=app, ready_path=ready_path, keep=keep, echo=click.echo))


def _ready_path(value: str | None) -> str | None:
    if value is not None and not value.startswith("/"):
        raise click.BadParameter(f"{value!r} is not a path; give one that starts with /, such as /healthz")
    return value


@main.command("stand-in-image")
@common_options
@known_errors
def stand_in_image(file, region, profile, endpoint_url) -> None:
    """Register a placeholder image in a local emulator's ECR under image.tag (no Docker needed)."""
    from reconciler.stand_in import put_stand_in_image, refuse_unless_local

    ctx = Context(file, region, profile, endpoint_url)
    clients = ctx.clients()
    refuse_unless_local(clients)
    for line in put_stand_in_image(ctx.spec, clients, ctx.target(clients)):
        click.echo(line)


@main.command()
@click.option("--port", default=4566, show_default=True, help="Port on 127.0.0.1 to listen on.")
@known_errors
def local(port) -> None:
    """Run the AWS emulator in the foreground (127.0.0.1) to try your own canvas.yaml; Ctrl-C stops it."""
    from reconciler.emulator import serve_in_foreground

    serve_in_foreground(port=port, echo=click.echo)


def stdin_is_tty() -> bool:
    return sys.stdin.isatty()


def _confirm(command: str = "apply", *, expected: str = "yes") -> None:
    if not stdin_is_tty():
        raise ReconcileError(f"{command} needs confirmation, but there is no terminal to ask on; "
                             f"re-run with --auto-approve to {command} without asking")
    question = {"apply": "Apply these changes?", "force-unlock": "Remove the lock?",
                "db restore": "Make that state current? Type the bucket's name;",
                "db push": "Replace the database? Type the bucket's name;"}.get(command, "Destroy these resources?")
    answer = click.prompt(f"\n{question} Only '{expected}' is accepted", default="", show_default=False)
    if answer.strip() != expected:
        nothing = {"force-unlock": "removed", "destroy": "deleted"}.get(command, "changed")
        raise ReconcileError(f"{command} cancelled; nothing was {nothing}")


@main.group(cls=_Group)
def db() -> None:
    """The live app's database in S3: its facts and history, a copy, a restore, a replacement."""


def _database(ctx: Context) -> tuple[object, str, str]:
    return ctx.clients().s3, ctx.spec.bucket["name"], ctx.spec.bucket["database_key"]


def _chosen_version(s3, bucket: str, key: str, *, at: str | None, version_id: str | None):
    """The version --at or --version names (read), with every version's metadata; None, [] for neither."""
    from datetime import datetime, timezone

    from reconciler import db_history
    from reconciler.timespec import parse_since

    if at is None and version_id is None:
        return None, []
    if not db_history.versioning_enabled(s3, bucket):
        _warn(f"bucket versioning is not on for {bucket}: S3 keeps no new history of the database "
              f"(set bucket.versioning: true in canvas.yaml and apply)")
    versions = db_history.list_versions(s3, bucket=bucket, key=key)
    if at is not None:
        chosen = db_history.at_time(s3, versions, parse_since(at, datetime.now(timezone.utc)),
                                    bucket=bucket, key=key, label=f"--at {at}")
    else:
        assert version_id is not None
        chosen = db_history.by_id(versions, version_id)
    if chosen.manifest is None and not chosen.legacy and chosen.problem is None:  # not read by at_time yet
        chosen = db_history.read_versions(s3, [chosen], bucket=bucket, key=key)[0]
    return chosen, versions


def _one_point(at: str | None, version_id: str | None, *, required: bool) -> None:
    if at is not None and version_id is not None:
        raise ReconcileError("give --at or --version, not both")
    if required and at is None and version_id is None:
        raise ReconcileError("say which state to restore: --at TIME (e.g. 2h, 2026-12-01T09:30) or --version ID "
                               "(`reconcile db versions` lists them)")


@db.command("info")
@common_options
@click.option("--json", "as_json", is_flag=True, help="One JSON document.")
@known_errors
def db_info(file, region, profile, endpoint_url, as_json) -> None:
    """Size, current version, last write, writes since the last compaction, how far back history goes."""
    from reconciler import db_history
    from reconciler.db_render import render_info

    ctx = Context(file, region, profile, endpoint_url)
    s3, bucket, key = _database(ctx)
    facts = db_history.info(s3, bucket=bucket, key=key,
                            history_seconds=db_history.history_seconds(ctx.spec.function.get("environment") or {}))
    click.echo(json.dumps(facts.as_json(), indent=2) if as_json else render_info(facts))


@db.command("versions")
@common_options
@click.option("--limit", type=click.IntRange(min=1), default=20, show_default=True, help="Show the newest N.")
@click.option("--since", metavar="DURATION", help="Only versions written since then (2h, 1d, or an ISO 8601 time).")
@click.option("--json", "as_json", is_flag=True, help="One JSON document.")
@known_errors
def db_versions(file, region, profile, endpoint_url, limit, since, as_json) -> None:
    """The database's history, newest first: time, version id, txid, size, writer."""
    from datetime import datetime, timedelta, timezone

    from reconciler import db_history
    from reconciler.db_render import render_versions
    from reconciler.timespec import parse_since

    ctx = Context(file, region, profile, endpoint_url)
    s3, bucket, key = _database(ctx)
    start = parse_since(since, datetime.now(timezone.utc)) if since else None
    if not db_history.versioning_enabled(s3, bucket):
        _warn(f"bucket versioning is not on for {bucket}: only the current version is kept")
    every = db_history.list_versions(s3, bucket=bucket, key=key)
    shown = [version for version in every if start is None or version.modified >= start - timedelta(seconds=2)]
    shown = db_history.read_versions(s3, shown[:limit], bucket=bucket, key=key)
    if start is not None:
        shown = [version for version in shown if db_history.written(version) >= start]
    if as_json:
        click.echo(json.dumps({"location": f"s3://{bucket}/{key}", "total": len(every),
                               "versions": [version.as_json() for version in shown]}, indent=2))
        return
    click.echo(render_versions(shown, location=f"s3://{bucket}/{key}", total=len(every),
                               history_seconds=db_history.history_seconds(ctx.spec.function.get("environment") or {})))


@db.command("pull")
@common_options
@click.option("-o", "--output", metavar="FILE", help="Where to write it (default: the key's file name, here).")
@click.option("--force", is_flag=True, help="Replace FILE if it exists.")
@click.option("--at", metavar="TIME", help="The state as of then (2h, 1d, or an ISO 8601 time) instead of now.")
@click.option("--version", "version_id", metavar="ID", help="The state of this version (`reconcile db versions`).")
@known_errors
def db_pull(file, region, profile, endpoint_url, output, force, at, version_id) -> None:
    """Write the database's state (now, or as of --at/--version) as one SQLite file that passes integrity_check."""
    from reconciler import db as database
    from reconciler.db_history import written
    from reconciler.timespec import iso

    _one_point(at, version_id, required=False)
    ctx = Context(file, region, profile, endpoint_url)
    s3, bucket, key = _database(ctx)
    target = output or database.default_output(key)
    if os.path.exists(target) and not force:  # before any AWS call
        raise ReconcileError(f"{target} already exists; choose another path with -o or pass --force to replace it")
    chosen, _ = _chosen_version(s3, bucket, key, at=at, version_id=version_id)
    with click.progressbar(length=1, label=f"s3://{bucket}/{key}", file=sys.stderr) as bar:
        def progress(done: int, total: int) -> None:
            bar.length = max(total, 1)
            bar.update(done - bar.pos)

        pulled = database.pull(s3, bucket=bucket, key=key, output=target, overwrite=force, progress=progress,
                               version=chosen)
    layout = (f"txid {pulled.txid}: the base and {pulled.deltas} page deltas" if pulled.txid is not None
              else "the single-object layout")
    of = f"; version {chosen.version_id}, written {iso(written(chosen))}" if chosen else ""
    click.echo(f"Wrote {pulled.path} ({pulled.size:,} bytes; {layout}{of}); PRAGMA integrity_check: ok.")


@db.command("restore")
@common_options
@click.option("--at", metavar="TIME", help="Make the state as of then current (2h, 1d, or an ISO 8601 time).")
@click.option("--version", "version_id", metavar="ID", help="Make this version's state current.")
@click.option("--auto-approve", is_flag=True, help="Do not ask for the bucket's name first.")
@known_errors
def db_restore(file, region, profile, endpoint_url, at, version_id, auto_approve) -> None:
    """Make an earlier state current, as a new version: history is never deleted or rewritten."""
    import tempfile

    from reconciler import db as database

    _one_point(at, version_id, required=True)
    ctx = Context(file, region, profile, endpoint_url)
    s3, bucket, key = _database(ctx)
    chosen, versions = _chosen_version(s3, bucket, key, at=at, version_id=version_id)
    if chosen.latest:
        click.echo(f"Version {chosen.version_id} is already the database's current state; nothing changed.")
        return
    with tempfile.TemporaryDirectory(prefix="reconcile-restore-") as workdir:
        replacement = database.prepare_restore(s3, bucket=bucket, key=key, version=chosen, versions=versions,
                                               workdir=workdir)
        _show_replacement(f"Restore s3://{bucket}/{key} to version {chosen.version_id}", replacement,
                          keeps_current=any(version.latest and not version.deleted for version in versions),
                          chosen=chosen)
        _replace(s3, bucket, key, replacement, "db restore", auto_approve)


@db.command("push")
@common_options
@click.argument("source", metavar="FILE", type=click.Path(dir_okay=False))
@click.option("--auto-approve", is_flag=True, help="Do not ask for the bucket's name first.")
@known_errors
def db_push(file, region, profile, endpoint_url, source, auto_approve) -> None:
    """Replace the database with a local SQLite file (checked first), as a new version."""
    import tempfile

    from reconciler import db as database
    from reconciler import db_history

    ctx = Context(file, region, profile, endpoint_url)
    s3, bucket, key = _database(ctx)
    with tempfile.TemporaryDirectory(prefix="reconcile-push-") as workdir:
        replacement = database.prepare_push(s3, bucket=bucket, key=key, source=source, workdir=workdir)
        versioned = db_history.versioning_enabled(s3, bucket)
        if not versioned and replacement.current_size is not None:
            _warn(f"bucket versioning is not on for {bucket}: the state this replaces will not be in the key's history")
        _show_replacement(f"Replace s3://{bucket}/{key} with {source}", replacement,
                          keeps_current=versioned and replacement.current_size is not None)
        _replace(s3, bucket, key, replacement, "db push", auto_approve)


def _show_replacement(title: str, replacement, *, keeps_current: bool, chosen=None) -> None:
    from reconciler.db_history import written
    from reconciler.db_render import plural, size
    from reconciler.timespec import iso

    click.echo(title + (f" (written {iso(written(chosen))} by {chosen.writer or 'unknown'}):" if chosen else ":"))
    if replacement.undone_since is not None:
        until = iso(replacement.current_written) if replacement.current_written else "now"
        undone = (plural(replacement.undone_writes, "write") if replacement.undone_writes is not None
                  else plural(replacement.undone_versions or 0, "later version"))
        click.echo(f"  undoes:  {undone}, from {iso(replacement.undone_since)} to {until}")
    click.echo(f"  size:    {size(replacement.current_size)} now → {size(replacement.size)}")
    tables = ", ".join(f"{name} ({plural(rows, 'row')})" for name, rows in replacement.tables) or "no tables"
    click.echo(f"  tables:  {tables}")
    if keeps_current:
        click.echo("  The current state stays in the key's history (the new state is a new version).")


def _replace(s3, bucket: str, key: str, replacement, command: str, auto_approve: bool) -> None:
    from reconciler import db as database

    if not auto_approve:
        _confirm(command, expected=bucket)
    from reconciler import db_history

    committed = database.commit(s3, replacement, bucket=bucket, key=key, writer=database.writer_label(command))
    click.echo(f"Done: the database is now at txid {committed.manifest.txid} ({replacement.size:,} bytes); a running "
               f"environment serves it from its next request.")
    # The version this commit replaced is the one right after it in the listing, found by its ETag
    # (read afterwards: a write in between cannot make this name the wrong one).
    after = db_history.list_versions(s3, bucket=bucket, key=key)
    ours = next((i for i, version in enumerate(after) if committed.etag and version.etag == committed.etag), None)
    if ours is not None and ours + 1 < len(after) and not after[ours + 1].deleted:
        click.echo(f"The state it replaced is version {after[ours + 1].version_id}: "
                   f"`reconcile db restore --version {after[ours + 1].version_id}` puts it back.")
