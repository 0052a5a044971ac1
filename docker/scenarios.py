"""The checks docker/test.sh runs against the compose deployment (two replicas, one Redis).

Standard library only. Drives the replicas over their published ports and the engine with
the `docker` command; prints one `ok …` or `FAIL …` line per check and, at the end,
`accepted N / finished N / lost N` over every job a replica answered 202 for. Exit 1 on any
failure.

  python3 docker/scenarios.py --a-container ID --b-container ID --store-network NAME

A replica's URL is read from the engine (`docker port`) each time it is needed: a restarted
container gets a new host port when the compose file publishes on a free one.
"""

import argparse
import http.client
import json
import subprocess
import sys
import threading
import time
import urllib.parse

FAILURES = []
ACCEPTED = {}  # job id -> the replica that answered 202
LOCK = threading.Lock()


def check(ok, what, detail=""):
    detail = str(detail)
    detail = detail if len(detail) < 300 else detail[:300] + " …"
    print(("ok   " if ok else "FAIL ") + what + (f": {detail}" if detail and not ok else ""), flush=True)
    if not ok:
        FAILURES.append(what)
    return ok


def request(method, url, body=None, headers=None, timeout=20.0):
    """(status, headers, parsed JSON or None); status is an error text when no answer."""
    u = urllib.parse.urlsplit(url)
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=timeout)
    try:
        data = json.dumps(body).encode() if body is not None else None
        hdrs = dict(headers or {})
        if data is not None:
            hdrs["Content-Type"] = "application/json"
        conn.request(method, u.path + (f"?{u.query}" if u.query else ""), body=data, headers=hdrs)
        resp = conn.getresponse()
        raw = resp.read()
        try:
            doc = json.loads(raw) if raw else None
        except ValueError:
            doc = None
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, doc
    except (OSError, http.client.HTTPException) as e:
        return f"no answer ({type(e).__name__}: {e})", {}, None
    finally:
        conn.close()


def submit(base, duration, prefer="respond-async", timeout=20.0):
    status, headers, doc = request(
        "POST", f"{base}/v1/render", {"duration": duration}, {"Prefer": prefer}, timeout
    )
    job = doc.get("job_id") if isinstance(doc, dict) else None
    if status == 202 and job:
        with LOCK:
            ACCEPTED[job] = base
    return status, job, headers


def job_status(base, job, prefer=None):
    status, _, doc = request("GET", f"{base}/jobs/{job}", headers={"Prefer": prefer} if prefer else None)
    return status, (doc or {}).get("status") if isinstance(doc, dict) else None


def docker(*args):
    return subprocess.run(["docker", *args], capture_output=True, text=True, timeout=120)


class Replica:
    """A gateway container, reached on whatever host port the engine published 8080 on."""

    def __init__(self, container):
        self.container = container
        self.url, self.read_at = None, 0.0

    def __str__(self):
        # Asked again after a second: cheap enough for the load threads, fresh enough for a
        # restart (the scenarios wait for health before using a restarted replica).
        if self.url is None or time.time() - self.read_at > 1:
            out = docker("port", self.container, "8080").stdout.split()
            self.url = f"http://{out[0]}" if out else "http://127.0.0.1:1"
            self.read_at = time.time()
        return self.url


def wait_healthy(container, limit=60):
    deadline = time.time() + limit
    while time.time() < deadline:
        out = docker("inspect", "-f", "{{.State.Health.Status}}", container).stdout.strip()
        if out == "healthy":
            return True
        time.sleep(0.5)
    return False


def cross_replica(a, b):
    """A job submitted on A is read, long-polled and cancelled on B."""
    status, job, _ = submit(a, 2)
    check(status == 202 and job, "submit on A → 202 with a job id", f"{status}")
    if not job:
        return
    status, state = job_status(b, job)
    check(status == 200 and state in ("pending", "running"), "B reads A's job", f"{status} {state}")
    t = time.time()
    status, state = job_status(b, job, prefer="wait=10")
    took = time.time() - t
    check(status == 200 and state == "succeeded" and took < 9.5,
          f"B long-polls A's job to succeeded ({took:.1f} s)", f"{status} {state}")

    status, job, _ = submit(a, 60)
    if not check(status == 202 and job, "submit a 60 s job on A", f"{status}"):
        return
    time.sleep(1)
    status, _, doc = request("DELETE", f"{b}/jobs/{job}")
    check(status in (200, 202), "B cancels A's job", f"{status} {doc}")
    deadline, state = time.time() + 10, None
    while time.time() < deadline:
        _, state = job_status(a, job)
        if state == "canceled":
            break
        time.sleep(0.2)
    check(state == "canceled", "A sees the job canceled", f"{state}")
    with LOCK:
        ACCEPTED.pop(job, None)  # canceled on purpose: not counted as finished or lost


def kill_mid_jobs(a, b, a_container):
    """`docker kill` A while both run jobs: B takes A's over when their lease lapses."""
    threads, results = [], []

    def one(base):
        results.append(submit(base, 4)[0])

    for i in range(40):
        t = threading.Thread(target=one, args=(a if i % 2 == 0 else b,))
        t.start()
        threads.append(t)
    for t in threads:
        t.join()
    check(results.count(202) == 40, "40 jobs accepted on A and B", f"{results}")
    time.sleep(1.5)
    out = docker("kill", a_container)
    check(out.returncode == 0, "docker kill A", out.stderr)


def cut_off_from_redis(a, b, a_container, network, seconds=20):
    """A steady submit load on both while A is disconnected from the store network."""
    log = []  # (time, replica, status)
    stop = threading.Event()

    def load(base, name):
        while not stop.is_set():
            status, _, _ = submit(base, 1, timeout=15)
            log.append((time.time(), name, status))
            time.sleep(0.1)

    threads = [threading.Thread(target=load, args=(base, name))
               for base, name in ((a, "A"), (a, "A"), (b, "B"), (b, "B"))]
    for t in threads:
        t.start()
    time.sleep(5)
    cut = time.time()
    out = docker("network", "disconnect", network, a_container)
    check(out.returncode == 0, f"A disconnected from {network}", out.stderr)
    time.sleep(seconds)
    back = time.time()
    out = docker("network", "connect", network, a_container)
    check(out.returncode == 0, f"A reconnected to {network} after {seconds} s", out.stderr)
    time.sleep(15)
    stop.set()
    for t in threads:
        t.join()

    during = [s for (t, r, s) in log if r == "A" and cut + 1 < t < back]
    after = [s for (t, r, s) in log if r == "A" and t > back + 10]
    b_all = [s for (t, r, s) in log if r == "B"]
    odd = [s for (t, r, s) in log if s not in (202, 503)]
    print(f"     cut-off load: A answered {len(during)} while cut off "
          f"({during.count(503)} × 503, {during.count(202)} × 202), "
          f"B answered {len(b_all)} ({b_all.count(202)} × 202)", flush=True)
    check(during and during.count(503) >= len(during) - 2, "A answers 503 while cut off from Redis",
          f"{during}")
    check(not odd, "nothing but 202 and 503 under the cut", f"{odd[:10]}")
    check(after and after.count(202) == len(after), "A accepts again after it is reconnected",
          f"{after}")
    check(b_all and b_all.count(202) == len(b_all), "B keeps accepting throughout",
          f"{[s for s in b_all if s != 202][:10]}")


def sigterm_drains(b, b_container):
    """`docker stop` (SIGTERM to PID 1) answers a waiting request 202 and exits 0."""
    got = {}

    def wait_request():
        t = time.time()
        got["status"], got["job"], _ = submit(b, 8, prefer="wait=30", timeout=60)
        got["took"] = time.time() - t

    t = threading.Thread(target=wait_request)
    t.start()
    time.sleep(1)
    started = time.time()
    out = docker("stop", "-t", "40", b_container)
    stopped = time.time() - started
    t.join()
    code = docker("inspect", "-f", "{{.State.ExitCode}}", b_container).stdout.strip()
    check(out.returncode == 0 and code == "0", f"docker stop B: exit code {code} after {stopped:.1f} s",
          out.stderr)
    check(got.get("status") == 202, f"a wait=30 request on B answered 202 by the drain "
          f"({got.get('took', 0):.1f} s)", f"{got}")


def account(a, b, limit=120):
    """Every accepted job ends succeeded, read from whichever replica answers."""
    deadline = time.time() + limit
    pending = dict(ACCEPTED)
    finished, failed = 0, []
    while pending and time.time() < deadline:
        for job in list(pending):
            for base in (b, a):
                status, state = job_status(base, job)
                if status == 200:
                    break
            if state == "succeeded":
                finished += 1
                del pending[job]
            elif state in ("failed", "canceled"):
                failed.append((job, state))
                del pending[job]
        if pending:
            time.sleep(1)
    accepted = len(ACCEPTED)
    print(f"accepted {accepted} / finished {finished} / lost {accepted - finished}"
          f" (failed or canceled {len(failed)}, unfinished {len(pending)})", flush=True)
    check(finished == accepted, "every accepted job finished", f"{failed[:5]} {list(pending)[:5]}")


def main():
    p = argparse.ArgumentParser()
    for flag in ("--a-container", "--b-container", "--store-network"):
        p.add_argument(flag, required=True)
    o = p.parse_args()
    o.a, o.b = Replica(o.a_container), Replica(o.b_container)
    started = time.time()
    cross_replica(o.a, o.b)
    kill_mid_jobs(o.a, o.b, o.a_container)
    # A comes back (its restart policy may already have restarted it).
    docker("start", o.a_container)
    check(wait_healthy(o.a_container), "A healthy again after the kill")
    cut_off_from_redis(o.a, o.b, o.a_container, o.store_network)
    sigterm_drains(o.b, o.b_container)
    docker("start", o.b_container)
    check(wait_healthy(o.b_container), "B healthy again after the stop")
    account(o.a, o.b)
    print(f"scenarios took {time.time() - started:.0f} s; {len(FAILURES)} failed", flush=True)
    sys.exit(1 if FAILURES else 0)


if __name__ == "__main__":
    main()
