//! A job's deliveries ↔ their fields in the job hash.
//!
//! Each [`DeliveryKind`] has the same seven fields under its own prefix — `cb_` for the
//! callback, `adm_` for the admission release, `st_` for the `started` event — which is the prefix the Lua scripts join
//! field names from (`DELIVERIES` in `lua/prelude.lua`); the admission adds
//! `adm_reservation`. A kind's fields are all absent when the job has no such delivery,
//! its optional parts absent when `None`.

use super::{num, FieldList, Fields};
use crate::store::model::{Admission, Delivery, DeliveryKind, DeliveryState, Job};
use crate::store::StoreError;

/// The hash field names of one kind's delivery.
struct Names {
    url: &'static str,
    state: &'static str,
    attempts: &'static str,
    next_at: &'static str,
    last_status: &'static str,
    last_error: &'static str,
    lease_until: &'static str,
}

const CALLBACK: Names = Names {
    url: "cb_url",
    state: "cb_state",
    attempts: "cb_attempts",
    next_at: "cb_next_at",
    last_status: "cb_last_status",
    last_error: "cb_last_error",
    lease_until: "cb_lease_until",
};

const ADMISSION: Names = Names {
    url: "adm_url",
    state: "adm_state",
    attempts: "adm_attempts",
    next_at: "adm_next_at",
    last_status: "adm_last_status",
    last_error: "adm_last_error",
    lease_until: "adm_lease_until",
};

const STARTED: Names = Names {
    url: "st_url",
    state: "st_state",
    attempts: "st_attempts",
    next_at: "st_next_at",
    last_status: "st_last_status",
    last_error: "st_last_error",
    lease_until: "st_lease_until",
};

/// The admission's reservation id, absent when it has none.
const RESERVATION: &str = "adm_reservation";

fn names(kind: DeliveryKind) -> &'static Names {
    match kind {
        DeliveryKind::Callback => &CALLBACK,
        DeliveryKind::Admission => &ADMISSION,
        DeliveryKind::Started => &STARTED,
    }
}

/// Appends the fields of every delivery `job` has.
pub(super) fn push_fields(job: &Job, f: &mut FieldList) {
    for kind in DeliveryKind::ALL {
        if let Some(d) = job.delivery(kind) {
            push_delivery(names(kind), d, f);
        }
    }
    if let Some(reservation) = job.admission.as_ref().and_then(|a| a.reservation.as_ref()) {
        f.push((RESERVATION, reservation.clone().into_bytes()));
    }
}

fn push_delivery(n: &Names, d: &Delivery, f: &mut FieldList) {
    f.push((n.url, d.url.clone().into_bytes()));
    f.push((n.state, d.state.as_str().into()));
    f.push((n.attempts, num(d.attempts)));
    let optional = [
        (n.next_at, d.next_attempt_at.map(num)),
        (n.last_status, d.last_status.map(num)),
        (n.last_error, d.last_error.clone().map(String::into_bytes)),
        (n.lease_until, d.lease_until.map(num)),
    ];
    f.extend(optional.into_iter().filter_map(|(k, v)| Some((k, v?))));
}

/// The callback's fields; no URL means no callback.
pub(super) fn decode_callback(f: &mut Fields) -> Result<Option<Delivery>, StoreError> {
    decode_delivery(&CALLBACK, f)
}

/// The `started` event's fields; no URL means the client did not ask for it.
pub(super) fn decode_started(f: &mut Fields) -> Result<Option<Delivery>, StoreError> {
    decode_delivery(&STARTED, f)
}

/// The admission's fields; no URL means no admission.
pub(super) fn decode_admission(f: &mut Fields) -> Result<Option<Admission>, StoreError> {
    let Some(delivery) = decode_delivery(&ADMISSION, f)? else {
        return Ok(None);
    };
    Ok(Some(Admission {
        reservation: f.opt_text(RESERVATION)?,
        delivery,
    }))
}

fn decode_delivery(n: &Names, f: &mut Fields) -> Result<Option<Delivery>, StoreError> {
    let Some(url) = f.opt_text(n.url)? else {
        return Ok(None);
    };
    let state = f.text(n.state)?;
    let state = DeliveryState::parse(&state)
        .ok_or_else(|| StoreError::new(format!("unknown delivery state {state:?}")))?;
    Ok(Some(Delivery {
        url,
        state,
        attempts: f.number(n.attempts)?,
        next_attempt_at: f.opt_number(n.next_at)?,
        last_status: f.opt_number(n.last_status)?,
        last_error: f.opt_text(n.last_error)?,
        lease_until: f.opt_number(n.lease_until)?,
    }))
}
