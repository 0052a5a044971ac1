//! The step `task` and `sync` routes share, run once before their handler: everything a
//! request's *intent* is made of, read and checked in one place and in one order.
//!
//! 1. `Prefer` and the legacy opt-ins (`mode`, a boolean field) → the execution mode
//!    ([`crate::intent`]); malformed → `400`, an `async_requires` miss → `422`.
//! 2. The callback URL, taken off the request (`422` with DEFAULT: a callback needs a
//!    handle to call back about).
//! 3. The tenant, under the one rule ([`crate::tenant`]): required (`401`) when the request
//!    will leave a job behind — a `sync` ASYNC/WAIT, a callback, a task route's admission
//!    (its operation may be watched), a callback-driven task route (every operation is
//!    watched) — optional otherwise.
//!    Then the events it asks for besides the terminal one (`callback_events`, `400` when
//!    unknown or without a callback URL; [`crate::webhook::events`]).
//! 4. The callback URL checked by the address guard (`422`).
//! 5. For a `sync` job (ASYNC, WAIT, or DEFAULT on a `default = "job"` route): the
//!    `Idempotency-Key` header (`400`), the body read whole within
//!    `max_body` (`413`), and the key from the JSON body when the route says so.
//! 6. The admission endpoint asked ([`crate::admission`]); its refusal goes back verbatim.
//!    What it grants is held as a [`Reservation`] guard: settled, released or handed to a
//!    job by the handler — and released if the handler never gets that far.
//!
//! Plain `proxy` routes skip this step entirely: their hot path reads nothing of the
//! request but its head.

use bytes::Bytes;
use http::header::HeaderName;
use http::{Request, Response};

use crate::admission::{self, reservation::Reservation};
use crate::body::{self, Body};
use crate::config::{FieldSource, RouteConfig};
use crate::idempotency;
use crate::intent::{self, Intent};
use crate::mode::Mode;
use crate::problem::Problem;
use crate::request_id::X_REQUEST_ID;
use crate::webhook::deliver::Deliverer;
use crate::webhook::{events, intake};

/// What the step needs from the gateway.
#[derive(Clone, Copy)]
pub struct Context<'a> {
    /// `[jobs].tenant_header`.
    pub tenant_header: Option<&'a HeaderName>,
    /// The admission client.
    pub admission: &'a reqwest::Client,
    /// Callback delivery (its guard checks callback URLs), when configured.
    pub deliverer: Option<&'a Deliverer>,
}

/// Which handler the request goes to, as far as this step cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum For {
    /// A `task` route.
    Task,
    /// A `sync` route.
    Sync,
}

/// A request's intent, read and checked.
pub struct Prepared {
    /// Mode, `Preference-Applied`, deprecation and `Vary` headers.
    pub intent: Intent,
    /// The tenant (`""` single-tenant; `None` when the tenant header is configured and this
    /// request, which needs none, did not carry it).
    pub tenant: Option<String>,
    /// A checked callback URL.
    pub callback: Option<String>,
    /// The client asked for the `started` event too (`callback_events`).
    pub notify_started: bool,
    /// The idempotency key (`sync` jobs).
    pub idempotency_key: Option<String>,
    /// The whole body, when it was read (`sync` jobs).
    pub body: Option<Bytes>,
    /// The admission endpoint's grant.
    pub reservation: Option<Reservation>,
    /// The request id (the reservation's id while there is no job).
    pub request_id: String,
}

/// Why the step stopped the request.
pub enum Stop {
    /// A problem of the request, with the intent's headers when it was read that far.
    Problem(Problem, http::HeaderMap),
    /// The admission endpoint's refusal, passed on as it is.
    Refused(Response<Body>),
}

impl From<Problem> for Stop {
    fn from(p: Problem) -> Stop {
        Stop::Problem(p, http::HeaderMap::new())
    }
}

/// Runs the step for `req` on `route` (see the module doc for the order).
pub async fn prepare(
    ctx: Context<'_>,
    route: &RouteConfig,
    kind: For,
    req: Request<Body>,
) -> Result<(Prepared, Request<Body>), Stop> {
    let (intent, req) = intent::read(route, req)
        .await
        .map_err(|(p, extra)| Stop::Problem(p, extra))?;
    let mode = intent.resolution.mode;
    let with = |p: Problem| Stop::Problem(p, intent.extra_headers.clone());
    let (mut parts, body) = req.into_parts();
    let (callback, body) = intake::take(route, &mut parts, body).await.map_err(with)?;
    if callback.is_some() && mode == Mode::Default {
        return Err(with(Problem::CallbackWithoutAsync));
    }
    let (events, body) = events::take(route, &mut parts, body).await.map_err(with)?;
    if events.is_some() && callback.is_none() {
        let why = "callback_events needs a callback URL in the same request".to_owned();
        return Err(with(Problem::InvalidCallbackEvents(why)));
    }
    // A sync route with `default = "job"` makes a job of a request without `Prefer` too.
    let job = kind == For::Sync && (mode != Mode::Default || route.default_job);
    // A callback-driven task route (`task.callback`) makes every operation a watch job.
    let driven = route.task.as_ref().is_some_and(|t| t.callback.is_some());
    let leaves_a_job =
        job || callback.is_some() || (kind == For::Task && (route.admission.is_some() || driven));
    let tenant = if leaves_a_job {
        let t = crate::tenant::required(&parts.headers, ctx.tenant_header);
        Some(t.map_err(|name| with(Problem::TenantRequired(name)))?)
    } else {
        crate::tenant::of(&parts.headers, ctx.tenant_header)
    };
    if let Some(url) = &callback {
        intake::check(ctx.deliverer, url).await.map_err(with)?;
    }
    let (mut idempotency_key, mut whole) = (None, None);
    let body = if job {
        idempotency_key = idempotency::from_header(&parts.headers)
            .map_err(|e| with(Problem::InvalidIdempotencyKey(e)))?;
        let bytes = body::collect(body, route.settings.max_body.bytes())
            .await
            .map_err(|e| with(Problem::from(e)))?;
        if let (None, Some(FieldSource::Json(ptr))) = (&idempotency_key, &route.idempotency) {
            idempotency_key = idempotency::from_json(&bytes, ptr)
                .map_err(|e| with(Problem::InvalidIdempotencyKey(e)))?;
        }
        whole = Some(bytes.clone());
        Body::full(bytes)
    } else {
        body
    };
    let request_id = parts
        .headers
        .get(&X_REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let reservation = match &route.admission {
        None => None,
        Some(adm) => {
            let tenant = tenant.clone().unwrap_or_default();
            let ask = admission::Ask {
                tenant: &tenant,
                route: &route.name,
                method: parts.method.as_str(),
                path: parts.uri.path(),
                body_size: match &whole {
                    Some(b) => u64::try_from(b.len()).ok(),
                    None => admission::declared_size(&parts.headers),
                },
            };
            match admission::reserve(ctx.admission, adm, &ask)
                .await
                .map_err(with)?
            {
                admission::Verdict::Refused(resp) => return Err(Stop::Refused(resp)),
                admission::Verdict::Admitted { reservation } => Some(Reservation::new(
                    ctx.admission.clone(),
                    adm.clone(),
                    reservation,
                    request_id.clone(),
                    tenant,
                    route.name.clone(),
                )),
            }
        }
    };
    let prepared = Prepared {
        intent,
        tenant,
        callback,
        notify_started: events.is_some_and(|e| e.started),
        idempotency_key,
        body: whole,
        reservation,
        request_id,
    };
    Ok((prepared, Request::from_parts(parts, body)))
}
