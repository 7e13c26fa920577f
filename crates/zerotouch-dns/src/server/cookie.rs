//! The stateless retry cookie: a MAC of the tunnel id under an hourly key derived from one
//! root secret that every server process reads from the store.
//!
//! `K_e = HMAC-SHA256(root, "zerotouch-dns epoch" || e)` with `e = now_ms / 3,600,000` as a
//! big-endian u64, and the cookie is the first 5 bytes of
//! `HMAC-SHA256(K_e, "zerotouch-dns cookie v1" || tunnel id)`. A cookie of the current or the
//! previous epoch is accepted, so one lives between one and two hours.

use hmac::{Hmac, KeyInit, Mac};
use sha2::{Digest, Sha256};
use subtle::{Choice, ConstantTimeEq};
use tokio::sync::OnceCell;
use tracing::info;
use zerotouch_core::{Instant, SessionId};
use zerotouch_store::{SessionCas, SessionStore, StoreError};

use crate::header::{Cookie, TunnelId};

/// Milliseconds of one cookie epoch.
pub(crate) const EPOCH_MS: u64 = 3_600_000;
/// Bytes of the root secret.
const ROOT_LEN: usize = 32;
/// The root never expires (the SQLite store keeps instants as signed 64-bit numbers).
const ROOT_EXPIRES: Instant = Instant(i64::MAX as u64);
/// Reads and creations tried before giving up on a store that keeps changing the record.
const ROOT_TRIES: usize = 4;

/// Why the root secret could not be had.
#[derive(Debug)]
pub(crate) enum RootError {
    /// The store failed.
    Store(StoreError),
    /// The operating system's random number generator failed.
    Random,
    /// The record under the root's id is not a 32-byte secret, or kept changing.
    Corrupt,
}

impl From<StoreError> for RootError {
    fn from(e: StoreError) -> Self {
        RootError::Store(e)
    }
}

/// The session id the root secret is kept under.
fn root_id() -> SessionId {
    SessionId(first_16(&Sha256::digest(b"zerotouch-dns cookie root")))
}

fn first_16(digest: &[u8]) -> [u8; 16] {
    let mut id = [0u8; 16];
    if let Some(head) = digest.get(..16) {
        id.copy_from_slice(head);
    }
    id
}

fn hmac(key: &[u8], parts: &[&[u8]]) -> [u8; 32] {
    // HMAC takes keys of any length: this cannot fail.
    let Ok(mut mac) = <Hmac<Sha256> as KeyInit>::new_from_slice(key) else {
        return [0u8; 32];
    };
    for part in parts {
        mac.update(part);
    }
    mac.finalize().into_bytes().into()
}

/// The cookie of `tunnel` in epoch `epoch`.
fn cookie_in(root: &[u8; ROOT_LEN], epoch: u64, tunnel: TunnelId) -> Cookie {
    let key = hmac(root, &[b"zerotouch-dns epoch", &epoch.to_be_bytes()]);
    let tag = hmac(&key, &[b"zerotouch-dns cookie v1", &tunnel.0]);
    let mut cookie = [0u8; 5];
    if let Some(head) = tag.get(..5) {
        cookie.copy_from_slice(head);
    }
    Cookie(cookie)
}

/// The root secret, read from (or created in) the store once, then kept in memory.
#[derive(Default)]
pub(crate) struct CookieJar {
    root: OnceCell<[u8; ROOT_LEN]>,
}

impl core::fmt::Debug for CookieJar {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("CookieJar")
            .field("loaded", &self.root.initialized())
            .finish()
    }
}

impl CookieJar {
    /// The root, from memory, else from the store, else a new one stored for every process.
    pub(crate) async fn root<St: SessionStore>(
        &self,
        store: &St,
        now: Instant,
    ) -> Result<&[u8; ROOT_LEN], RootError> {
        self.root.get_or_try_init(|| load_root(store, now)).await
    }

    /// The cookie of `tunnel` at `now`.
    pub(crate) fn cookie(root: &[u8; ROOT_LEN], now: Instant, tunnel: TunnelId) -> Cookie {
        cookie_in(root, now.0 / EPOCH_MS, tunnel)
    }

    /// Whether `cookie` is the cookie of `tunnel` in this epoch or the one before, compared
    /// in constant time.
    pub(crate) fn accepts(
        root: &[u8; ROOT_LEN],
        now: Instant,
        tunnel: TunnelId,
        cookie: Cookie,
    ) -> bool {
        let epoch = now.0 / EPOCH_MS;
        let current = cookie_in(root, epoch, tunnel);
        let previous = cookie_in(root, epoch.saturating_sub(1), tunnel);
        let ok: Choice = current.0.ct_eq(&cookie.0) | previous.0.ct_eq(&cookie.0);
        bool::from(ok)
    }
}

async fn load_root<St: SessionStore>(
    store: &St,
    now: Instant,
) -> Result<[u8; ROOT_LEN], RootError> {
    let id = root_id();
    for _ in 0..ROOT_TRIES {
        if let Some(record) = store.session(id, now).await? {
            return <[u8; ROOT_LEN]>::try_from(record.state.as_slice())
                .map_err(|_| RootError::Corrupt);
        }
        let mut root = [0u8; ROOT_LEN];
        getrandom::fill(&mut root).map_err(|_| RootError::Random)?;
        match store
            .compare_and_swap_session(id, None, root.to_vec(), ROOT_EXPIRES, now)
            .await?
        {
            SessionCas::Written { .. } => {
                info!("created the DNS cookie secret");
                return Ok(root);
            }
            // Another process created it first: read theirs.
            SessionCas::Conflict { .. } => continue,
        }
    }
    Err(RootError::Corrupt)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cookies_live_one_to_two_epochs() {
        let root = [7u8; ROOT_LEN];
        let tunnel = TunnelId([1, 2, 3, 4, 5]);
        let t = Instant(10 * EPOCH_MS + 5);
        let cookie = CookieJar::cookie(&root, t, tunnel);
        assert!(CookieJar::accepts(&root, t, tunnel, cookie));
        assert!(CookieJar::accepts(
            &root,
            Instant(11 * EPOCH_MS + 1),
            tunnel,
            cookie
        ));
        assert!(!CookieJar::accepts(
            &root,
            Instant(12 * EPOCH_MS),
            tunnel,
            cookie
        ));
        assert!(!CookieJar::accepts(&root, t, TunnelId([0; 5]), cookie));
        assert!(!CookieJar::accepts(&[8u8; ROOT_LEN], t, tunnel, cookie));
    }

    /// docs/vectors/dns.json, `cookie`.
    #[test]
    fn cookies_match_the_vectors() {
        let root: [u8; 32] = Sha256::digest(b"zerotouch test vector dns cookie root").into();
        let tunnel = TunnelId([0xa1, 0xb2, 0xc3, 0xd4, 0xe5]);
        let now = Instant(1_790_000_000_000);
        assert_eq!(now.0 / EPOCH_MS, 497_222);
        let cookie = CookieJar::cookie(&root, now, tunnel);
        assert_eq!(cookie.0, [0x3a, 0xe4, 0xaa, 0x3b, 0x4e]);
        let previous = Cookie([0x0d, 0x29, 0x84, 0x73, 0x0d]);
        assert_eq!(cookie_in(&root, 497_221, tunnel), previous);
        assert!(CookieJar::accepts(&root, now, tunnel, previous));
    }
}
