//! The sponsor's side of the association endpoint (flow 2): a device already on the home
//! network asks the association server to vouch for a joiner, over mutual TLS with its own
//! device certificate.

use std::sync::Arc;

use hyper::Method;
use rustls::ClientConfig;

use super::channel::{HttpsChannel, ServerEndpoint};
use super::device::answer_of;
use crate::{CBOR, HttpError, PEER_VERIFY_PATH};

/// Posts a sponsor's verification requests to the association endpoint.
///
/// The connection is kept alive between requests and opened again (one retry) when the server
/// closed it: a verification request is safe to send twice, since the server answers an
/// identical retransmission with the bytes it stored and does not count it again. Further
/// retransmission is the sponsor's state machine's to decide.
#[derive(Debug)]
pub struct AssociationClient {
    channel: HttpsChannel,
}

impl AssociationClient {
    /// A client for the server at `server`, with the sponsor's TLS configuration from
    /// [`device_tls_config`](crate::device_tls_config): its device certificate, whose key must
    /// be the one that signs its requests (the server refuses any other).
    pub fn new(server: ServerEndpoint, tls: Arc<ClientConfig>) -> Self {
        AssociationClient {
            channel: HttpsChannel::new(server, tls),
        }
    }

    /// Sends one verification request (its envelope's bytes, unchanged) and returns the
    /// server's answer: the verification data or an error message, both CBOR envelopes for
    /// the sponsor to check. An HTTP-layer refusal (no or untrusted certificate, rate limit,
    /// body too large) is an [`HttpError::Status`].
    pub async fn verify(&mut self, request: Vec<u8>) -> Result<Vec<u8>, HttpError> {
        answer_of(
            self.channel
                .request(Method::POST, PEER_VERIFY_PATH, &[], Some((CBOR, request)))
                .await?,
        )
    }
}
