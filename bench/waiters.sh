#!/usr/bin/env bash
# The waiter scenario (issue 6, bullet 2): N concurrent `Prefer: wait=60` requests parked on a
# `task` route whose tasks finish 30 s after creation, with the gateway polling every 1 s.
#
# Upstream: examples/task_stub.rs (stateless, counts polls per second). Load:
# examples/waiter_load.rs (HTTP/1.1 with one connection per waiter, or h2c streams over a few
# connections). Per N, a fresh stub and gateway are started, warmed up with a few short waits,
# and measured: errors, gateway RSS per waiter, CPU per poll, polls/s seen by the stub,
# completion → response latency at the client, RSS after the waiters drain, peak open fds.
#
#   bench/waiters.sh                               RUNS="1000 10000 18000 h2:50000"
#   RUNS="1000 h2:5000" RAMP=2 bench/waiters.sh     quick look
#
# Knobs: RUNS (N, or h2:N), RAMP (s, waiter starts spread over it; 5), FINISH_AFTER (s; 30),
# WAIT (Prefer wait=; 60), H2_CONNS (100), SETTLE (s after the last answer before the
# after-drain RSS; 10, as issue 16 defines it), WARMUP (waiters with 0.2 s tasks before the
# baseline; 50), THP (off: the gateway runs with transparent huge pages disabled via
# prctl(PR_SET_THP_DISABLE), so VmRSS is what it touches, not 2 MiB pages khugepaged filled
# in; system: the machine's setting).
# GATEWAY (a gateway binary to measure instead of the fresh build: the commit before a change),
# GW_LOG (the gateway's RUST_LOG; warn — its lines are summarised by message in the report),
# MAX_CONNS (server.max_connections; default ulimit -n − 1,024 upstream connections − 256, so
# 18,000 parked HTTP/1.1 waiters fit under 20,000 fds instead of stopping at the 10,000 default),
# WORKER_THREADS (server.worker_threads; unset = one per-core runtime per CPU, 0 = the main
# runtime, as before the per-core runtimes),
# SOURCES (HTTP/1.1 client source addresses 127.0.0.1…K; 8 — with one, connects to one ip:port
# stall past ~14,100 connections on the kernel's ephemeral port search; see waiter_load.rs).
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${RUNS:-"1000 10000 18000 h2:50000"}
RAMP=${RAMP:-5}
FINISH_AFTER=${FINISH_AFTER:-30}
WAIT=${WAIT:-60}
H2_CONNS=${H2_CONNS:-100}
SOURCES=${SOURCES:-8}
SETTLE=${SETTLE:-10}
WARMUP=${WARMUP:-50}
THP=${THP:-off}
GW_LOG=${GW_LOG:-warn}
TICK=$(getconf CLK_TCK)
ulimit -n "$(ulimit -Hn)" # 18,000 parked HTTP/1.1 connections need as many fds (gateway and client)
NOFILE=$(ulimit -n)
MAX_CONNS=${MAX_CONNS:-$((NOFILE - 1024 - 256))}

cargo build --release -q
cargo build --release -q --examples
tdir=${CARGO_TARGET_DIR:-target}
gw_bin=${GATEWAY:-$tdir/release/prefer-gateway} # GATEWAY=path: measure another build (e.g. the commit before a change)
stub_bin=$tdir/release/examples/task_stub
load_bin=$tdir/release/examples/waiter_load

work=$(mktemp -d)
pids=()
stub_pid=0 client_pid=0 gw_pid=0
cleanup() { # what this script started; the gateway's drain_timeout is 1 s, so wait is short
  local p
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  pids=()
}
trap 'cleanup; rm -rf "$work"' EXIT
trap 'exit 130' INT TERM

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}
wait_up() { # url: until anything answers over HTTP (10 s)
  local i
  for i in $(seq 100); do
    [ "$(curl -s -o /dev/null -w '%{http_code}' "$1" || true)" != 000 ] && return 0
    sleep 0.1
  done
  echo "nothing answers at $1" >&2
  return 1
}
rss_kib() { awk '/^VmRSS:/{print $2}' "/proc/$1/status"; }
cpu_ticks() { # utime+stime (fields 14+15; comm may hold spaces, so cut after ')'); 0 if gone
  { sed 's/^.*) //' "/proc/$1/stat" 2>/dev/null || true; } | awk '{ s = $12 + $13 } END { print s + 0 }'
}
fd_count() { find "/proc/$1/fd" -mindepth 1 -maxdepth 1 2>/dev/null | wc -l; }
machine_ticks() { awk '/^cpu /{print $2 + $3 + $4 + $7 + $8 + $9, $2 + $3 + $4 + $5 + $6 + $7 + $8 + $9}' /proc/stat; }
sample() { # phase → "epoch phase rss_kib gw_ticks fds stub_ticks client_ticks busy total {stub /stats}"
  local t=$EPOCHREALTIME rss ticks st fds other
  rss=$(rss_kib "$gw_pid"); ticks=$(cpu_ticks "$gw_pid")
  other="$(cpu_ticks "$stub_pid") $(cpu_ticks "$client_pid") $(machine_ticks)"
  st=$(curl -s --max-time 2 "http://$stub_addr/stats" || echo '{}')
  fds=$(fd_count "$gw_pid")
  echo "$t $1 $rss $ticks $fds $other $st" >> "$samples"
}

: > "$work/rows"
: > "$work/details"
run_one() { # spec: N (HTTP/1.1) or h2:N
  local spec=$1 n mode=() warm=() label gw_port url i launch rc
  n=${spec#h2:}
  if [ "$spec" != "$n" ]; then
    mode=(--h2 --connections "$H2_CONNS"); warm=(--h2 --connections 2); label="h2c, $H2_CONNS conns"
  else
    mode=(--sources "$SOURCES"); label="HTTP/1.1"
  fi
  [ "$spec" = "$n" ] && [ $((n + 200)) -gt "$NOFILE" ] && echo "warning: $n connections vs ulimit -n $NOFILE" >&2
  samples=$work/samples-$spec
  : > "$samples"
  "$stub_bin" --finish-after "$FINISH_AFTER" > "$work/stub.out" 2> "$work/stub.err" &
  stub_pid=$!
  pids+=("$stub_pid")
  for i in $(seq 50); do [ -s "$work/stub.out" ] && break; sleep 0.1; done
  stub_addr=$(head -1 "$work/stub.out")
  gw_port=$(free_port)
  cat > "$work/gw.toml" <<TOML
[server]
listen = "127.0.0.1:$gw_port"
drain_timeout = "1s"
max_connections = $MAX_CONNS
${WORKER_THREADS:+worker_threads = $WORKER_THREADS}
[defaults]
poll_interval = "1s"
max_wait = "600s"
[jobs]
store = "memory"
[[routes]]
name = "waiters"
kind = "task"
methods = ["POST"]
path = "/v1/tasks"
upstream = "http://$stub_addr"
[routes.task]
id = "/taskId"
status_url = "/v1/tasks/{id}"
state = "/status"
succeeded = ["succeeded"]
failed = ["failed"]
TOML
  "$gw_bin" check --config "$work/gw.toml" > /dev/null
  if [ "$THP" = off ]; then # PR_SET_THP_DISABLE (41) survives the exec into the gateway
    RUST_LOG=$GW_LOG python3 -c 'import ctypes, os, sys
if ctypes.CDLL(None).prctl(41, 1, 0, 0, 0) != 0: sys.exit("prctl(PR_SET_THP_DISABLE) failed")
os.execv(sys.argv[1], sys.argv[1:])' "$gw_bin" run --config "$work/gw.toml" 2> "$work/gw-$spec.log" &
  else
    RUST_LOG=$GW_LOG "$gw_bin" run --config "$work/gw.toml" 2> "$work/gw-$spec.log" &
  fi
  gw_pid=$!
  pids+=("$gw_pid")
  url="http://127.0.0.1:$gw_port/v1/tasks"
  wait_up "$url"
  # Warm-up through the same code paths (0.2 s tasks), then the baseline.
  "$load_bin" "$url" --waiters "$WARMUP" --ramp 0.5 --finish-after-ms 200 \
    "${warm[@]}" > "$work/warmup-$spec.json" 2> /dev/null
  sleep 2
  sample base
  echo "== $spec: $n waiters, $label, ramp ${RAMP}s (baseline RSS $(rss_kib "$gw_pid") KiB)"
  : > "$work/client-$spec.json"
  launch=$EPOCHREALTIME
  "$load_bin" "$url" --waiters "$n" --ramp "$RAMP" --wait "$WAIT" "${mode[@]}" \
    > "$work/client-$spec.json" 2> "$work/client-$spec.err" &
  local client=$! keep=()
  client_pid=$client
  pids+=("$client")
  while kill -0 "$client" 2>/dev/null && ! grep -q '^{' "$work/client-$spec.json"; do
    sample run
    sleep 1
  done
  rc=0; wait "$client" || rc=$?
  client_pid=0
  for i in "${pids[@]}"; do [ "$i" = "$client" ] || keep+=("$i"); done
  pids=("${keep[@]}")
  for i in $(seq "$SETTLE"); do sleep 1; sample drain; done
  sample after
  python3 - "$spec" "$n" "$label" "$launch" "$FINISH_AFTER" "$RAMP" "$TICK" "$rc" \
    "$samples" "$work/client-$spec.json" "$work/warmup-$spec.json" "$work/gw-$spec.log" \
    >> "$work/rows" 2>> "$work/details" <<'PY'
import json, math, re, sys
spec, n, label, launch, finish, ramp, tck, rc, sf, cf, wf, lf = sys.argv[1:]
n, launch, finish, ramp, tck = int(n), float(launch), float(finish), float(ramp), int(tck)
rows = []
for line in open(sf):
    t, phase, rss, ticks, fds, stub, client, busy, total, st = line.rstrip("\n").split(" ", 9)
    try: st = json.loads(st)
    except ValueError: st = {}
    rows.append(dict(t=float(t), phase=phase, rss=int(rss), ticks=int(ticks), fds=int(fds), st=st,
                     stub=int(stub), client=int(client), busy=int(busy), total=int(total)))
base = next(r for r in rows if r["phase"] == "base")
after = rows[-1]
final = after["st"]
run = [r for r in rows if r["phase"] == "run" and "polls" in r["st"]]
def get(d, *ks, default=None):
    for k in ks:
        if not isinstance(d, dict) or k not in d: return default
        d = d[k]
    return d
created = lambda r: r["st"]["creates"] - base["st"]["creates"]
# Full waiting: every task created (and the ramp over) + 1 s, until 1 s before the first
# task can finish (launch + FINISH_AFTER).
t_all = next((r["t"] for r in run if created(r) >= n), None)
start = max(t_all or launch + ramp, launch + ramp) + 1
end = launch + finish - 1
win = [r for r in run if start <= r["t"] <= end]
note = []
if t_all is None or t_all > end: note.append("not all tasks were created before the first finished")
cl = {}
try: cl = json.loads(open(cf).read().strip().splitlines()[-1])
except (ValueError, IndexError, OSError): note.append("no client summary (exit %s)" % rc)
fmt = lambda v, f="%.0f": "n/a" if v is None or (isinstance(v, float) and math.isnan(v)) else f % v
kib_per, cpu_us, pmean, pmax, rss_w, cpus = None, None, None, None, None, "n/a"
if len(win) >= 2 and win[-1]["t"] - win[0]["t"] >= 3:
    w0, w1 = win[0], win[-1]
    rss_w = w1["rss"]
    kib_per = (w1["rss"] - base["rss"]) / n
    polls = w1["st"]["polls"] - w0["st"]["polls"]
    if polls > 0: cpu_us = (w1["ticks"] - w0["ticks"]) / tck / polls * 1e6
    core = lambda k: (w1[k] - w0[k]) / tck / (w1["t"] - w0["t"]) * 100
    ours = core("ticks") + core("stub") + core("client")
    cpus = "%.0f / %.0f / %.0f / %.0f" % (core("ticks"), core("stub"), core("client"), max(0, core("busy") - ours))
    ps = final.get("per_second", [])
    secs = [ps[s] for s in range(int(w0["st"]["now_s"]) + 1, int(w1["st"]["now_s"])) if s < len(ps)]
    if secs: pmean, pmax = sum(secs) / len(secs), max(secs)
else:
    note.append("full-waiting window too short")
# Whole-run peak per second: every stub second from the launch on.
ps = final.get("per_second", [])
s_launch = int(base["st"].get("now_s", 0) + (launch - base["t"]))
run_max = max(ps[s_launch:] or [0])
polls_per_waiter = (final.get("polls", 0) - base["st"]["polls"]) / n
errs = cl.get("errors_total", n)
err_txt = str(errs) + ("" if not cl.get("errors") else " (" + ", ".join("%s %d" % kv for kv in cl["errors"].items()) + ")")
c2r = cl.get("completion_to_response_ms", {})
mib = lambda k: "%.1f" % (k / 1024)
warm = {}
try: warm = json.loads(open(wf).read().strip().splitlines()[-1])
except (ValueError, IndexError, OSError): pass
if warm.get("errors_total", 1): note.append("warm-up errors: %s" % warm.get("errors", "no summary"))
logs = {}
for line in open(lf, errors="replace"):
    m = re.match(r"^\S+\s+(\w+)\s+([\w:]+): (.*?)(?= \w+=|$)", line.strip())
    key = " ".join(m.groups()) if m else line.strip()[:100]
    logs[key] = logs.get(key, 0) + 1
if logs: note.append("%d gateway log lines (warn+)" % sum(logs.values()))
print("| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %.1f | %s | %s | %s | %s | %+.0f %% | %d | %s / %s | %s |" % (
    "{:,}".format(n), label, err_txt, mib(base["rss"]), "n/a" if rss_w is None else mib(rss_w),
    fmt(kib_per, "%.1f"), fmt(cpu_us, "%.1f"), cpus, fmt(pmean), fmt(pmax), run_max, polls_per_waiter,
    fmt(c2r.get("p50"), "%.0f"), fmt(c2r.get("p99"), "%.0f"), fmt(c2r.get("max"), "%.0f"),
    mib(after["rss"]), (after["rss"] - base["rss"]) / base["rss"] * 100,
    max(r["fds"] for r in rows), final.get("conns_peak", "?"),
    final.get("conns_total", 0) - base["st"].get("conns_total", 0),
    "; ".join(note)))
sys.stderr.write("### %s (%s)\n\nclient: `%s`\n\nwindow: %.1f s … %.1f s after launch (%d samples); "
    "fds base %d, after %d; gateway RSS peak during run %s MiB\n\nstub polls per second from launch: %s\n\n" % (
    spec, label, json.dumps(cl), (win[0]["t"] - launch) if win else float("nan"),
    (win[-1]["t"] - launch) if win else float("nan"), len(win), base["fds"], after["fds"],
    mib(max(r["rss"] for r in rows)), ps[s_launch:]))
if logs:
    sys.stderr.write("gateway log (warn+), by message:\n\n" + "".join(
        "- %d × `%s`\n" % (c, k) for k, c in sorted(logs.items(), key=lambda kv: -kv[1])[:8]) + "\n")
PY
  tail -1 "$work/rows"
  cleanup
}

# Others' load skews every number here (2 cores for gateway, stub and client): say so.
read -r b0 t0 <<< "$(machine_ticks)"; sleep 2; read -r b1 t1 <<< "$(machine_ticks)"
IDLE_BUSY=$(((b1 - b0) * 100 / (t1 - t0 > 0 ? t1 - t0 : 1)))
[ "$IDLE_BUSY" -gt 10 ] && echo "warning: the machine is ${IDLE_BUSY} % busy before the runs" >&2
for spec in $RUNS; do run_one "$spec"; done

stamp=$(date +%Y%m%d-%H%M)
mkdir -p bench/results
out=bench/results/waiters-$stamp.md
commit=$(git rev-parse --short HEAD)
if ! git diff --quiet HEAD -- . ':!bench' ':!examples' 2>/dev/null; then
  commit="$commit (+ uncommitted changes, src diff $(git diff HEAD -- src Cargo.toml | sha256sum | cut -c1-12))"
fi
{
  echo "# waiter scenario — $(date -u '+%Y-%m-%d %H:%M UTC')"
  echo
  echo "- machine: $(nproc) CPUs, $(grep -m1 '^model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//'), kernel $(uname -r); ulimit -n $NOFILE"
  echo "- prefer-gateway $commit, release build; gateway, stub (1 thread) and load client share the machine"
  echo "- scenario: \`Prefer: wait=$WAIT\` POSTs on a \`task\` route, tasks finish ${FINISH_AFTER}s after creation, poll_interval 1s, jobs.store memory, RUST_LOG=warn"
  echo "- transparent huge pages: system \`$(cat /sys/kernel/mm/transparent_hugepage/enabled 2>/dev/null)\`; for the gateway: $THP (THP=off: prctl PR_SET_THP_DISABLE)"
  echo "- machine busy before the runs (2 s, all cores, nothing of ours running): ${IDLE_BUSY} %"
  echo "- gateway server.max_connections = $MAX_CONNS, server.worker_threads = ${WORKER_THREADS:-one per CPU}"
  echo "- HTTP/1.1 client connections from $SOURCES loopback source addresses (127.0.0.1…$SOURCES)"
  echo "- starts spread over a ${RAMP}s ramp; a fresh stub and gateway per N, warmed up with $WARMUP short waits before the baseline"
  echo
  echo "| N | transport | errors | base RSS MiB | waiting RSS MiB | KiB/waiter | CPU µs/poll | CPU % gw / stub / client / other | polls/s mean | polls/s max | run max/s | polls/waiter | compl→resp p50 ms | p99 ms | max ms | after-drain RSS MiB | after vs base | peak fds | upstream conns peak / opened | notes |"
  echo "|---:|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|"
  cat "$work/rows"
  echo
  echo "Waiting window: from 1 s after every task exists (and the ramp is over) to 1 s before the"
  echo "first task finishes. KiB/waiter = (VmRSS at the window's end − baseline VmRSS) / N. CPU µs/poll"
  echo "= gateway utime+stime over the window ÷ polls the stub counted in it. CPU %: of one core, over"
  echo "the window, for the gateway, the stub, the load client and every other process on the box"
  echo "(/proc/stat busy − those three; well above 0 means the run shared the CPUs). polls/s mean, max: whole"
  echo "stub seconds inside the window (expected N / 1 s, never more); run max/s: any second from the"
  echo "launch on. polls/waiter: all polls of the run ÷ N (a lone waiter polls at +1 … +${FINISH_AFTER} s)."
  echo "compl→resp: client receipt time − the task's finished_at_ms. after-drain: VmRSS ${SETTLE} s after"
  echo "the last answer. peak fds: most entries in /proc/<gateway>/fd over the run (sampled each"
  echo "second). upstream conns: most simultaneous connections the stub saw / connections it accepted"
  echo "during the run."
  echo
  echo "<details><summary>per run</summary>"
  echo
  cat "$work/details"
  echo "</details>"
} > "$out"
echo
cat "$out"
echo
echo "written to $out"
