//! The demo's walk-through: every row of the execution-mode table as a `# comment → expected
//! status` line and a curl line (`tests/cli.rs` runs each and checks the status), then the
//! jobs, callbacks, admission, signed links and live status, each against the running demo.

use std::net::SocketAddr;

use super::balance;

/// The walk-through printed at start: `# comment → expected status` then a curl line.
/// `gw` is the base URL the lines name (`http://localhost:8080`, or the published URL).
pub fn tour(gw: &str, hooks: SocketAddr) -> String {
    let post = |extra: &str, path: &str, secs: u32| {
        format!("curl -si -X POST '{gw}{path}' -H 'Content-Type: application/json'{extra} -d '{{\"duration\": {secs}}}'")
    };
    let rows: [(&str, String); 14] = [
        (
            "no Prefer: sync by default, the gateway polls for you → 200 with the result",
            post("", "/v1/edit", 2),
        ),
        (
            "Prefer: respond-async → 202 with the upstream's taskId",
            post(" -H 'Prefer: respond-async'", "/v1/edit", 2),
        ),
        (
            "Prefer: wait=5, done in 2 s → 200, Preference-Applied: respond-async, wait=5",
            post(" -H 'Prefer: wait=5'", "/v1/edit", 2),
        ),
        (
            "Prefer: respond-async, wait=1, needs 3 s → 202 after 1 s (never a timeout)",
            post(" -H 'Prefer: respond-async, wait=1'", "/v1/edit", 3),
        ),
        (
            "Prefer: wait=0 is ignored → sync default → 200",
            post(" -H 'Prefer: wait=0'", "/v1/edit", 1),
        ),
        (
            "Prefer: respond-async, wait=0 → 202, Preference-Applied: respond-async",
            post(" -H 'Prefer: respond-async, wait=0'", "/v1/edit", 1),
        ),
        (
            "deprecated ?mode=async → 202 with a Deprecation header",
            post("", "/v1/edit?mode=async", 1),
        ),
        (
            "deprecated ?mode=sync → waits up to 60 s → 200 with Deprecation",
            post("", "/v1/edit?mode=sync", 1),
        ),
        (
            "deprecated ?mode=auto → default → 200 with Deprecation",
            post("", "/v1/edit?mode=auto", 1),
        ),
        (
            "a callback-driven task route: the task API POSTs its result to the gateway's one-time URL after 2 s, so no status poll is made (fallback every 30 s) → 200 with the result",
            post(" -H 'Prefer: wait=10'", "/v1/edit-hooked", 2),
        ),
        (
            "a sync backend, no Prefer: a plain proxy that holds the request → 200",
            post("", "/v1/render", 1),
        ),
        (
            "a sync backend, Prefer: respond-async → 202 with a gateway job_id, status_url and Location",
            post(" -H 'Prefer: respond-async'", "/v1/render", 2),
        ),
        (
            "a sync backend, Prefer: wait=5, renders in 1 s → 200 with the backend's answer, Preference-Applied: respond-async, wait=5",
            post(" -H 'Prefer: wait=5'", "/v1/render", 1),
        ),
        (
            "a sync backend, Prefer: wait=1, needs 3 s → 202 with the job handle; the job goes on",
            post(" -H 'Prefer: wait=1'", "/v1/render", 3),
        ),
    ];
    let mut out = String::new();
    for (comment, line) in rows {
        out.push_str(&format!("# {comment}\n{line}\n\n"));
    }
    out.push_str(&format!(
        "# a callback: the job's signed status document is POSTed to the demo receiver \
         → 202 (watch this terminal: \"callback received … signature valid\")\n\
         curl -si -X POST '{gw}/v1/render' -H 'Content-Type: application/json' \
         -H 'Prefer: respond-async' -d '{{\"duration\": 1, \"callback_url\": \"http://{hooks}/hooks\"}}'\n\n"
    ));
    out.push_str(&format!(
        "# webhook events: Callback-Events: started asks for a started event too → 202 \
         (watch this terminal: \"event=job.started\" first, then \"event=job.completed\")\n\
         curl -si -X POST '{gw}/v1/render' -H 'Content-Type: application/json' \
         -H 'Prefer: respond-async' -H 'Callback-Events: started' \
         -d '{{\"duration\": 1, \"callback_url\": \"http://{hooks}/hooks\"}}'\n\n"
    ));
    let id_of = |field: &str| format!("sed -E 's/.*\"{field}\":\"([^\"]+)\".*/\\1/'");
    out.push_str(&format!(
        "# submit a task, then poll its status endpoint yourself (proxied) → 200\n\
         id=$({} -s -H 'Prefer: respond-async' | {}); curl -si \"{gw}/v1/tasks/$id\"\n\n",
        post("", "/v1/edit", 1).replace("curl -si", "curl"),
        id_of("taskId"),
    ));
    out.push_str(&format!(
        "# a gateway job: submit, wait, then read its status document and replay its result → 200\n\
         url=$({} -s -H 'Prefer: respond-async' | {}); sleep 2; curl -si \"$url\"; curl -si \"$url/result\"\n",
        post("", "/v1/render", 1).replace("curl -si", "curl"),
        id_of("status_url"),
    ));
    out.push_str(&format!(
        "\n# live status: a 1 s job's state changes as Server-Sent Events (pending or running, \
         then succeeded); the stream closes after the terminal event → 200\n\
         curl -siN -H 'Accept: text/event-stream' \"$({} | {})\"\n",
        post(" -H 'Prefer: respond-async'", "/v1/render", 1).replace("curl -si", "curl -s"),
        id_of("status_url"),
    ));
    out.push_str(&format!(
        "\n# a deadline: Cancel-After: 1 on a 3 s render; the gateway drops the upstream call \
         at 1 s and the job ends canceled with error.code deadline_exceeded (its callback and \
         admission release follow) → 200 with status canceled\n\
         url=$({} -s -H 'Prefer: respond-async' -H 'Cancel-After: 1' | {}); sleep 2; curl -si \"$url\"\n",
        post("", "/v1/render", 3).replace("curl -si", "curl"),
        id_of("status_url"),
    ));
    out.push_str(&format!(
        "\n# admission: /v1/paid/render asks the demo balance service first ({} credits); \
         the 4th submit gets the service's own 402 and no job is created \
         → prints 202 202 202 402 (watch this terminal: \"balance: reserved … settled …\")\n\
         for i in 1 2 3 4; do {} -s -o /dev/null -w '%{{http_code}} ' -H 'Prefer: respond-async'; done; echo\n",
        balance::CREDITS,
        post("", "/v1/paid/render", 1).replace("curl -si", "curl"),
    ));
    out.push_str(&format!(
        "\n# a signed download link: a finished job's status document carries download_url, \
         which replays the result with no credentials until the job expires → 200\n\
         url=$({} -s -H 'Prefer: respond-async' | {}); sleep 2; \
         dl=$(curl -s \"$url\" | {}); curl -si \"$dl\"\n",
        post("", "/v1/render", 1).replace("curl -si", "curl"),
        id_of("status_url"),
        id_of("download_url"),
    ));
    out.push_str(&format!(
        "\n# list your jobs, newest first, five at a time (next_cursor and Link: rel=\"next\" \
         lead to the next page; DELETE {gw}/jobs/<id>?purge=true deletes a finished one) \
         → 200\n\
         curl -si '{gw}/jobs?limit=5'\n"
    ));
    out
}
