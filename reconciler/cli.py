"""The `reconcile` command line: validate, plan, show, apply, outputs, destroy, drift, history, db pull, demo,
local. Thin: each command loads the spec, builds a plan and hands it to render or apply; known
failures print one clear message."""
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
    write. Anything else, an error included, ends as Python always ends."""
    try:
        main(prog_name="reconcile")
    except SystemExit as done:
        if _QUICK_EXIT:
            _end_now(done.code)
        raise


def _end_now(code: object) -> None:
    code = 0 if code is None else code
    if not isinstance(code, int):
        return  # sys.exit("text"): Python prints it
    if any(t.is_alive() and not t.daemon for t in threading.enumerate() if t is not threading.main_thread()):
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
                click.echo(click.style("Warning: ", fg="yellow", bold=True) + warning, err=True)
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
    question = {"apply": "Apply these changes?", "force-unlock": "Remove the lock?"}.get(
        command, "Destroy these resources?")
    answer = click.prompt(f"\n{question} Only '{expected}' is accepted", default="", show_default=False)
    if answer.strip() != expected:
        nothing = {"apply": "changed", "force-unlock": "removed"}.get(command, "deleted")
        raise ReconcileError(f"{command} cancelled; nothing was {nothing}")


@main.group()
def db() -> None:
    """The live app's database in S3: download it as one file."""


@db.command("pull")
@common_options
@click.option("-o", "--output", metavar="FILE", help="Where to write it (default: the key's file name, here).")
@click.option("--force", is_flag=True, help="Replace FILE if it exists.")
@known_errors
def db_pull(file, region, profile, endpoint_url, output, force) -> None:
    """Write the database's current state as one SQLite file that passes integrity_check."""
    from reconciler import db as database

    ctx = Context(file, region, profile, endpoint_url)
    bucket, key = ctx.spec.bucket["name"], ctx.spec.bucket["database_key"]
    target = output or database.default_output(key)
    with click.progressbar(length=1, label=f"s3://{bucket}/{key}", file=sys.stderr) as bar:
        def progress(done: int, total: int) -> None:
            bar.length = max(total, 1)
            bar.update(done - bar.pos)

        pulled = database.pull(ctx.clients().s3, bucket=bucket, key=key, output=target, overwrite=force,
                               progress=progress)
    layout = (f"txid {pulled.txid}: the base and {pulled.deltas} page deltas" if pulled.txid is not None
              else "the single-object layout")
    click.echo(f"Wrote {pulled.path} ({pulled.size:,} bytes; {layout}); PRAGMA integrity_check: ok.")
