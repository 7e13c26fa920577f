//! A real unbound on loopback for the tests: `zerotouch_dns::local_resolver` (the launcher
//! the demo and the benchmark use too) in a temporary directory removed on drop.

use std::net::SocketAddr;
use std::path::Path;

use tempfile::TempDir;
use zerotouch_dns::local_resolver::{LocalResolver, ResolverOptions, find_unbound};

/// Which resolver behaviours are switched on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UnboundOptions {
    /// `use-caps-for-id`: 0x20, random case in every name sent to the authoritative server.
    pub caps_for_id: bool,
    /// `qname-minimisation`: A probes for each label below the zone before the real query.
    pub qname_minimisation: bool,
}

impl Default for UnboundOptions {
    /// Both on: the hostile-but-realistic resolver our transport has to survive.
    fn default() -> Self {
        Self {
            caps_for_id: true,
            qname_minimisation: true,
        }
    }
}

/// A running unbound, killed on drop. Answers on `addr` (UDP and TCP, 127.0.0.1 only).
#[derive(Debug)]
pub struct Unbound {
    /// Where clients send their queries.
    pub addr: SocketAddr,
    // Dropped before `dir`: unbound is killed, then its directory removed.
    resolver: LocalResolver,
    dir: TempDir,
}

impl Unbound {
    /// Starts unbound resolving `zone` (e.g. `"zt.test."`) through a stub zone pointing at
    /// `authoritative` (an IPv4 address), and waits until it answers.
    ///
    /// Errors when unbound is not installed (scripts/test.sh installs it), cannot start, or does
    /// not answer within 5 s; the error carries unbound's log.
    pub async fn start(
        zone: &str,
        authoritative: SocketAddr,
        opts: UnboundOptions,
    ) -> Result<Unbound, String> {
        let binary = find_unbound().map_err(|_| {
            "unbound is not installed (scripts/test.sh installs it: apt-get install unbound)"
                .to_owned()
        })?;
        let dir = TempDir::new().map_err(|e| format!("temp dir: {e}"))?;
        let options = ResolverOptions {
            caps_for_id: opts.caps_for_id,
            qname_minimisation: opts.qname_minimisation,
            min_retry_ms: None,
        };
        let resolver = LocalResolver::start(&binary, dir.path(), zone, authoritative, options)
            .await
            .map_err(|e| e.to_string())?;
        Ok(Unbound {
            addr: resolver.addr(),
            resolver,
            dir,
        })
    }

    /// unbound's log (stderr, then stdout), for diagnostics.
    pub fn log(&self) -> String {
        self.resolver.log()
    }

    /// The directory holding unbound.conf and the logs; removed on drop.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }
}
