//! Environment overrides for the few settings people change per deployment — the
//! container's listen addresses and its job store — so one image and one mounted file
//! serve every environment (twelve-factor style).
//!
//! | variable | overrides | example |
//! |---|---|---|
//! | `PREFER_GATEWAY_LISTEN` | `server.listen` | `0.0.0.0:8080` |
//! | `PREFER_GATEWAY_ADMIN_LISTEN` | `server.admin_listen` (`off` disables it) | `0.0.0.0:9901` |
//! | `PREFER_GATEWAY_STORE` | `jobs.store` | `redis://redis:6379/0` |
//! | `PREFER_GATEWAY_PUBLIC_URL` | `server.public_url` | `https://api.example.com` |
//!
//! (`PREFER_GATEWAY_LOG_FORMAT` = `text` | `json` is the `--log-format` flag's.) They are
//! applied by [`super::load_file`], so `run`, `check` (which lists the ones in force) and a
//! SIGHUP reload all see the same effective config. A value that does not parse is a
//! config error naming the variable (`check` and `run` exit 2).

use super::Config;

/// `server.listen`.
pub const LISTEN: &str = "PREFER_GATEWAY_LISTEN";
/// `server.admin_listen`.
pub const ADMIN_LISTEN: &str = "PREFER_GATEWAY_ADMIN_LISTEN";
/// `jobs.store`.
pub const STORE: &str = "PREFER_GATEWAY_STORE";
/// `server.public_url`.
pub const PUBLIC_URL: &str = "PREFER_GATEWAY_PUBLIC_URL";

/// Applies the overrides `var` returns a value for; `Err((variable, message))` for one
/// that does not parse. The names applied are recorded in `cfg.overridden`.
pub fn apply(
    cfg: &mut Config,
    var: impl Fn(&str) -> Option<String>,
) -> Result<(), (&'static str, String)> {
    let set = |name: &'static str| var(name).map(|v| (name, v.trim().to_owned()));
    if let Some((name, v)) = set(LISTEN) {
        cfg.server.listen = v.parse().map_err(|e| (name, format!("{v:?}: {e}")))?;
        cfg.overridden.push(name);
    }
    if let Some((name, v)) = set(ADMIN_LISTEN) {
        cfg.server.admin_listen = match v.as_str() {
            "off" | "" => None,
            _ => Some(v.parse().map_err(|e| (name, format!("{v:?}: {e}")))?),
        };
        cfg.overridden.push(name);
    }
    if let Some((name, v)) = set(STORE) {
        cfg.jobs.store = super::load::store_value(&v).map_err(|e| (name, e))?;
        cfg.overridden.push(name);
    }
    if let Some((name, v)) = set(PUBLIC_URL) {
        cfg.server.public_url = Some(super::load::public_url_value(&v).map_err(|e| (name, e))?);
        cfg.overridden.push(name);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::StoreConfig;

    fn base() -> Config {
        crate::config::load_str("[jobs]\nstore = \"memory\"\n", "t.toml")
            .unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn overrides_apply_and_are_recorded() {
        let mut cfg = base();
        let env = |k: &str| match k {
            LISTEN => Some("0.0.0.0:8080".to_owned()),
            ADMIN_LISTEN => Some("off".to_owned()),
            STORE => Some("sqlite:/var/lib/prefer-gateway/jobs.db".to_owned()),
            _ => None,
        };
        assert_eq!(apply(&mut cfg, env), Ok(()));
        assert_eq!(cfg.server.listen.to_string(), "0.0.0.0:8080");
        assert_eq!(cfg.server.admin_listen, None);
        assert!(matches!(cfg.jobs.store, StoreConfig::Sqlite(_)));
        assert_eq!(cfg.overridden, vec![LISTEN, ADMIN_LISTEN, STORE]);
    }

    #[test]
    fn a_bad_value_names_its_variable() {
        let mut cfg = base();
        let err = apply(&mut cfg, |k| {
            (k == STORE).then(|| "postgres://x".to_owned())
        });
        assert!(matches!(err, Err((STORE, _))), "{err:?}");
        let err = apply(&mut cfg, |k| (k == LISTEN).then(|| "nowhere".to_owned()));
        assert!(matches!(err, Err((LISTEN, _))), "{err:?}");
    }
}
