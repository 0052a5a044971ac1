//! The admin listener (`server.admin_listen`): `/healthz` and `/readyz`, apart from client
//! traffic so a load balancer's probes never queue behind (or get counted as) real requests.
//! It answers `GET` and `HEAD` only (`405` with `Allow` otherwise), `404` problem elsewhere.
//!
//! - `/healthz` → `200` while the process serves at all (liveness).
//! - `/readyz` → `200` when the gateway takes new work: not draining, and the job store (if
//!   any) answers a ping within a second; otherwise `503` problem naming why (readiness —
//!   e.g. Redis unreachable, so the balancer sends clients to another replica).
//! - `/metrics` → the Prometheus exposition (see [`crate::metrics`]); the job-store gauges
//!   are read from the store first (bounded to a second).
//! - `/openapi.json` → the OpenAPI 3.1 document of the gateway's own API
//!   (`openapi/gateway.json`, embedded at build time and served byte for byte).

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use http::header::{HeaderValue, CONTENT_TYPE};
use http::{Method, Request, Response, StatusCode};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::TcpListener;

use crate::body::Body;
use crate::pipeline::Gateway;
use crate::problem::Problem;

/// The OpenAPI document of the gateway's own API, as kept in the repository.
pub const OPENAPI_JSON: &str = include_str!("../../openapi/gateway.json");

/// Serves the admin endpoints on `listener` until the task is dropped.
pub async fn serve(listener: TcpListener, gateway: Arc<Gateway>) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            tokio::time::sleep(Duration::from_millis(50)).await;
            continue;
        };
        let gw = Arc::clone(&gateway);
        tokio::spawn(async move {
            let svc = service_fn(move |req| {
                let gw = Arc::clone(&gw);
                async move { Ok::<_, Infallible>(answer(&gw, req).await) }
            });
            let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                .serve_connection(TokioIo::new(stream), svc)
                .await;
        });
    }
}

async fn answer(gw: &Gateway, req: Request<Incoming>) -> Response<Body> {
    if req.method() != Method::GET && req.method() != Method::HEAD {
        return Problem::MethodNotAllowed(HeaderValue::from_static("GET, HEAD")).into_response();
    }
    match req.uri().path() {
        "/healthz" => text(StatusCode::OK, "ok\n"),
        "/readyz" => match gw.readiness().await {
            Ok(()) => text(StatusCode::OK, "ready\n"),
            Err(why) => {
                tracing::warn!(%why, "not ready");
                Problem::NotReady(why).into_response()
            }
        },
        "/metrics" => {
            gw.refresh_store_gauges().await;
            let mut resp = Response::new(Body::full(crate::metrics::get().render()));
            resp.headers_mut().insert(
                CONTENT_TYPE,
                HeaderValue::from_static(
                    "application/openmetrics-text; version=1.0.0; charset=utf-8",
                ),
            );
            resp
        }
        "/openapi.json" => {
            let mut resp = Response::new(Body::full(OPENAPI_JSON));
            resp.headers_mut()
                .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
            resp
        }
        _ => Problem::NoRoute.into_response(),
    }
}

fn text(status: StatusCode, body: &'static str) -> Response<Body> {
    let mut r = Response::new(Body::full(body));
    *r.status_mut() = status;
    r.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    r
}
