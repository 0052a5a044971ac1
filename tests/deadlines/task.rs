//! Deadlines on `task` routes: a `Cancel-After` ends the gateway's watch of an operation,
//! and the route's `task.cancel` call is made for it — on a deadline and on `DELETE` of
//! the watch.

use std::time::{Duration, Instant};

use serde_json::Value;

use crate::support::{self, client, Gateway};
use crate::{assert_deadline_exceeded, until_terminal};

/// On a task route a `Cancel-After` ends the gateway's watch of the operation: the watch
/// job ends canceled as `deadline_exceeded`, the callback says so, and the route's
/// `task.cancel` call is made for the operation — also when the client `DELETE`s a watch.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancel_after_ends_a_task_watch() {
    use support::{task_config, task_upstream, Seen, Upstream};
    let tasks = task_upstream(Duration::from_secs(600)).await;
    let hook = Upstream::start(|_s: Seen| async move { support::reply(200, "", &[]) }).await;
    let webhooks = r#"
[webhooks]
signing_secret = "0123456789abcdef0123456789abcdef"
retry_schedule = ["0s"]
allow_http = true
allow_ports = []
allow_networks = ["127.0.0.0/8"]
"#;
    let cfg = format!(
        "[jobs]\nstore = \"memory\"\n{webhooks}\n{}cancel = {{ url = \"/v1/tasks/{{id}}/cancel\" }}\n",
        task_config("", "callback = { header = \"Callback-Url\" }")
    );
    let gw = Gateway::start(&cfg, &tasks.url()).await;
    let submit = |cancel_after: &'static str| {
        client()
            .post(gw.url("/v1/edit"))
            .header("prefer", "respond-async")
            .header("callback-url", format!("{}/done", hook.url()))
            .header("cancel-after", cancel_after)
            .send()
    };
    let bad = submit("never").await.unwrap();
    support::wire::assert_problem(bad, 400, "invalid-cancel-after").await;
    assert_eq!(
        tasks.count("/v1/edit"),
        0,
        "a malformed deadline submits nothing"
    );
    let resp = submit("1s").await.unwrap();
    assert_eq!(resp.status(), 202);
    let monitor = resp.headers()["operation-location"]
        .to_str()
        .unwrap()
        .to_owned();
    let doc = until_terminal(&monitor).await;
    assert_deadline_exceeded(&doc);
    let t = Instant::now();
    while hook.seen().is_empty() {
        assert!(t.elapsed() < Duration::from_secs(30), "no callback");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let body = String::from_utf8_lossy(&hook.seen()[0].body).into_owned();
    assert!(body.contains("deadline_exceeded"), "{body}");
    until_cancel_call(&tasks, "/v1/tasks/t-1/cancel").await;
    // A client's DELETE of a watch cancels the operation upstream too.
    let resp = submit("1h").await.unwrap();
    let monitor = resp.headers()["operation-location"]
        .to_str()
        .unwrap()
        .to_owned();
    let task: Value = resp.json().await.unwrap();
    let del = client().delete(&monitor).send().await.unwrap();
    assert_eq!(del.status(), 200);
    let path = format!("/v1/tasks/{}/cancel", task["taskId"].as_str().unwrap());
    until_cancel_call(&tasks, &path).await;
    gw.shutdown().await;
}

/// Waits (bounded) until `up` saw a `POST` to `path`.
async fn until_cancel_call(up: &support::Upstream, path: &str) {
    let t = Instant::now();
    while !up
        .seen()
        .iter()
        .any(|s| s.method == "POST" && s.uri == path)
    {
        let seen: Vec<_> = up
            .seen()
            .iter()
            .map(|s| format!("{} {}", s.method, s.uri))
            .collect();
        assert!(
            t.elapsed() < Duration::from_secs(30),
            "no cancel call to {path}: {seen:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// `task.cancel`: `method` defaults to `POST`; `url` is a template with `{id}`.
#[test]
fn task_cancel_loads_and_needs_an_id() {
    use prefer_gateway::config::load_str;
    let cfg = |cancel: &str| {
        support::task_config("", "").replace("{up}", "http://127.0.0.1:9000") + cancel
    };
    let ok = load_str(
        &cfg("cancel = { url = \"/v1/tasks/{id}/cancel\" }\n"),
        "t.toml",
    )
    .unwrap();
    let cancel = ok.routes[0].task.as_ref().unwrap().cancel.as_ref().unwrap();
    assert_eq!(
        (cancel.method.as_str(), cancel.url.as_str()),
        ("POST", "/v1/tasks/{id}/cancel")
    );
    let put = "cancel = { method = \"PUT\", url = \"/v1/tasks/{id}\" }\n";
    let put = load_str(&cfg(put), "t.toml").unwrap();
    assert_eq!(
        put.routes[0]
            .task
            .as_ref()
            .unwrap()
            .cancel
            .as_ref()
            .unwrap()
            .method,
        "PUT"
    );
    for bad in [
        "cancel = { url = \"/v1/tasks/cancel\" }\n",
        "cancel = { method = \"POTS\", url = \"/v1/tasks/{id}\" }\n",
        "cancel = { url = \"/v1/tasks/{id}\", body = \"x\" }\n",
    ] {
        assert!(load_str(&cfg(bad), "t.toml").is_err(), "{bad}");
    }
}
