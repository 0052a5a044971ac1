"""Every job-API operation of the OpenAPI document against every job the test made.

Run by tests/openapi.rs with the venv's python:

    python matrix.py SCHEMA BASE_URL TENANT JOBS_JSON LINK_JSON

JOBS_JSON maps a state name to a job id; LINK_JSON is {"job": name, "expires": …, "sig": …}
for a genuine signed result URL. Schemathesis' own fuzzing picks ids at random, so it may
never ask for the result of a running job; this asks every operation about every job once
(reads first, then DELETE and POST, which change state), validates each answer with
schemathesis' checks (and that its URLs name the job on this gateway), and prints one
JSON line per request:
{"operation", "job", "status", "failures"}.

`GET /jobs/{id}` is also asked for its event stream (`Accept: text/event-stream`, as the
operation "GET /jobs/{id} (text/event-stream)"): schemathesis validates each event against
the document's event schema. A stream of an unfinished job does not end by itself; it is
read for two seconds (its first event). "resumed:succeeded" resumes after the finished
job's last event.
"""

import json
import sys

import schemathesis
from schemathesis.core.failures import FailureGroup

schema_path, base_url, tenant, jobs_json, link_json = sys.argv[1:6]
jobs = json.loads(jobs_json)
link = json.loads(link_json)
schema = schemathesis.openapi.from_path(schema_path)

READS = ["GET", "HEAD"]
WRITES = ["POST", "DELETE"]


def operations():
    ops = [r.ok() for r in schema.get_all_operations()]
    # The upstream-facing task callback needs a token the gateway handed to an upstream:
    # tests/task_callback.rs drives it; here it is only fuzzed (every answer a 4xx).
    ops = [op for op in ops if op.path.startswith("/jobs/") and "{token}" not in op.path]
    # Reads before writes, so every read sees the states the test set up.
    return sorted(ops, key=lambda op: (op.method.upper() in WRITES, op.method.upper() == "DELETE", op.path))


def urls(op, job_id, response):
    """What the schema cannot say: the URLs name this job, absolutely, on this gateway."""
    status_url = f"{base_url}/jobs/{job_id}"
    wrong = []

    def header(name):  # schemathesis keeps every value of a header, in a list
        return (response.headers.get(name) or [None])[0]

    if op.path.endswith("/result") and response.status_code == 202:
        if header("location") != status_url + "/result":
            wrong.append(f"Location {header('location')!r}, not {status_url}/result")
    if header("content-type") == "application/json" and op.method.upper() != "HEAD":
        doc = response.json()
        if "job_id" in doc and doc.get("status_url") != status_url:
            wrong.append(f"status_url {doc.get('status_url')!r}, not {status_url}")
    return wrong


STREAM = "GET /jobs/{id} (text/event-stream)"


def ask(op, job, label=None, timeout=None, **case):
    case = op.Case(**case)
    record = {"operation": label or op.label, "job": job}
    response = case.call(base_url=base_url, timeout=timeout)
    record["status"] = response.status_code
    try:
        case.validate_response(response)
        record["failures"] = urls(op, case.path_parameters["id"], response)
    except FailureGroup as group:
        record["failures"] = [str(group)]
    print(json.dumps(record), flush=True)


def streams(op):
    """The event stream of every job, as `ask` does for the document."""
    accept = {"Accept": "text/event-stream"}
    for job, job_id in jobs.items():
        headers = {"X-Api-Key": tenant, **accept}
        ask(op, job, STREAM, 2, path_parameters={"id": job_id}, headers=headers)
    headers = {"X-Api-Key": tenant, "Last-Event-ID": "4", **accept}
    ask(op, "resumed:succeeded", STREAM, 2, path_parameters={"id": jobs["succeeded"]}, headers=headers)
    ask(op, "no-tenant", STREAM, 2, path_parameters={"id": jobs["succeeded"]}, headers=accept)


for op in operations():
    for job, job_id in jobs.items():
        ask(op, job, path_parameters={"id": job_id}, headers={"X-Api-Key": tenant})
    if op.label == "GET /jobs/{id}":
        streams(op)
    if op.path.endswith("/result"):
        # The signed link, without the tenant header; and the same link for another job.
        query = {"expires": link["expires"], "sig": link["sig"]}
        ask(op, "signed:" + link["job"], path_parameters={"id": jobs[link["job"]]}, query=query)
        ask(op, "signed:other", path_parameters={"id": jobs["running"]}, query=query)
    # Without the tenant header.
    ask(op, "no-tenant", path_parameters={"id": jobs["succeeded"]})
