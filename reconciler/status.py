"""`reconcile status`: one look at the running function — its state, the image it runs against the
one its tag points at, whether its URL answers, and its CloudWatch metrics for a window.

Owns reading those (read-only calls), judging them (the problems that make status exit 1) and
rendering them as text; --json prints the same dictionary the text is rendered from.
"""
from __future__ import annotations

import functools
import re
import time
import urllib.error
import urllib.request
from datetime import datetime
from typing import Any, Callable

from reconciler.aws import absent_on, fan_out
from reconciler.errors import ReconcileError
from reconciler.kinds import container_image
from reconciler.kinds.lambda_function import split_image_uri
from reconciler.timespec import iso

PROBE_TIMEOUT = 5.0
# Anything below 500 is the app (or the runtime) answering: a 404 or 401 from a path the app does not
# serve still means the function ran; 5xx means it could not serve (the runtime's 503, Lambda's 502).
ANSWERING_BELOW = 500
COUNTS = ("Invocations", "Errors", "Throttles")
PERCENTILES = ("p50", "p99")


def build_report(clients, spec, *, start: datetime, end: datetime, max_error_rate: float,
                 probe_url: str | None = None) -> dict:
    """Everything status shows, as one JSON-ready dictionary; `probe_url` replaces the Function
    URL as the address the GET goes to (the URL shown stays the function's)."""
    name = spec.function["name"]
    answer = read_function(clients, name)  # first: "no such function" must not hide behind other errors
    calls: dict[str, Callable[[], Any]] = {
        "url": lambda: function_url(clients, name),
        "image": lambda: image_state(clients, answer, repository=spec.repository["name"], tag=spec.image["tag"]),
        "metrics": lambda: read_metrics(clients.client("cloudwatch"), name, start=start, end=end),
        "runtime": lambda: read_runtime_failures(clients.client("logs"), name, start=start, end=end),
    }
    reads = fan_out(calls)
    target = probe_url or reads["url"]
    probed = probe(target) if target else {"probed": None, "status": None, "latency_ms": None,
                                           "answering": False, "error": None}
    report = {
        "name": name, "region": clients.region, "function": function_state(answer), "image": reads["image"],
        "url": {"url": reads["url"], "expected": spec.url is not None, **probed},
        "metrics": {"since": iso(start), "until": iso(end), **_with_runtime(reads["metrics"], reads["runtime"])},
    }
    report["problems"] = problems(report, max_error_rate=max_error_rate)
    report["healthy"] = not report["problems"]
    return report


def read_function(clients, name: str) -> dict:
    answer = absent_on(("ResourceNotFoundException",), lambda: clients.awslambda.get_function(FunctionName=name))
    if answer is None:
        raise ReconcileError(f"function {name} does not exist in {clients.region}: nothing to report — "
                             "run `reconcile apply` to create it (or check -f, --region and --profile)")
    return answer


def function_state(answer: dict) -> dict:
    config = answer["Configuration"]
    return {"state": config.get("State"), "state_reason": config.get("StateReason"),
            "last_update_status": config.get("LastUpdateStatus"),
            "last_update_reason": config.get("LastUpdateStatusReason")}


def image_state(clients, answer: dict, *, repository: str, tag: str) -> dict:
    """The digest the function runs against the one `tag` points at now in ECR."""
    code = answer.get("Code", {})
    running = split_image_uri(code.get("ResolvedImageUri") or code.get("ImageUri", ""))[1]
    tagged = container_image.tag_digest(clients, repository, tag)
    if tagged is None:
        verdict = f"unknown: {repository}:{tag} is not in ECR"
    elif running == tagged:
        verdict = "current"
    else:
        verdict = f"behind: tag now points at {tagged}"
    return {"running": running or answer["Configuration"].get("CodeSha256"), "tag": f"{repository}:{tag}",
            "tag_digest": tagged, "current": running is not None and running == tagged, "verdict": verdict}


def function_url(clients, name: str) -> str | None:
    answer = absent_on(("ResourceNotFoundException",),
                       lambda: clients.awslambda.get_function_url_config(FunctionName=name))
    return answer["FunctionUrl"] if answer else None


def probe(url: str, *, timeout: float = PROBE_TIMEOUT, clock: Callable[[], float] = time.monotonic) -> dict:
    """One GET: its status code and latency, or why nothing answered."""
    started = clock()
    status: int | None = None
    error: str | None = None
    try:
        with urllib.request.urlopen(urllib.request.Request(url, method="GET"), timeout=timeout) as answer:
            status = answer.status
    except urllib.error.HTTPError as exc:  # an answer all the same
        status = exc.code
    except (urllib.error.URLError, OSError, ValueError) as exc:
        error = str(getattr(exc, "reason", None) or exc)
    return {"probed": url, "status": status, "latency_ms": round((clock() - started) * 1000, 1),
            "answering": status is not None and status < ANSWERING_BELOW, "error": error}


def metric_period(start: datetime, end: datetime) -> int:
    """One period covering the whole window: CloudWatch wants multiples of 60 s (of 3600 s for
    the older data a long window reaches), and one datapoint per metric is all status shows."""
    seconds = max(60, int((end - start).total_seconds() + 0.999))
    step = 60 if seconds <= 3600 else 3600
    return -(-seconds // step) * step


def read_metrics(cloudwatch, name: str, *, start: datetime, end: datetime) -> dict:
    """Invocations, errors and throttles (Sum) and Duration p50/p99 over [start, end)."""
    common = {"Namespace": "AWS/Lambda", "Dimensions": [{"Name": "FunctionName", "Value": name}],
              "StartTime": start, "EndTime": end, "Period": metric_period(start, end)}
    # get_metric_statistics, not get_metric_data: moto answers a percentile Stat in get_metric_data
    # with a 500, and one call per metric still costs one round trip (fan_out).
    calls: dict[str, Callable[[], Any]] = {
        metric: functools.partial(cloudwatch.get_metric_statistics, MetricName=metric, Statistics=["Sum"], **common)
        for metric in COUNTS}
    calls["Duration"] = functools.partial(cloudwatch.get_metric_statistics, MetricName="Duration",
                                          ExtendedStatistics=list(PERCENTILES), **common)
    answers = fan_out(calls)
    figures: dict[str, Any] = {metric.lower(): _sum(answers[metric]["Datapoints"]) for metric in COUNTS}
    for percentile in PERCENTILES:
        figures[f"duration_{percentile}_ms"] = _percentile(answers["Duration"]["Datapoints"], percentile)
    invocations, errors = figures["invocations"], figures["errors"]
    figures["error_rate"] = errors / invocations if invocations else None
    return figures


# The runtime's one line per 5xx it answers itself (runtime/failures.py): Lambda counts those
# invocations as successes, so its Errors metric never sees them.
_RUNTIME_FAILURE = re.compile(r"canvas-runtime (5\d\d) request=\S+ cause=([\w-]+)")


def read_runtime_failures(logs_client, name: str, *, start: datetime, end: datetime) -> dict | None:
    """The runtime's own 5xx answers in the window, by cause, from the log group (None: no group yet)."""
    from reconciler import logs

    try:
        events = logs.read_events(logs_client, function=name, start=logs.to_millis(start), end=logs.to_millis(end),
                                  pattern='"canvas-runtime"')
    except ReconcileError:  # no log group: never invoked, so nothing failed
        return None
    causes: dict[str, int] = {}
    for event in events:
        found = _RUNTIME_FAILURE.search(event.message)
        if found:
            causes[found.group(2)] = causes.get(found.group(2), 0) + 1
    return dict(sorted(causes.items()))


def _with_runtime(figures: dict, causes: dict | None) -> dict:
    """The metrics plus the runtime's 5xx answers, which count toward the error rate."""
    failed = sum(causes.values()) if causes else 0
    invocations = figures["invocations"]
    rate = (figures["errors"] + failed) / invocations if invocations else None
    return {**figures, "runtime_5xx": failed, "runtime_5xx_causes": causes or {}, "error_rate": rate}


def _sum(datapoints: list[dict]) -> float:
    return sum(point.get("Sum", 0.0) for point in datapoints)


def _percentile(datapoints: list[dict], percentile: str) -> float | None:
    # Percentiles of two periods do not combine: when CloudWatch's alignment splits the window,
    # the larger is the honest bound. None when none was reported (moto computes no percentiles).
    values = [point["ExtendedStatistics"][percentile] for point in datapoints
              if percentile in point.get("ExtendedStatistics", {})]
    return max(values) if values else None


def problems(report: dict, *, max_error_rate: float) -> list[str]:
    """What makes status exit 1: a failed function or update, too many errors, a URL that does not answer."""
    found = []
    function = report["function"]
    if function["state"] == "Failed":
        found.append(f"the function's State is Failed: {function['state_reason'] or 'no reason given'}")
    if function["last_update_status"] == "Failed":
        found.append(f"its last update failed: {function['last_update_reason'] or 'no reason given'}")
    rate = report["metrics"]["error_rate"]
    if rate is not None and rate > max_error_rate:
        found.append(f"error rate {rate:.1%} (Lambda errors and the runtime's 5xx answers) is over "
                     f"--max-error-rate {max_error_rate:.1%}")
    url = report["url"]
    if url["expected"] and not url["answering"]:
        found.append(f"the Function URL does not answer: {_answer(url)}")
    return found


def _answer(url: dict) -> str:
    if url["url"] is None:
        return "the function has no Function URL (canvas.yaml declares one: run `reconcile apply`)"
    if url["status"] is not None:
        return f"HTTP {url['status']} in {url['latency_ms']:.0f} ms"
    return f"no answer ({url['error']}) after {url['latency_ms']:.0f} ms"


def render_text(report: dict) -> str:
    function, image, url, figures = report["function"], report["image"], report["url"], report["metrics"]
    lines = [
        f"Function {report['name']} in {report['region']}",
        f"  state:        {function['state']} (last update: {function['last_update_status']})",
        f"  image:        {image['running']} — {image['verdict']}",
        f"  url:          {url['url'] or '(none)'}" + _probe_line(url),
        f"Metrics {figures['since']} → {figures['until']}",
        f"  invocations:  {figures['invocations']:g}",
        f"  errors:       {figures['errors']:g} from Lambda, {figures['runtime_5xx']} runtime 5xx"
        + _causes(figures["runtime_5xx_causes"]) + _rate(figures["error_rate"]),
        f"  throttles:    {figures['throttles']:g}",
        f"  duration:     p50 {_ms(figures['duration_p50_ms'])}, p99 {_ms(figures['duration_p99_ms'])}",
    ]
    found = report["problems"]
    lines.append("Problems:\n" + "\n".join(f"  - {problem}" for problem in found) if found else "Healthy.")
    return "\n".join(lines)


def _probe_line(url: dict) -> str:
    if url["url"] is None and url["probed"] is None:
        return ""
    where = f" (probed {url['probed']})" if url["probed"] != url["url"] else ""
    return f"\n  answers:      {'yes' if url['answering'] else 'NO'}: {_answer(url)}{where}"


def _causes(causes: dict) -> str:
    return " (" + ", ".join(f"{cause}: {count}" for cause, count in causes.items()) + ")" if causes else ""


def _rate(rate: float | None) -> str:
    return f" ({rate:.1%} of invocations)" if rate is not None else ""


def _ms(value: float | None) -> str:
    return f"{value:.0f} ms" if value is not None else "n/a"
