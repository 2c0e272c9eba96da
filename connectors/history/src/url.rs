//! The history store URL: `sqlite://PATH` (or a bare path, as before URLs) or
//! `cql://HOST[:PORT][,HOST[:PORT]…]/KEYSPACE`.

use std::path::PathBuf;

use crate::HistoryError;

/// The CQL native protocol's port, when a host names none.
pub const DEFAULT_CQL_PORT: u16 = 9042;

/// Which engine and where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreUrl {
    /// An SQLite file.
    Sqlite(PathBuf),
    /// A CQL cluster (ScyllaDB or Cassandra): contact points `host:port` and the keyspace.
    Cql {
        nodes: Vec<String>,
        keyspace: String,
    },
}

impl StoreUrl {
    /// Parse a store URL; an unknown scheme is an error naming it.
    pub fn parse(url: &str) -> Result<Self, HistoryError> {
        let url = url.trim();
        let Some((scheme, rest)) = url.split_once("://") else {
            if url.is_empty() {
                return Err(HistoryError::BadUrl("empty".into()));
            }
            return Ok(StoreUrl::Sqlite(PathBuf::from(url)));
        };
        match scheme.to_ascii_lowercase().as_str() {
            "sqlite" if rest.is_empty() => Err(HistoryError::BadUrl(format!(
                "{url:?} names no file: use sqlite://PATH"
            ))),
            "sqlite" => Ok(StoreUrl::Sqlite(PathBuf::from(rest))),
            "cql" => parse_cql(url, rest),
            other => Err(HistoryError::BadUrl(format!(
                "unknown history engine {other:?} in {url:?}: use sqlite://PATH or \
                 cql://HOST:PORT/KEYSPACE"
            ))),
        }
    }
}

fn parse_cql(url: &str, rest: &str) -> Result<StoreUrl, HistoryError> {
    let bad =
        |why: &str| HistoryError::BadUrl(format!("{url:?}: {why} (cql://HOST:PORT/KEYSPACE)"));
    let (hosts, keyspace) = rest.split_once('/').ok_or_else(|| bad("no keyspace"))?;
    if !valid_keyspace(keyspace) {
        return Err(bad(
            "the keyspace must be 1 to 48 letters, digits or _, beginning with a letter",
        ));
    }
    let mut nodes = Vec::new();
    for host in hosts.split(',') {
        let host = host.trim();
        if host.is_empty() {
            return Err(bad("a host is empty"));
        }
        let node = match host.rsplit_once(':') {
            Some((name, port)) if !name.is_empty() && !name.ends_with(':') => {
                port.parse::<u16>()
                    .map_err(|_| bad(&format!("port {port:?} is not a number")))?;
                host.to_string()
            }
            Some(_) => return Err(bad(&format!("host {host:?} is malformed"))),
            None => format!("{host}:{DEFAULT_CQL_PORT}"),
        };
        nodes.push(node);
    }
    Ok(StoreUrl::Cql {
        nodes,
        keyspace: keyspace.to_ascii_lowercase(),
    })
}

/// A keyspace name both ScyllaDB and Cassandra accept unquoted.
fn valid_keyspace(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && name.len() <= 48
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sqlite_urls_and_bare_paths_name_a_file() {
        assert_eq!(
            StoreUrl::parse("sqlite://.data/history.db").expect("ok"),
            StoreUrl::Sqlite(".data/history.db".into())
        );
        assert_eq!(
            StoreUrl::parse("sqlite:///var/lib/h.db").expect("ok"),
            StoreUrl::Sqlite("/var/lib/h.db".into())
        );
        assert_eq!(
            StoreUrl::parse("/tmp/x/history.db").expect("ok"),
            StoreUrl::Sqlite("/tmp/x/history.db".into())
        );
        assert!(StoreUrl::parse("sqlite://").is_err());
        assert!(StoreUrl::parse("").is_err());
    }

    #[test]
    fn cql_urls_name_nodes_and_a_keyspace() {
        assert_eq!(
            StoreUrl::parse("cql://10.0.0.1:19042,db2/History_1").expect("ok"),
            StoreUrl::Cql {
                nodes: vec!["10.0.0.1:19042".into(), "db2:9042".into()],
                keyspace: "history_1".into()
            }
        );
        for bad in [
            "cql://h:9042",
            "cql://h:9042/",
            "cql://h:port/ks",
            "cql://h:9042/1ks",
            "cql://h:9042/ks-x",
            "cql://,h/ks",
        ] {
            let e = StoreUrl::parse(bad).expect_err(bad);
            assert!(matches!(e, HistoryError::BadUrl(_)), "{bad}: {e}");
        }
    }

    #[test]
    fn an_unknown_scheme_is_named() {
        let e = StoreUrl::parse("postgres://h/db").expect_err("unknown");
        assert!(e.to_string().contains("\"postgres\""), "{e}");
        assert!(!e.is_retriable());
    }
}
