//! `proxy` routes: the request streams to the upstream and the answer streams back — the
//! gateway's hot path, so nothing here reads a body or the `Prefer` header (see
//! [`crate::upstream::forward`] for the header rules).

use http::{Request, Response};

use crate::body::Body;
use crate::problem::Problem;
use crate::routes::table::Route;
use crate::upstream::client::HttpClient;
use crate::upstream::forward;
use crate::upstream::origin::Origin;

/// Serves one request on a `proxy` route.
pub async fn handle(
    client: &HttpClient,
    route: &Route,
    req: Request<Body>,
    origin: &Origin,
) -> Response<Body> {
    let timeout = route.cfg.settings.upstream_timeout;
    forward::forward(client, &route.upstream, req, origin, timeout)
        .await
        .unwrap_or_else(|e| Problem::from(e).into_response())
}
