//! The route table: matchit path patterns, then a method check.
//!
//! Several routes may share one path pattern with different methods (a `POST` submit and a
//! `GET` on the same URL), so a pattern maps to a small list of `(methods, route)` pairs and
//! a precomputed `Allow` value for the `405` answer. An empty method list takes every
//! method (the gateway's built-in endpoints answer `405` themselves, with their own
//! `Allow`). Config loading has already refused
//! conflicting patterns and duplicate method + path pairs; the constructor still returns an
//! error rather than trusting that.

use http::{HeaderValue, Method};

/// Why a request has no route.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Miss {
    /// No pattern matches the path.
    NotFound,
    /// A pattern matches but not with this method; the value for `Allow`.
    MethodNotAllowed(HeaderValue),
}

struct PathEntry<T> {
    routes: Vec<(Vec<Method>, T)>,
    allow: HeaderValue,
}

/// Path pattern + method → `T`.
pub struct Router<T> {
    paths: matchit::Router<usize>,
    entries: Vec<PathEntry<T>>,
}

impl<T> Router<T> {
    /// Builds the table from `(pattern, methods, value)` triples.
    pub fn new(routes: impl IntoIterator<Item = (String, Vec<Method>, T)>) -> Result<Self, String> {
        let mut paths = matchit::Router::new();
        let mut patterns: Vec<String> = Vec::new();
        let mut entries: Vec<PathEntry<T>> = Vec::new();
        for (pattern, methods, value) in routes {
            match patterns.iter().position(|p| *p == pattern) {
                Some(i) => entries[i].routes.push((methods, value)),
                None => {
                    paths
                        .insert(pattern.clone(), entries.len())
                        .map_err(|e| format!("route path {pattern:?}: {e}"))?;
                    patterns.push(pattern);
                    entries.push(PathEntry {
                        routes: vec![(methods, value)],
                        allow: HeaderValue::from_static(""),
                    });
                }
            }
        }
        for e in &mut entries {
            let mut names: Vec<&str> = e
                .routes
                .iter()
                .flat_map(|(m, _)| m.iter().map(Method::as_str))
                .collect();
            names.sort_unstable();
            names.dedup();
            e.allow = HeaderValue::from_str(&names.join(", "))
                .map_err(|_| "method names are not valid header text".to_string())?;
        }
        Ok(Router { paths, entries })
    }

    /// The value for this method and path.
    pub fn lookup(&self, method: &Method, path: &str) -> Result<&T, Miss> {
        let matched = self.paths.at(path).map_err(|_| Miss::NotFound)?;
        let entry = self.entries.get(*matched.value).ok_or(Miss::NotFound)?;
        entry
            .routes
            .iter()
            .find(|(methods, _)| methods.is_empty() || methods.contains(method))
            .map(|(_, v)| v)
            .ok_or_else(|| Miss::MethodNotAllowed(entry.allow.clone()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table() -> Router<&'static str> {
        Router::new([
            ("/v1/edit".to_string(), vec![Method::POST], "edit"),
            ("/v1/tasks/{id}".to_string(), vec![Method::GET], "status"),
            ("/v1/tasks/{id}".to_string(), vec![Method::DELETE], "cancel"),
            (
                "/v1/files/{*rest}".to_string(),
                vec![Method::GET, Method::PUT],
                "files",
            ),
        ])
        .unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn matches_patterns_and_methods() {
        let t = table();
        assert_eq!(t.lookup(&Method::POST, "/v1/edit"), Ok(&"edit"));
        assert_eq!(t.lookup(&Method::GET, "/v1/tasks/42"), Ok(&"status"));
        assert_eq!(t.lookup(&Method::DELETE, "/v1/tasks/42"), Ok(&"cancel"));
        assert_eq!(t.lookup(&Method::PUT, "/v1/files/a/b/c"), Ok(&"files"));
    }

    #[test]
    fn an_empty_method_list_takes_every_method() {
        let t = Router::new([("/built-in".to_string(), vec![], "any")])
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(t.lookup(&Method::GET, "/built-in"), Ok(&"any"));
        let custom = Method::from_bytes(b"PURGE").unwrap_or(Method::PATCH);
        assert_eq!(t.lookup(&custom, "/built-in"), Ok(&"any"));
    }

    #[test]
    fn unknown_path_is_not_found() {
        assert_eq!(table().lookup(&Method::GET, "/nope"), Err(Miss::NotFound));
        assert_eq!(
            table().lookup(&Method::GET, "/v1/tasks/"),
            Err(Miss::NotFound)
        );
    }

    #[test]
    fn wrong_method_lists_every_allowed_one() {
        let t = table();
        assert_eq!(
            t.lookup(&Method::PATCH, "/v1/tasks/1"),
            Err(Miss::MethodNotAllowed(HeaderValue::from_static(
                "DELETE, GET"
            )))
        );
        assert_eq!(
            t.lookup(&Method::GET, "/v1/edit"),
            Err(Miss::MethodNotAllowed(HeaderValue::from_static("POST")))
        );
    }
}
