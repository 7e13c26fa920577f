//! Stored responses: the one answer to a request, kept so that an identical retransmission
//! gets identical bytes and a different request under the same key is recognised. Shared by
//! the setup and association services; each decides what a different request means for it.

use zerotouch_core::Instant;
use zerotouch_store::{PutResponse, ResponseKey, Store, StoreError, StoredResponse};

/// What the store holds under a request's key.
pub(crate) enum Earlier {
    /// Nothing: the request is new.
    Nothing,
    /// The response to an identical request (same canonical digest).
    Same(Vec<u8>),
    /// The response to a different request under the same key.
    Different,
}

/// What the store holds under `key`, compared with the request's `digest`.
pub(crate) async fn earlier<St: Store>(
    store: &St,
    key: ResponseKey,
    digest: &[u8; 32],
    now: Instant,
) -> Result<Earlier, StoreError> {
    Ok(match store.stored_response(key, now).await? {
        Some(r) if r.request_digest == *digest => Earlier::Same(r.response),
        Some(_) => Earlier::Different,
        None => Earlier::Nothing,
    })
}

/// How the attempt to store a response went.
pub(crate) enum Kept {
    /// Ours is the stored one.
    Ours(Vec<u8>),
    /// Another process stored one for an identical request first: send theirs.
    Theirs(Vec<u8>),
}

/// Stores `response` to the request with `digest` under `key` unless one is already there;
/// `None` if the one there answers a different request.
pub(crate) async fn keep<St: Store>(
    store: &St,
    key: ResponseKey,
    digest: [u8; 32],
    response: Vec<u8>,
    expires_at: Instant,
) -> Result<Option<Kept>, StoreError> {
    let stored = StoredResponse {
        request_digest: digest,
        response: response.clone(),
        expires_at,
    };
    Ok(match store.put_response_if_absent(key, stored).await? {
        PutResponse::Stored => Some(Kept::Ours(response)),
        PutResponse::Existing(r) if r.request_digest == digest => Some(Kept::Theirs(r.response)),
        PutResponse::Existing(_) => None,
    })
}
