//! The device side over HTTPS: an [`Exchange`] that carries the session's messages, a
//! [`Radio`] the firmware implements, and [`drive`], the loop that runs a
//! `zerotouch-device` session against them with the runtime's clock.

use core::future::Future;
use std::sync::Arc;
use std::time::Duration;

use hyper::Method;
use rand_core::CryptoRng;
use rustls::ClientConfig;
use tracing::{debug, info, warn};
use zerotouch_core::flow1::ReportedNetwork;
use zerotouch_core::{Envelope, Instant, MessageTag, Passphrase, Signer};
use zerotouch_device::{DeviceSession, DeviceState, Event, JoinResult, Path, Trigger};

use super::channel::{HttpsChannel, ServerEndpoint};
use crate::{CBOR, HttpError, REVOCATION_PATH, SETUP_PATH};

/// Carries one device message to the server and brings back its answer.
pub trait Exchange: Send {
    /// Sends `message` over `path` (the setup network or the home network) and returns the
    /// answer's bytes: a protocol message, possibly an error message.
    fn exchange(
        &mut self,
        path: Path,
        message: Vec<u8>,
    ) -> impl Future<Output = Result<Vec<u8>, HttpError>> + Send;
}

/// The device's Wi-Fi radio, as the firmware drives it.
pub trait Radio: Send {
    /// Scans and returns the networks in range.
    fn scan(&mut self) -> impl Future<Output = Vec<ReportedNetwork>> + Send;
    /// Joins a network (security bits 1 = WPA2-Personal, 2 = WPA3-Personal).
    fn join(
        &mut self,
        ssid: &[u8],
        security: u8,
        passphrase: &Passphrase,
    ) -> impl Future<Output = JoinResult> + Send;
    /// Leaves the current network (a revoked key's credential).
    fn leave(&mut self) -> impl Future<Output = ()> + Send;
}

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

/// What a driven session did.
#[derive(Debug, Clone, Default)]
pub struct DeviceRun {
    /// The network the device joined, if it did.
    pub joined: Option<Vec<u8>>,
    /// Whether a verified verdict said the trusted server key is good.
    pub revocation_checked: bool,
    /// Every event, in order (passphrases are redacted from their `Debug`).
    pub events: Vec<Event>,
    /// Messages exchanged with the server.
    pub exchanges: u32,
    /// Exchanges that failed at the transport (the session retransmitted).
    pub transport_failures: u32,
}

/// Runs `session` from `trigger` until it completes, gives up, or `bound` passes: radio
/// events go to `radio`, messages through `exchange`, timers on the runtime's clock.
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
    drive_observed(session, trigger, exchange, radio, rng, bound, &mut |_| {}).await
}

/// [`drive`], calling `observe` with each event as it happens (a command line shows the
/// steps live; `DeviceRun::events` has them only at the end).
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
    let start = tokio::time::Instant::now();
    let deadline = start + bound;
    let now = || Instant(u64::try_from(start.elapsed().as_millis()).unwrap_or(u64::MAX));
    let mut run = DeviceRun::default();
    session.start(now(), trigger);
    loop {
        if tokio::time::Instant::now() >= deadline {
            return Err(HttpError::RunTimeout);
        }
        let mut complete = false;
        while let Some(event) = session.poll_event() {
            info!(?event, "device event");
            observe(&event);
            match &event {
                Event::ScanRequested => {
                    let networks = radio.scan().await;
                    session.scan_complete(now(), networks, rng);
                }
                Event::Join {
                    ssid,
                    security,
                    passphrase,
                } => {
                    let result = radio.join(ssid, *security, passphrase).await;
                    session.join_result(now(), result, rng);
                }
                Event::LeaveNetwork => radio.leave().await,
                Event::Joined { ssid } => run.joined = Some(ssid.clone()),
                Event::Complete { revocation_checked } => {
                    run.revocation_checked = *revocation_checked;
                    complete = true;
                }
                Event::GaveUp { reason } => return Err(HttpError::GaveUp(reason.clone())),
                _ => {}
            }
            run.events.push(event);
        }
        if complete {
            return Ok(run);
        }
        if let Some(transmit) = session.poll_transmit() {
            run.exchanges += 1;
            match exchange.exchange(transmit.path, transmit.bytes).await {
                Ok(answer) => session.handle_incoming(now(), transmit.path, &answer, rng),
                Err(e) => {
                    // The session's timer retransmits the identical bytes.
                    run.transport_failures += 1;
                    warn!(error = %e, path = ?transmit.path, "exchange failed");
                }
            }
            continue;
        }
        match session.poll_timeout() {
            Some(at) => {
                let wake = start + Duration::from_millis(at.0);
                tokio::time::sleep_until(wake.min(deadline)).await;
                if tokio::time::Instant::now() >= wake {
                    session.handle_timeout(now(), rng);
                }
            }
            None => {
                debug!("session idle without completing");
                return Ok(run);
            }
        }
    }
}
