//! An admitted request's reservation, held as a guard from the moment the endpoint said
//! yes until its outcome is known — whatever happens to the handler in between.
//!
//! Exactly one of three things happens to a [`Reservation`]:
//! - [`Reservation::finish`]: the outcome is known (settle on success, release otherwise),
//!   notified in-process by [`send_soon`];
//! - [`Reservation::handed_off`]: a durable job now carries it ([`Reservation::pending`]
//!   is what the job stores; its settle or release goes out through the job store's
//!   admission delivery when the job ends);
//! - dropped: the handler ended without either — the client disconnected mid-request, the
//!   submit failed, a task panicked — and the reservation is released (`status:
//!   "abandoned"`), so a client is never charged for work that never happened.
//!
//! Before this guard, sync routes and task routes each released "unused" reservations in
//! their own style, and a client that went away between reserve and outcome left the
//! reservation held.

use super::notice::Action;
use super::worker::{send_soon, Owned};
use crate::config::AdmissionConfig;
use crate::store::NewAdmission;

/// A reservation the route's admission endpoint granted (see the module doc).
#[derive(Debug)]
pub struct Reservation {
    client: reqwest::Client,
    cfg: AdmissionConfig,
    /// The endpoint's reservation id, if it gave one.
    reservation: Option<String>,
    /// The request id (there is no job yet).
    id: String,
    tenant: String,
    route: String,
    armed: bool,
}

impl Reservation {
    /// A granted reservation for request `id` of `tenant` on `route`.
    pub fn new(
        client: reqwest::Client,
        cfg: AdmissionConfig,
        reservation: Option<String>,
        id: String,
        tenant: String,
        route: String,
    ) -> Reservation {
        Reservation {
            client,
            cfg,
            reservation,
            id,
            tenant,
            route,
            armed: true,
        }
    }

    /// The outcome is known: settle when `succeeded`, else release; `status` is what the
    /// work ended with (an HTTP status or a task state).
    pub fn finish(mut self, succeeded: bool, status: &str) {
        let action = if succeeded {
            Action::Settle
        } else {
            Action::Release
        };
        self.notify(action, status);
    }

    /// Nothing was done with it (a duplicate, a refused or failed submit): release.
    pub fn release(self, why: &str) {
        self.finish(false, why);
    }

    /// What a job that takes the reservation over stores with it.
    pub fn pending(&self) -> NewAdmission {
        NewAdmission {
            url: self.cfg.url.to_string(),
            reservation: self.reservation.clone(),
        }
    }

    /// A durable job now carries it (the job was created with [`Reservation::pending`]):
    /// this guard no longer notifies anything.
    pub fn handed_off(mut self) {
        self.armed = false;
    }

    fn notify(&mut self, action: Action, status: &str) {
        if !std::mem::replace(&mut self.armed, false) {
            return;
        }
        let owned = Owned {
            action,
            reservation: self.reservation.take(),
            id: std::mem::take(&mut self.id),
            tenant: std::mem::take(&mut self.tenant),
            route: std::mem::take(&mut self.route),
            status: status.to_owned(),
        };
        // Dropped outside a runtime (process teardown) there is nothing to send it with.
        if tokio::runtime::Handle::try_current().is_ok() {
            send_soon(self.client.clone(), self.cfg.clone(), owned);
        }
    }
}

impl Drop for Reservation {
    fn drop(&mut self) {
        self.notify(Action::Release, "abandoned");
    }
}
