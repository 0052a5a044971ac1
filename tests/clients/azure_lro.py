"""Drive prefer-gateway jobs with azure-core's stock long-running-operation poller.

This is the "real client" check of issue 14: nothing here knows the gateway beyond what the
Microsoft REST API guidelines say a long-running operation looks like. Each scenario sends
one request through a plain ``PipelineClient`` (default policies, ``RequestsTransport``)
and hands the initial response to ``LROPoller`` with ``LROBasePolling``, exactly as a
generated Azure SDK client does. A pipeline policy records every request the client makes,
so a failure prints the whole conversation.

Usage::

    azure_lro.py BASE_URL [--ok PATH] [--fail PATH] [--slow PATH]

BASE_URL is the gateway (``http://127.0.0.1:PORT``); the three paths are ``sync`` routes
whose upstreams behave as follows (the Rust test ``tests/azure_client.rs`` provides them):

* ``--ok`` (default ``/v1/ok``): answers at once, ``200 {"echo": <request JSON>}``;
* ``--fail`` (default ``/v1/fail``): answers ``500``;
* ``--slow`` (default ``/v1/slow``): holds the request for about ten seconds.

Scenarios (one line each on stdout; exit status 1 if any failed):

* ``success``: ``Prefer: respond-async`` → ``202``; the poller follows ``Operation-Location``
  to ``succeeded``, then ``resourceLocation``; the result is the upstream's body.
* ``failure``: the job fails; ``poller.result()`` raises ``HttpResponseError`` wrapping
  ``OperationFailed``, with the status document's ``error`` parsed (code
  ``upstream_status``); ``poller.status()`` is ``failed``.
* ``cancel``: ``DELETE /jobs/{id}`` while the poller runs; the poller ends with
  ``HttpResponseError`` wrapping ``OperationFailed("Operation failed or canceled")`` and
  ``poller.status()`` is ``canceled``, long before the slow upstream would have answered.
* ``wait``: ``Prefer: wait=5`` on the fast upstream → ``200`` with the upstream's body;
  the poller is done on construction and makes no request at all.
"""

import argparse
import json
import sys
import threading
import time
import uuid

from azure.core import PipelineClient
from azure.core.exceptions import HttpResponseError
from azure.core.pipeline.policies import HTTPPolicy
from azure.core.pipeline.transport import RequestsTransport
from azure.core.polling import LROPoller
from azure.core.polling.base_polling import LROBasePolling, OperationFailed
from azure.core.rest import HttpRequest

# Fallback poll interval; the gateway's Retry-After (1 s) takes precedence in azure-core.
POLL_INTERVAL = 0.05
# How long any one scenario may take before it counts as hung.
SCENARIO_TIMEOUT = 30.0


class Recorder(HTTPPolicy):
    """A pipeline policy that logs (method, url, status, body "status") of every exchange."""

    def __init__(self):
        super().__init__()
        self.lock = threading.Lock()
        self.log = []

    def send(self, request):
        response = self.next.send(request)
        http = response.http_response
        state = None
        try:
            body = json.loads(http.text())
            if isinstance(body, dict):
                state = body.get("status")
        except Exception:  # pylint: disable=broad-except
            pass
        with self.lock:
            self.log.append((request.http_request.method, request.http_request.url, http.status_code, state))
        return response

    def entries(self):
        with self.lock:
            return list(self.log)

    def gets(self):
        return [e for e in self.entries() if e[0] == "GET"]

    def describe(self):
        parts = []
        for method, url, code, state in self.entries():
            part = "{} {} {}".format(method, url, code)
            parts.append(part + " ({})".format(state) if state else part)
        return "; ".join(parts) or "(no requests)"


class Failure(Exception):
    """A scenario's expectation that did not hold."""


def check(cond, message):
    if not cond:
        raise Failure(message)


def new_client(base):
    recorder = Recorder()
    client = PipelineClient(
        base,
        per_call_policies=[recorder],
        # The default transport, without proxies from the environment: the gateway is local.
        transport=RequestsTransport(use_env_settings=False),
    )
    return client, recorder


def submit(client, path, prefer, payload):
    request = HttpRequest(
        "POST",
        client.format_url(path),
        json=payload,
        headers={"Prefer": prefer, "Content-Type": "application/json"},
    )
    return client.send_request(request, _return_pipeline_response=True)


def as_json(pipeline_response):
    return json.loads(pipeline_response.http_response.text())


def poller_for(client, initial):
    return LROPoller(client, initial, as_json, LROBasePolling(timeout=POLL_INTERVAL))


def finish(poller):
    """Waits for the poller; returns ("ok", result) or ("raised", exception)."""
    try:
        result = poller.result(timeout=SCENARIO_TIMEOUT)
    except HttpResponseError as err:
        return "raised", err
    check(poller.done(), "poller still running after {} s".format(SCENARIO_TIMEOUT))
    return "ok", result


def check_operation_failed(err, state):
    """What LROBasePolling raises for a terminal failed/canceled status: HttpResponseError
    wrapping OperationFailed, with the monitor's last (200) status document as response."""
    check(isinstance(err.inner_exception, OperationFailed), "not OperationFailed: {!r}".format(err.inner_exception))
    check(str(err.inner_exception) == "Operation failed or canceled", "inner error: {}".format(err.inner_exception))
    check(err.status_code == 200, "the error's response has status {}".format(err.status_code))
    doc = json.loads(err.response.text())
    check(doc.get("status") == state, "the error's response is not the {} status document: {}".format(state, doc))


def check_accepted(base, initial):
    """The 202 handle of issue 14: absolute Location/Operation-Location, the LRO headers.

    Checked after the poller has run, so a failure says first what the client itself hit."""
    http = initial.http_response
    check(http.status_code == 202, "expected 202 from respond-async, got {}".format(http.status_code))
    doc = json.loads(http.text())
    for key in ("id", "job_id", "status", "status_url"):
        check(key in doc, "202 body lacks {!r}: {}".format(key, doc))
    check(doc["status"] == "pending", "202 body status {!r}, expected 'pending'".format(doc["status"]))
    status_url = "{}/jobs/{}".format(base, doc["job_id"])
    check(doc["status_url"] == status_url, "status_url {!r}, expected {!r}".format(doc["status_url"], status_url))
    for header in ("Location", "Operation-Location"):
        value = http.headers.get(header)
        check(value == status_url, "{}: {!r}, expected {!r}".format(header, value, status_url))
    check(http.headers.get("Retry-After") is not None, "202 without Retry-After")
    applied = http.headers.get("Preference-Applied")
    check(applied == "respond-async", "Preference-Applied: {!r}".format(applied))
    return doc


def scenario_success(base, args, client, rec):
    payload = {"scenario": "success", "nonce": str(uuid.uuid4())}
    initial = submit(client, args.ok, "respond-async", payload)
    poller = poller_for(client, initial)
    outcome, value = finish(poller)
    check(outcome == "ok", "poller raised: {}".format(value))
    check(poller.status() == "succeeded", "poller.status() {!r}".format(poller.status()))
    check(value == {"echo": payload}, "result {!r} is not the upstream's body".format(value))
    last = rec.entries()[-1]
    check(last[0] == "GET" and last[1].endswith("/result"), "last request was not the resourceLocation GET")
    check_accepted(base, initial)


def scenario_failure(base, args, client, rec):
    initial = submit(client, args.fail, "respond-async", {"scenario": "failure"})
    poller = poller_for(client, initial)
    outcome, value = finish(poller)
    check(outcome == "raised", "poller returned {!r}, expected HttpResponseError".format(value))
    check(poller.status() == "failed", "poller.status() {!r}, expected 'failed'".format(poller.status()))
    check_operation_failed(value, "failed")
    check(value.error is not None, "HttpResponseError without a parsed error: {}".format(value))
    check(value.error.code == "upstream_status", "error.code {!r}, expected 'upstream_status'".format(value.error.code))
    check(bool(value.error.message), "error without a message")
    check_accepted(base, initial)


def scenario_cancel(base, args, client, rec):
    started = time.monotonic()
    initial = submit(client, args.slow, "respond-async", {"scenario": "cancel"})
    poller = poller_for(client, initial)
    deadline = time.monotonic() + 5
    while not rec.gets() and not poller.done() and time.monotonic() < deadline:
        time.sleep(0.01)
    if not rec.gets():
        poller.wait(0)  # a poller that stopped before its first GET raises its error here
        raise Failure("the poller made no status request within 5 s")
    check(not poller.done(), "poller finished before the cancel: {}".format(poller.status()))
    status_url = client.format_url(json.loads(initial.http_response.text())["status_url"])
    deleted = client.send_request(HttpRequest("DELETE", status_url))
    check(deleted.status_code in (200, 202), "DELETE answered {}".format(deleted.status_code))
    check(deleted.json().get("status") == "canceled", "DELETE body: {}".format(deleted.text()))
    outcome, value = finish(poller)
    check(outcome == "raised", "poller returned {!r}, expected HttpResponseError".format(value))
    check_operation_failed(value, "canceled")
    check(poller.status() == "canceled", "poller.status() {!r}, expected 'canceled'".format(poller.status()))
    took = time.monotonic() - started
    check(took < 8, "cancel took {:.1f} s: the slow upstream's answer was awaited".format(took))
    check_accepted(base, initial)


def scenario_wait(base, args, client, rec):
    payload = {"scenario": "wait", "nonce": str(uuid.uuid4())}
    initial = submit(client, args.ok, "wait=5", payload)
    http = initial.http_response
    check(http.status_code == 200, "expected 200 from wait=5, got {}".format(http.status_code))
    poller = poller_for(client, initial)
    done_at_once = poller.done()
    outcome, value = finish(poller)
    check(outcome == "ok", "poller raised: {}".format(value))
    check(value == {"echo": payload}, "result {!r} is not the upstream's body".format(value))
    # LROBasePolling polls whatever a monitor header names, even on a 200.
    monitors = [h for h in ("Operation-Location", "Location") if h in http.headers]
    check(
        done_at_once and not rec.gets(),
        "the poller polled after the 200 (which carried {}): {}".format(monitors or "no monitor header", rec.describe()),
    )


SCENARIOS = [
    ("success", scenario_success),
    ("failure", scenario_failure),
    ("cancel", scenario_cancel),
    ("wait", scenario_wait),
]


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("base", help="the gateway, e.g. http://127.0.0.1:8080")
    parser.add_argument("--ok", default="/v1/ok")
    parser.add_argument("--fail", default="/v1/fail")
    parser.add_argument("--slow", default="/v1/slow")
    args = parser.parse_args()
    base = args.base.rstrip("/")
    failed = 0
    for name, run in SCENARIOS:
        started = time.monotonic()
        client, rec = new_client(base)
        try:
            run(base, args, client, rec)
        except Exception as err:  # pylint: disable=broad-except
            failed += 1
            print("FAIL {}: {}: {} -- requests: {}".format(name, type(err).__name__, err, rec.describe()), flush=True)
            continue
        took = time.monotonic() - started
        print("ok   {} ({:.1f} s): {}".format(name, took, rec.describe()), flush=True)
    passed = len(SCENARIOS) - failed
    print("azure_lro: {} passed, {} failed".format(passed, failed), flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
