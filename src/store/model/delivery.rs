//! A job's outgoing deliveries: what the gateway must tell someone once the job has ended,
//! with the durable retry state of telling them.
//!
//! A job has at most one delivery of each [`DeliveryKind`]: its **callback** (the job's
//! status document POSTed to the client's URL) and its **admission** release (telling the
//! route's admission endpoint to settle or release the reservation it granted). Both move
//! through the same [`DeliveryState`]s on the same triggers — `waiting` until the job is
//! terminal, then `pending` with attempts on a schedule — and are claimed and recorded per
//! kind, so each kind has its own due order and its own lease.
//!
//! ```text
//! waiting ──job terminal──▶ pending ──attempt──▶ delivered | failed | stopped
//!                              ▲          │
//!                              └─ retry ──┘
//! ```

use super::Millis;

/// Which of a job's deliveries: each job has at most one of each kind, and the stores
/// keep a separate due index per kind so a backlog of one never delays the other.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DeliveryKind {
    /// The client's callback URL (`job.callback`).
    Callback,
    /// The route's admission endpoint: settle or release the job's reservation
    /// (`job.admission`).
    Admission,
    /// The client's callback URL again, for the `started` event (`job.started`; only when
    /// the client asked for it with `callback_events`). Unlike the others it becomes due
    /// when the job is claimed, not when it ends; a job that ends without ever starting
    /// leaves it `waiting` for good (never sent).
    Started,
}

impl DeliveryKind {
    /// Every kind, in a fixed order.
    pub const ALL: [DeliveryKind; 3] = [
        DeliveryKind::Callback,
        DeliveryKind::Admission,
        DeliveryKind::Started,
    ];

    /// Storage spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            DeliveryKind::Callback => "callback",
            DeliveryKind::Admission => "admission",
            DeliveryKind::Started => "started",
        }
    }

    /// Parses the storage spelling.
    pub fn parse(s: &str) -> Option<DeliveryKind> {
        match s {
            "callback" => Some(DeliveryKind::Callback),
            "admission" => Some(DeliveryKind::Admission),
            "started" => Some(DeliveryKind::Started),
            _ => None,
        }
    }
}

/// Where a delivery stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeliveryState {
    /// The job has not finished yet.
    Waiting,
    /// Due at `next_attempt_at` (the job finished; attempts remain).
    Pending,
    /// A 2xx was received.
    Delivered,
    /// Every attempt of the schedule failed.
    Failed,
    /// The receiver answered `410 Gone`: no more attempts.
    Stopped,
}

impl DeliveryState {
    /// Wire and storage spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            DeliveryState::Waiting => "waiting",
            DeliveryState::Pending => "pending",
            DeliveryState::Delivered => "delivered",
            DeliveryState::Failed => "failed",
            DeliveryState::Stopped => "stopped",
        }
    }

    /// Parses the storage spelling.
    pub fn parse(s: &str) -> Option<DeliveryState> {
        Some(match s {
            "waiting" => DeliveryState::Waiting,
            "pending" => DeliveryState::Pending,
            "delivered" => DeliveryState::Delivered,
            "failed" => DeliveryState::Failed,
            "stopped" => DeliveryState::Stopped,
            _ => return None,
        })
    }
}

/// One delivery of a job (its callback, or its admission release) and its state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    /// The URL, as checked at submit (for an admission: the route's endpoint).
    pub url: String,
    /// Where delivery stands.
    pub state: DeliveryState,
    /// Attempts made so far.
    pub attempts: u32,
    /// When the next attempt is due (Pending); for the first attempt the delivery worker
    /// adds the schedule's first delay on top.
    pub next_attempt_at: Option<Millis>,
    /// HTTP status of the last attempt, if one was received.
    pub last_status: Option<u16>,
    /// Why the last attempt failed, if it did.
    pub last_error: Option<String>,
    /// While an attempt is in flight: the claim is valid until then.
    pub lease_until: Option<Millis>,
}

impl Delivery {
    /// A delivery to `url` as stored with a new job: waiting, nothing attempted.
    pub fn waiting(url: String) -> Delivery {
        Delivery {
            url,
            state: DeliveryState::Waiting,
            attempts: 0,
            next_attempt_at: None,
            last_status: None,
            last_error: None,
            lease_until: None,
        }
    }
}

/// The admission a job was created under: the reservation the route's admission endpoint
/// granted, and the delivery that settles (job succeeded) or releases (job failed or was
/// canceled) it once the job ends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Admission {
    /// The reservation id the endpoint answered with, if it gave one.
    pub reservation: Option<String>,
    /// The settle / release delivery; `delivery.url` is the admission endpoint.
    pub delivery: Delivery,
}

/// The admission of a job to create (see [`Admission`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewAdmission {
    /// The route's admission endpoint.
    pub url: String,
    /// The reservation id the endpoint answered with, if any.
    pub reservation: Option<String>,
}

impl NewAdmission {
    /// The stored form: the delivery waiting for the job to end.
    pub fn into_admission(self) -> Admission {
        Admission {
            reservation: self.reservation,
            delivery: Delivery::waiting(self.url),
        }
    }
}

/// The result of one delivery attempt, as handed to `record_attempt`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attempt {
    /// HTTP status received, if any.
    pub status: Option<u16>,
    /// What went wrong, if anything (connect error, timeout, forbidden address, status).
    pub error: Option<String>,
    /// What happens next.
    pub next: AttemptNext,
}

/// What follows an attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttemptNext {
    /// 2xx: done.
    Delivered,
    /// Try again at this time.
    Retry(Millis),
    /// The schedule is used up.
    GiveUp,
    /// `410 Gone`: never again.
    Stop,
}

impl AttemptNext {
    /// The state and next due time a delivery is left in.
    pub fn state(self) -> (DeliveryState, Option<Millis>) {
        match self {
            AttemptNext::Retry(at) => (DeliveryState::Pending, Some(at)),
            AttemptNext::Delivered => (DeliveryState::Delivered, None),
            AttemptNext::GiveUp => (DeliveryState::Failed, None),
            AttemptNext::Stop => (DeliveryState::Stopped, None),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_round_trip_their_spelling() {
        for kind in DeliveryKind::ALL {
            assert_eq!(DeliveryKind::parse(kind.as_str()), Some(kind));
        }
        assert_eq!(DeliveryKind::parse("webhook"), None);
    }
}
