//! Admission on `task` routes (see [`crate::admission`]): the submit is admitted before it
//! is forwarded, and the outcome is reported when the gateway learns it.
//!
//! - A non-`202` answer, or an operation that finished while the client waited: settled
//!   (a `2xx`, or a state in `succeeded`) or released (anything else) at once, in-process.
//! - An operation still running when the answer is the `202` (ASYNC, or a wait that ran
//!   out): handed to a durable watch job carrying the reservation, so the settle or release
//!   follows the operation's real end — through restarts — like a callback does.
//! - A submit that failed (unreachable, timed out, broke the contract): released.

use http::Request;

use super::TaskRoute;
use crate::admission::notice::Action;
use crate::admission::{self, worker};
use crate::body::Body;
use crate::config::AdmissionConfig;
use crate::jobs::model::{new_id, NewAdmission};
use crate::jobs::{submit, Engine};
use crate::problem::Problem;

/// Work a route's admission endpoint admitted.
pub struct Admitted<'a> {
    engine: &'a Engine,
    cfg: &'a AdmissionConfig,
    reservation: Option<String>,
    /// The tenant it was admitted for (a watch job is stored under it).
    pub tenant: String,
    route: &'a str,
    id: String,
}

/// What [`reserve`] decided.
pub enum Decision<'a> {
    /// The route has no admission endpoint.
    Free,
    /// Go ahead.
    Admitted(Admitted<'a>),
    /// The endpoint's refusal, for the client.
    Refused(http::Response<Body>),
}

/// Asks the route's admission endpoint about `req` (`503` when it cannot be asked).
pub async fn reserve<'a>(
    route: &TaskRoute<'a>,
    req: &Request<Body>,
) -> Result<Decision<'a>, Problem> {
    let Some(cfg) = &route.cfg.admission else {
        return Ok(Decision::Free);
    };
    // A route with an admission endpoint always has the engine (it runs watch jobs).
    let engine = route.jobs.ok_or(Problem::StoreUnavailable)?;
    let tenant = submit::tenant(engine, req.headers())?;
    let ask = admission::Ask {
        tenant: &tenant,
        route: &route.cfg.name,
        method: req.method().as_str(),
        path: req.uri().path(),
        body_size: admission::declared_size(req.headers()),
    };
    Ok(
        match admission::reserve(&engine.admission, cfg, &ask).await? {
            admission::Verdict::Refused(resp) => Decision::Refused(resp),
            admission::Verdict::Admitted { reservation } => Decision::Admitted(Admitted {
                engine,
                cfg,
                reservation,
                tenant,
                route: &route.cfg.name,
                id: new_id(),
            }),
        },
    )
}

impl Admitted<'_> {
    /// The outcome is known now: settle when `succeeded`, else release (in-process).
    pub fn finished(self, succeeded: bool, status: String) {
        let owned = worker::Owned {
            action: if succeeded {
                Action::Settle
            } else {
                Action::Release
            },
            reservation: self.reservation,
            id: self.id,
            tenant: self.tenant,
            route: self.route.to_owned(),
            status,
        };
        worker::send_soon(self.engine.admission.clone(), self.cfg.clone(), owned);
    }

    /// The operation goes on: the watch job carries the reservation from here.
    pub fn handed_off(&self) -> NewAdmission {
        NewAdmission {
            url: self.cfg.url.to_string(),
            reservation: self.reservation.clone(),
        }
    }
}
