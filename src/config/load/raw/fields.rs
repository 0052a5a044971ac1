//! The `deserialize_with` functions of [`super`]: each runs a parser from
//! `super::super::values` while serde deserialises the value, so its errors carry the
//! value's span and key path.

use std::net::SocketAddr;
use std::time::{Duration, SystemTime};

use http::{HeaderName, Method};
use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, Visitor};
use serde::Deserialize;
use toml::Spanned;
use url::Url;

use super::super::seed::{non_empty, p, spanned, List, Parse};
use super::super::values as v;
use super::{RawAdmission, RawField, RawMode, RawTask};
use crate::config::{
    AdmissionConfig, AsyncRule, ByteSize, FieldSource, IdSource, JsonPointer, ModeConfig, ModeKind,
    ModeSource, RouteKind, StoreConfig, TaskCallback, TaskCancel, TaskConfig,
    DEFAULT_FALLBACK_POLL,
};
use crate::signed_url::UrlKey;

/// `fn name(d) -> Result<Option<T>, _>` for each optional plain value.
macro_rules! optional {
    ($($name:ident: $t:ty = $what:literal, $parse:path;)*) => {$(
        pub(super) fn $name<'de, D: Deserializer<'de>>(d: D) -> Result<Option<$t>, D::Error> {
            p($what, $parse).deserialize(d).map(Some)
        }
    )*};
}

optional! {
    opt_addr: SocketAddr = "an address such as \"127.0.0.1:8080\"", v::socket_addr;
    opt_duration: Duration = "a duration such as \"1s\"", v::duration;
    opt_positive: Duration = "a duration such as \"1s\"", v::positive_duration;
    opt_size: ByteSize = "a size such as \"10MiB\"", v::size;
    opt_jobs_path: String = "a path such as \"/jobs\"", v::jobs_path;
    opt_store: StoreConfig = "a store such as \"memory\"", v::store;
    opt_header: HeaderName = "a header name", v::header_name;
    opt_query: String = "a query parameter name", v::query_name;
    opt_pointer: JsonPointer = "a JSON pointer such as \"/status\"", v::pointer;
    opt_field_pointer: JsonPointer = "a JSON pointer such as \"/mode\"", v::field_pointer;
    opt_link: Url = "a URL", v::link;
    opt_mode_kind: ModeKind = "\"enum\" or \"bool\"", v::mode_kind;
    opt_method: Method = "an HTTP method such as \"POST\"", v::method;
}

pub(super) fn opt_date<'de, D: Deserializer<'de>>(d: D) -> Result<Option<SystemTime>, D::Error> {
    let what = "a date such as \"2026-06-01T00:00:00Z\"";
    Parse {
        what,
        parse: v::date,
        datetime: true,
    }
    .deserialize(d)
    .map(Some)
}

pub(super) fn opt_spanned_duration<'de, D>(d: D) -> Result<Option<Spanned<Duration>>, D::Error>
where
    D: Deserializer<'de>,
{
    spanned(d, v::duration).map(Some)
}

pub(super) fn opt_secret<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    match String::deserialize(d)? {
        s if s.is_empty() => Err(de::Error::custom("must not be empty (leave the key out)")),
        s => Ok(Some(s)),
    }
}

/// `[jobs].signing_secret`: the webhook secret's rules (non-empty; `whsec_` + standard
/// base64 or plain text), checked here rather than at start so a bad value is reported
/// with its line and column; the URL key is derived from it at once.
pub(super) fn opt_url_key<'de, D: Deserializer<'de>>(d: D) -> Result<Option<UrlKey>, D::Error> {
    let s = opt_secret(d)?.unwrap_or_default();
    UrlKey::from_secret(&s).map(Some).map_err(de::Error::custom)
}

pub(super) fn opt_at_least_one<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
    match u64::deserialize(d)? {
        0 => Err(de::Error::custom("must be at least 1")),
        n => Ok(Some(n)),
    }
}

pub(super) fn opt_in_flight<'de, D: Deserializer<'de>>(
    d: D,
) -> Result<Option<Spanned<u32>>, D::Error> {
    let n = Spanned::<u32>::deserialize(d)?;
    if *n.get_ref() == 0 {
        return Err(de::Error::custom("must be at least 1"));
    }
    Ok(Some(n))
}

pub(super) fn opt_schedule<'de, D: Deserializer<'de>>(
    d: D,
) -> Result<Option<Vec<Duration>>, D::Error> {
    non_empty(d, p("a duration such as \"2m\"", v::duration), false).map(Some)
}

pub(super) fn opt_public_url<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    v::public_url(&String::deserialize(d)?)
        .map(Some)
        .map_err(de::Error::custom)
}

pub(super) fn opt_networks<'de, D>(d: D) -> Result<Option<Vec<ipnet::IpNet>>, D::Error>
where
    D: Deserializer<'de>,
{
    let item = p("a network such as \"127.0.0.0/8\"", v::cidr);
    d.deserialize_seq(List {
        item,
        unique: false,
    })
    .map(Some)
}

/// `retry.on`: known conditions only, each once (an empty list retries nothing).
pub(super) fn opt_retry_on<'de, D>(d: D) -> Result<Option<Vec<crate::config::RetryOn>>, D::Error>
where
    D: Deserializer<'de>,
{
    let item = p(
        "a retry condition such as \"connect\"",
        crate::config::RetryOn::parse,
    );
    d.deserialize_seq(List { item, unique: true }).map(Some)
}

pub(super) fn opt_states<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Vec<String>>, D::Error> {
    non_empty(d, p("a state string", v::state), true).map(Some)
}

pub(super) fn route_name<'de, D: Deserializer<'de>>(d: D) -> Result<Spanned<String>, D::Error> {
    spanned(d, v::route_name)
}

pub(super) fn route_kind<'de, D: Deserializer<'de>>(d: D) -> Result<Spanned<RouteKind>, D::Error> {
    spanned(d, v::route_kind)
}

pub(super) fn route_path<'de, D: Deserializer<'de>>(d: D) -> Result<Spanned<String>, D::Error> {
    spanned(d, v::route_path)
}

pub(super) fn methods<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<Method>, D::Error> {
    non_empty(d, p("an HTTP method such as \"GET\"", v::method), true)
}

pub(super) fn upstream<'de, D: Deserializer<'de>>(d: D) -> Result<Url, D::Error> {
    p("a URL such as \"http://127.0.0.1:9000\"", v::upstream).deserialize(d)
}

pub(super) fn admission_url<'de, D: Deserializer<'de>>(d: D) -> Result<Url, D::Error> {
    p(
        "a URL such as \"http://billing:9000/admission\"",
        v::admission_url,
    )
    .deserialize(d)
}

pub(super) fn opt_admission<'de, D: Deserializer<'de>>(
    d: D,
) -> Result<Option<Spanned<AdmissionConfig>>, D::Error> {
    let raw = Spanned::<RawAdmission>::deserialize(d)?;
    let span = raw.span();
    let raw = raw.into_inner();
    let cfg = AdmissionConfig {
        url: raw.url,
        timeout: raw.timeout.unwrap_or(Duration::from_secs(5)),
    };
    Ok(Some(Spanned::new(span, cfg)))
}

pub(super) fn id_source<'de, D: Deserializer<'de>>(d: D) -> Result<IdSource, D::Error> {
    p("a JSON pointer or \"header:NAME\"", v::id_source).deserialize(d)
}

pub(super) fn status_url<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    p("a URL template such as \"/v1/tasks/{id}\"", v::status_url).deserialize(d)
}

pub(super) fn opt_mode<'de, D: Deserializer<'de>>(
    d: D,
) -> Result<Option<Spanned<ModeConfig>>, D::Error> {
    let raw = Spanned::<RawMode>::deserialize(d)?;
    let span = raw.span();
    let raw = raw.into_inner();
    let source = match (raw.query, raw.json) {
        (Some(q), None) => ModeSource::Query(q),
        (None, Some(ptr)) => ModeSource::Json(ptr),
        _ => {
            return Err(de::Error::custom(
                "mode needs exactly one of `query` or `json`",
            ))
        }
    };
    if let (Some(dep), Some(sunset)) = (raw.deprecation, raw.sunset) {
        if sunset < dep {
            return Err(de::Error::custom("sunset must not be before deprecation"));
        }
    }
    let mode = ModeConfig {
        source,
        kind: raw.kind.unwrap_or_default(),
        deprecation: raw.deprecation,
        sunset: raw.sunset,
        link: raw.link,
    };
    Ok(Some(Spanned::new(span, mode)))
}

pub(super) fn opt_field<'de, D: Deserializer<'de>>(
    d: D,
) -> Result<Option<Spanned<FieldSource>>, D::Error> {
    let raw = Spanned::<RawField>::deserialize(d)?;
    let span = raw.span();
    let source = match raw.into_inner() {
        RawField {
            json: Some(ptr),
            header: None,
        } => FieldSource::Json(ptr),
        RawField {
            json: None,
            header: Some(h),
        } => FieldSource::Header(h),
        _ => return Err(de::Error::custom("needs exactly one of `json` or `header`")),
    };
    Ok(Some(Spanned::new(span, source)))
}

pub(super) fn opt_task<'de, D: Deserializer<'de>>(
    d: D,
) -> Result<Option<Spanned<TaskConfig>>, D::Error> {
    let raw = Spanned::<RawTask>::deserialize(d)?;
    let span = raw.span();
    let raw = raw.into_inner();
    let succeeded = raw
        .succeeded
        .unwrap_or_else(|| vec!["succeeded".to_owned()]);
    let failed = raw.failed.unwrap_or_else(|| vec!["failed".to_owned()]);
    if let Some(both) = succeeded.iter().find(|s| failed.contains(s)) {
        return Err(de::Error::custom(format!(
            "state {both:?} is in both succeeded and failed"
        )));
    }
    let state = match raw.state {
        Some(ptr) => ptr,
        None => v::pointer("/status").map_err(de::Error::custom)?,
    };
    let callback =
        match (raw.callback, raw.fallback_poll_interval) {
            (Some(at), every) => Some(Box::new(TaskCallback {
                at: at.into_inner(),
                fallback_poll_interval: every.unwrap_or(DEFAULT_FALLBACK_POLL),
            })),
            (None, Some(_)) => return Err(de::Error::custom(
                "fallback_poll_interval applies only with task.callback (a callback-driven route)",
            )),
            (None, None) => None,
        };
    let task = TaskConfig {
        id: raw.id,
        status_url: raw.status_url,
        state,
        succeeded,
        failed,
        cancel: raw.cancel.map(|c| {
            Box::new(TaskCancel {
                method: c.method.unwrap_or(Method::POST),
                url: c.url,
            })
        }),
        callback,
    };
    Ok(Some(Spanned::new(span, task)))
}

/// `async_requires = { "/ptr" = value, … }`. Each key is checked as a field pointer *while*
/// it is deserialised, so a bad pointer's error points at the key itself.
pub(super) fn opt_async_requires<'de, D>(d: D) -> Result<Option<Spanned<Vec<AsyncRule>>>, D::Error>
where
    D: Deserializer<'de>,
{
    let rules = Spanned::<Rules>::deserialize(d)?;
    let span = rules.span();
    let rules = rules.into_inner().0;
    if rules.is_empty() {
        return Err(de::Error::custom(
            "must name at least one field (leave the key out for no rules)",
        ));
    }
    Ok(Some(Spanned::new(span, rules)))
}

/// The `async_requires` table, entries in file order (the first unmet one is reported).
struct Rules(Vec<AsyncRule>);

impl<'de> Deserialize<'de> for Rules {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_map(RulesVisitor)
    }
}

struct RulesVisitor;

impl<'de> Visitor<'de> for RulesVisitor {
    type Value = Rules;
    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(
            "an inline table of JSON pointer = value, e.g. { \"/response_mode\" = \"urls\" }",
        )
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Rules, A::Error> {
        let key = p(
            "a JSON pointer such as \"/response_mode\"",
            v::field_pointer,
        );
        let mut out = Vec::new();
        while let Some(field) = map.next_key_seed(key)? {
            let expected = map.next_value_seed(Expected)?;
            out.push(AsyncRule { field, expected });
        }
        Ok(Rules(out))
    }
}

/// A required value: what a JSON body can hold that TOML can write as a scalar. Arrays and
/// tables are refused: the rule is an equality on one field, and a deep comparison of
/// structures is not what the seed's rules ask for.
#[derive(Clone, Copy)]
struct Expected;

impl<'de> DeserializeSeed<'de> for Expected {
    type Value = serde_json::Value;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Expected {
    type Value = serde_json::Value;
    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a string, boolean, integer or float")
    }
    fn visit_str<E: de::Error>(self, s: &str) -> Result<Self::Value, E> {
        Ok(serde_json::Value::String(s.to_owned()))
    }
    fn visit_bool<E: de::Error>(self, b: bool) -> Result<Self::Value, E> {
        Ok(serde_json::Value::Bool(b))
    }
    fn visit_i64<E: de::Error>(self, n: i64) -> Result<Self::Value, E> {
        Ok(serde_json::Value::from(n))
    }
    fn visit_u64<E: de::Error>(self, n: u64) -> Result<Self::Value, E> {
        Ok(serde_json::Value::from(n))
    }
    fn visit_f64<E: de::Error>(self, n: f64) -> Result<Self::Value, E> {
        // JSON has no NaN or infinity, so no body could ever match such a rule.
        serde_json::Number::from_f64(n)
            .map(serde_json::Value::Number)
            .ok_or_else(|| E::custom(format!("{n} is not a JSON number")))
    }
}
