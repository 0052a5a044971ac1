//! Live status of a watched task operation: a `task` route whose `202` the gateway watches
//! as a job for the client's callback (`task::watch`) streams like any job, from its
//! `Operation-Location`, to the operation's end.

use std::time::Duration;

use serde_json::Value;

use super::support::{client, reply, task_upstream, Gateway, Seen, Upstream};
use super::{check_sequence, open, parse, read_to_end};

const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

#[tokio::test]
async fn a_watched_task_operation_streams_to_its_end() {
    let tasks = task_upstream(Duration::from_millis(1000)).await;
    let hook = Upstream::start(|_s: Seen| async { reply(200, "", &[]) }).await;
    let dir = tempfile::tempdir().unwrap();
    let store = format!("sqlite:{}", dir.path().join("jobs.db").display());
    let cfg = format!(
        r#"
[defaults]
poll_interval = "100ms"

[jobs]
store = "{store}"

[webhooks]
signing_secret = "{SECRET}"
retry_schedule = ["0s"]
allow_http = true
allow_ports = []
allow_networks = ["127.0.0.0/8"]

[[routes]]
name = "edit"
kind = "task"
methods = ["POST"]
path = "/v1/edit"
upstream = "{{up}}"
callback = {{ header = "Callback-Url" }}

[routes.task]
id = "/taskId"
status_url = "/v1/tasks/{{id}}"
"#
    );
    let gw = Gateway::start(&cfg, &tasks.url()).await;
    let resp = client()
        .post(gw.url("/v1/edit"))
        .header("prefer", "respond-async")
        .header("callback-url", format!("{}/done", hook.url()))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 202);
    let monitor = resp.headers()["operation-location"]
        .to_str()
        .unwrap()
        .to_owned();
    let id = monitor.rsplit('/').next().unwrap().to_owned();
    let stream = open(&client(), &monitor, &[]).await;
    assert_eq!(stream.status(), 200);
    let (events, _) = parse(&read_to_end(stream).await);
    check_sequence(&events, &id);
    assert!(
        ["pending", "running"].contains(&events[0].status()),
        "{events:#?}"
    );
    let last = events.last().unwrap();
    assert_eq!(last.status(), "succeeded", "{events:#?}");
    // The final status response of the operation is the watch job's result.
    let result: Value = client()
        .get(last.data["result_url"].as_str().unwrap())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(result["status"], "succeeded");
    assert_eq!(result["taskId"], "t-1");
    gw.shutdown().await;
}
