//! The device side over HTTPS: [`DirectHttps`], the [`Exchange`] that carries the session's
//! messages, and [`drive`], `zerotouch-device-tokio`'s loop with its end as an [`HttpError`].

use std::sync::Arc;
use std::time::Duration;

use hyper::Method;
use rand_core::CryptoRng;
use rustls::ClientConfig;
use zerotouch_core::{Envelope, MessageTag, Signer};
use zerotouch_device::{DeviceSession, DeviceState, Event, Path, Trigger};

pub use zerotouch_device_tokio::{DeviceRun, Exchange, Radio};

use super::channel::{HttpsChannel, ServerEndpoint};
use crate::{CBOR, HttpError, REVOCATION_PATH, SETUP_PATH};

/// A device talking HTTPS to the server itself, with mutual TLS: setup-network messages go
/// to the setup endpoint, revocation queries to the revocation endpoint.
#[derive(Debug)]
pub struct DirectHttps {
    setup: HttpsChannel,
    home: HttpsChannel,
}

impl DirectHttps {
    /// The server as seen over the setup network and over the home network (often the same
    /// address), with the device's TLS configuration from
    /// [`device_tls_config`](crate::device_tls_config).
    pub fn new(setup: ServerEndpoint, home: ServerEndpoint, tls: Arc<ClientConfig>) -> Self {
        DirectHttps {
            setup: HttpsChannel::new(setup, Arc::clone(&tls)),
            home: HttpsChannel::new(home, tls),
        }
    }
}

impl Exchange for DirectHttps {
    type Error = HttpError;

    async fn exchange(&mut self, path: Path, message: Vec<u8>) -> Result<Vec<u8>, HttpError> {
        // Routing only: the revocation service may be hosted apart from the setup service.
        let target = match Envelope::decode(&message).map(|e| e.header.tag) {
            Ok(MessageTag::RevocationQuery) => REVOCATION_PATH,
            _ => SETUP_PATH,
        };
        let channel = match path {
            Path::Setup => &mut self.setup,
            Path::Home => &mut self.home,
        };
        answer_of(
            channel
                .request(Method::POST, target, &[], Some((CBOR, message)))
                .await?,
        )
    }
}

/// The protocol answer in a reply: any CBOR body (error statuses carry the protocol's error
/// message, which the session takes as a hint), else the HTTP error.
pub(crate) fn answer_of(reply: super::channel::Reply) -> Result<Vec<u8>, HttpError> {
    if reply.content_type.as_deref() == Some(CBOR) {
        Ok(reply.body)
    } else {
        reply.success().map(|r| r.body)
    }
}

/// Runs `session` over `exchange` as [`zerotouch_device_tokio::drive`] does, with the run's
/// end as an [`HttpError`].
pub async fn drive<S, St, X, Rd, R>(
    session: &mut DeviceSession<S, St>,
    trigger: Trigger,
    exchange: &mut X,
    radio: &mut Rd,
    rng: &mut R,
    bound: Duration,
) -> Result<DeviceRun, HttpError>
where
    S: Signer,
    St: DeviceState,
    X: Exchange,
    Rd: Radio,
    R: CryptoRng + Send,
{
    Ok(zerotouch_device_tokio::drive(session, trigger, exchange, radio, rng, bound).await?)
}

/// [`drive`], calling `observe` with each event as it happens.
pub async fn drive_observed<S, St, X, Rd, R>(
    session: &mut DeviceSession<S, St>,
    trigger: Trigger,
    exchange: &mut X,
    radio: &mut Rd,
    rng: &mut R,
    bound: Duration,
    observe: &mut (dyn FnMut(&Event) + Send),
) -> Result<DeviceRun, HttpError>
where
    S: Signer,
    St: DeviceState,
    X: Exchange,
    Rd: Radio,
    R: CryptoRng + Send,
{
    Ok(zerotouch_device_tokio::drive_observed(
        session, trigger, exchange, radio, rng, bound, observe,
    )
    .await?)
}
