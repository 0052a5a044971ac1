//! Which resource a path under `[jobs].path` names, and the methods each one allows.

/// What a path under `[jobs].path` names.
#[doc(hidden)] // public for the fuzz target (fuzz/fuzz_targets/job_path.rs), not API
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobPath<'a> {
    /// `{prefix}` itself: the list.
    List,
    /// `{prefix}/{id}`.
    Status(&'a str),
    /// `{prefix}/{id}/result`.
    Result(&'a str),
    /// `{prefix}/{id}/callback`.
    Callback(&'a str),
}

/// Splits a request path under the job API's `prefix` (`[jobs].path`); `None` (→ `404`)
/// for anything else: an empty id, an unknown sub-resource, more segments, or a path
/// outside the prefix. The id is not checked further: an id the store does not know is an
/// ordinary `404` from the lookup, the same answer as another tenant's id.
#[doc(hidden)] // public for the fuzz target, not API
pub fn parse_path<'a>(prefix: &str, path: &'a str) -> Option<JobPath<'a>> {
    if path == prefix {
        return Some(JobPath::List);
    }
    let rest = path.strip_prefix(prefix)?.strip_prefix('/')?;
    let (id, sub) = match rest.split_once('/') {
        None => (rest, None),
        Some((id, sub)) => (id, Some(sub)),
    };
    if id.is_empty() {
        return None;
    }
    match sub {
        None => Some(JobPath::Status(id)),
        Some("result") => Some(JobPath::Result(id)),
        Some("callback") => Some(JobPath::Callback(id)),
        Some(_) => None,
    }
}

impl JobPath<'_> {
    /// The methods this resource answers (the `Allow` of its `405`).
    pub(super) fn allowed(self) -> &'static str {
        match self {
            JobPath::List | JobPath::Result(_) => "GET, HEAD",
            JobPath::Status(_) => "DELETE, GET, HEAD",
            JobPath::Callback(_) => "POST",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{parse_path, JobPath};

    #[test]
    fn job_paths() {
        let p = "/jobs";
        assert_eq!(parse_path(p, "/jobs"), Some(JobPath::List));
        assert_eq!(parse_path(p, "/jobs/a1"), Some(JobPath::Status("a1")));
        assert_eq!(
            parse_path(p, "/jobs/a1/result"),
            Some(JobPath::Result("a1"))
        );
        assert_eq!(
            parse_path(p, "/jobs/a1/callback"),
            Some(JobPath::Callback("a1"))
        );
        for miss in [
            "/jobs/",
            "/jobs//result",
            "/jobs/a1/",
            "/jobs/a1/other",
            "/jobs/a1/result/x",
            "/jobsa1",
            "/other/a1",
            "",
        ] {
            assert_eq!(parse_path(p, miss), None, "{miss:?}");
        }
    }
}
