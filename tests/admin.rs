//! The admin listener: liveness and readiness apart from client traffic, and the OpenAPI
//! document of the gateway's own API.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use support::{client, sync_config, sync_upstream, Gateway};

#[tokio::test]
async fn healthz_and_readyz_answer_on_the_admin_port_only() {
    let up = sync_upstream(std::time::Duration::ZERO).await;
    let dir = tempfile::tempdir().unwrap();
    let store = format!("sqlite:{}", dir.path().join("j.db").display());
    let cfg = format!(
        "[server]\nadmin_listen = \"127.0.0.1:0\"\n{}",
        sync_config(&store, "", "")
    );
    let gw = Gateway::start(&cfg, &up.url()).await;
    let admin = gw.admin.expect("admin listener bound");
    let get = |path: &str| client().get(format!("http://{admin}{path}")).send();
    assert_eq!(get("/healthz").await.unwrap().status(), 200);
    let ready = get("/readyz").await.unwrap();
    assert_eq!(ready.status(), 200);
    assert_eq!(ready.text().await.unwrap(), "ready\n");
    let nope = get("/nope").await.unwrap();
    assert_eq!(nope.status(), 404);
    assert_eq!(nope.headers()["content-type"], "application/problem+json");
    // The client port does not serve admin paths.
    assert_eq!(
        client()
            .get(gw.url("/healthz"))
            .send()
            .await
            .unwrap()
            .status(),
        404
    );
}

#[tokio::test]
async fn without_admin_listen_there_is_no_admin_port() {
    let up = sync_upstream(std::time::Duration::ZERO).await;
    let gw = Gateway::start(&sync_config("memory", "", ""), &up.url()).await;
    assert!(gw.admin.is_none());
}

#[tokio::test]
async fn openapi_json_is_the_repository_document_byte_for_byte() {
    let up = sync_upstream(std::time::Duration::ZERO).await;
    let cfg = format!(
        "[server]\nadmin_listen = \"127.0.0.1:0\"\n{}",
        sync_config("memory", "", "")
    );
    let gw = Gateway::start(&cfg, &up.url()).await;
    let admin = gw.admin.expect("admin listener bound");
    let resp = client()
        .get(format!("http://{admin}/openapi.json"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["content-type"], "application/json");
    let served = resp.bytes().await.unwrap();
    let file = std::fs::read(concat!(env!("CARGO_MANIFEST_DIR"), "/openapi/gateway.json")).unwrap();
    assert_eq!(&served[..], &file[..]);
    let doc: serde_json::Value = serde_json::from_slice(&served).unwrap();
    assert_eq!(doc["openapi"], "3.1.0");
    assert!(doc["paths"]["/jobs/{id}"]["get"].is_object());
    // Not on the client listener, and only GET/HEAD on the admin one.
    let client_port = client().get(gw.url("/openapi.json")).send().await.unwrap();
    assert_eq!(client_port.status(), 404);
    let post = client()
        .post(format!("http://{admin}/openapi.json"))
        .send()
        .await
        .unwrap();
    assert_eq!(post.status(), 405);
    assert_eq!(post.headers()["allow"], "GET, HEAD");
}
