//! Where the server's state is kept: the embedded store in the data directory (the default)
//! or a PostgreSQL database that several server processes share (`--store postgres://…`).
//!
//! Either way the data key sealing secrets at rest is the data directory's `data.key`, so
//! every process serving one database needs a copy of the same data directory.

use core::fmt;
use core::str::FromStr;

use std::sync::Arc;

use zeroize::Zeroizing;
use zerotouch_store::{PostgresStore, SqliteStore};

use crate::CliError;
use crate::data_dir::read_certificates;

/// Where the server's state is kept.
#[derive(Clone, Default, PartialEq, Eq)]
pub enum StoreLocation {
    /// The embedded store (SQLite) in the data directory.
    #[default]
    Embedded,
    /// A PostgreSQL database, by connection URL (`postgres://user@host:port/database`).
    /// The URL may carry a password, so it is never printed.
    Postgres(Zeroizing<String>),
}

impl StoreLocation {
    /// What to print for this location: the URL without its user information.
    pub fn describe(&self) -> String {
        match self {
            StoreLocation::Embedded => "the embedded store".to_string(),
            StoreLocation::Postgres(url) => {
                let rest = url.split_once("://").map_or(url.as_str(), |(_, r)| r);
                // Parameters may carry a password (`?password=…`), even one with an '@'.
                let rest = rest.split('?').next().unwrap_or_default();
                let (authority, database) = rest.split_once('/').unwrap_or((rest, ""));
                // User information ends at the authority's last '@'.
                let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
                format!("PostgreSQL at {host}/{database}")
            }
        }
    }
}

impl fmt::Debug for StoreLocation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.describe())
    }
}

impl FromStr for StoreLocation {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let scheme = text.split_once("://").map(|(s, _)| s.to_ascii_lowercase());
        if text == "embedded" || text == "sqlite" {
            Ok(StoreLocation::Embedded)
        } else if matches!(scheme.as_deref(), Some("postgres" | "postgresql")) {
            Ok(StoreLocation::Postgres(Zeroizing::new(text.to_string())))
        } else {
            Err("a store is `embedded` or a postgres://user@host:port/database URL".to_string())
        }
    }
}

/// The TLS client configuration for PostgreSQL: only the CA certificates in `ca_pem` are
/// trusted for the database server's certificate.
pub(crate) fn database_tls(ca_pem: &std::path::Path) -> Result<rustls::ClientConfig, CliError> {
    let mut roots = rustls::RootCertStore::empty();
    for cert in read_certificates(ca_pem)? {
        roots.add(cert).map_err(|e| {
            CliError::BadArgument(format!("{}: not a usable CA: {e}", ca_pem.display()))
        })?;
    }
    rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .map(|b| b.with_root_certificates(roots).with_no_client_auth())
        .map_err(|e| CliError::BadArgument(format!("TLS to the database: {e}")))
}

/// `--store` as typed: parsed into a [`StoreLocation`] only after clap is done, because clap
/// repeats a value it refuses in its error message, and this one may hold a password.
#[derive(Clone)]
pub struct StoreArg(pub Zeroizing<String>);

impl fmt::Debug for StoreArg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("StoreArg(..)")
    }
}

impl StoreArg {
    /// Takes any text: [`StoreArg::location`] says what is wrong with it, without repeating it.
    pub fn parse(text: &str) -> Result<StoreArg, String> {
        Ok(StoreArg(Zeroizing::new(text.to_string())))
    }

    /// The location it names.
    pub fn location(&self) -> Result<StoreLocation, CliError> {
        self.0
            .parse()
            .map_err(|e| CliError::BadArgument(format!("--store / ZEROTOUCH_STORE: {e}")))
    }
}

/// An opened store of either kind; [`with_store!`] runs code generic over the store on it.
#[derive(Debug, Clone)]
pub enum OpenedStore {
    /// The embedded store.
    Embedded(SqliteStore),
    /// PostgreSQL.
    Postgres(PostgresStore),
}

/// Runs `$body` with `$store` bound to whichever store `$opened` holds: the body is compiled
/// once per kind, so the code in it stays generic over `zerotouch_store::Store`.
macro_rules! with_store {
    ($opened:expr, $store:ident => $body:expr) => {
        match $opened {
            $crate::store_location::OpenedStore::Embedded($store) => $body,
            $crate::store_location::OpenedStore::Postgres($store) => $body,
        }
    };
}
pub(crate) use with_store;

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn description_of_a_postgres_url_names_no_credentials() {
        for url in [
            "postgres://zt:hunter2@db.internal:5432/zerotouch",
            "postgresql://zt@db.internal:5432/zerotouch?password=hunter2&sslmode=disable",
            "postgres://zt@db.internal:5432/zerotouch?password=hunter@2",
            "postgres://zt:hun@ter2@db.internal:5432/zerotouch",
        ] {
            let location: StoreLocation = url.parse().unwrap();
            let text = format!("{} {location:?}", location.describe());
            assert!(!text.contains("hunter2") && !text.contains("hun"), "{text}");
            assert!(!text.contains("@2") && !text.contains("ter2"), "{text}");
            assert!(!text.contains("zt@"), "{text}");
            assert!(text.contains("db.internal:5432/zerotouch"), "{text}");
        }
    }

    #[test]
    fn a_store_is_embedded_or_a_postgres_url() {
        assert_eq!(
            "embedded".parse::<StoreLocation>(),
            Ok(StoreLocation::Embedded)
        );
        assert!("mysql://db/x".parse::<StoreLocation>().is_err());
        assert!("/var/lib/zt.db".parse::<StoreLocation>().is_err());
    }
}
