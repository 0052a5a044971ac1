//! The reservation guard: a client that goes away between the reserve and the outcome
//! gets its reservation back (before the guard, nothing was sent and it stayed held).

use super::*;

#[tokio::test]
async fn a_client_that_disconnects_mid_request_has_its_reservation_released() {
    let balance = Balance::start(10, vec![200]).await;
    // The upstream holds the call far longer than the client waits.
    let up = sync_upstream(Duration::from_secs(30)).await;
    let gw = Gateway::start(&sync_route_config(&balance.up.url(), ""), &up.url()).await;
    // DEFAULT streams through; the client gives up once the upstream has the request.
    let call = submit(&gw, "{}", "");
    let gave_up = tokio::time::timeout(Duration::from_millis(800), call).await;
    assert!(gave_up.is_err(), "the upstream answered early");
    assert_eq!(up.seen().len(), 1, "the call reached the upstream");
    let releases = balance.wait_for("release", 1).await;
    assert_eq!(releases.len(), 1, "released once the client was gone");
    assert_eq!(releases[0].0["status"], "abandoned");
    assert_eq!(releases[0].0["reservation"], "r-1");
    assert!(balance.calls("settle").is_empty(), "nothing was settled");
}
