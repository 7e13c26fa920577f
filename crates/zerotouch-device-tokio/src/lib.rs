//! # zerotouch-device-tokio
//!
//! Runs a `zerotouch-device` flow-1 session on tokio: the session's events go to a [`Radio`]
//! the firmware (or a test) implements, its messages through an [`Exchange`] a transport
//! adapter implements (HTTPS in `zerotouch-http`, DNS in `zerotouch-dns`), and its one timer
//! on the runtime's clock. The loop is the same for every transport, so it lives here once.
//!
//! ```
//! use zerotouch_core::flow1::ReportedNetwork;
//! use zerotouch_core::Passphrase;
//! use zerotouch_device::{JoinResult, Path};
//! use zerotouch_device_tokio::{Exchange, Radio};
//!
//! /// A transport that has no server: every exchange fails (the session retransmits).
//! struct Unplugged;
//! impl Exchange for Unplugged {
//!     type Error = &'static str;
//!     async fn exchange(&mut self, _: Path, _: Vec<u8>) -> Result<Vec<u8>, Self::Error> {
//!         Err("no server")
//!     }
//! }
//! /// A radio that sees one network and joins it.
//! struct OneNetwork;
//! impl Radio for OneNetwork {
//!     async fn scan(&mut self) -> Vec<ReportedNetwork> { Vec::new() }
//!     async fn join(&mut self, _: &[u8], _: u8, _: &Passphrase) -> JoinResult { JoinResult::Joined }
//!     async fn leave(&mut self) {}
//! }
//! // `drive(&mut session, Trigger::FirstBoot, &mut Unplugged, &mut OneNetwork, &mut rng, bound)`
//! // would now run a session until it completes, gives up or `bound` passes.
//! ```
#![forbid(unsafe_code)]

use core::fmt::Display;
use core::future::Future;
use std::time::Duration;

use rand_core::CryptoRng;
use tracing::{debug, info, warn};
use zerotouch_core::flow1::ReportedNetwork;
use zerotouch_core::{Instant, Passphrase, Signer};
use zerotouch_device::{DeviceSession, DeviceState, Event, Failure, JoinResult, Path, Trigger};

/// Carries one device message to the server and brings back its answer.
pub trait Exchange: Send {
    /// Why an exchange failed (logged; the session retransmits on its timer).
    type Error: Display + Send;

    /// Sends `message` over `path` (the setup network or the home network) and returns the
    /// answer's bytes: a protocol message, possibly an error message.
    fn exchange(
        &mut self,
        path: Path,
        message: Vec<u8>,
    ) -> impl Future<Output = Result<Vec<u8>, Self::Error>> + Send;
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

/// Why a run ended without completing.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DriveError {
    /// The device gave up after its session budget.
    #[error("device gave up: {0:?}")]
    GaveUp(Failure),
    /// The device did not finish within the run's time bound.
    #[error("device did not finish within the run's time bound")]
    RunTimeout,
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
) -> Result<DeviceRun, DriveError>
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
) -> Result<DeviceRun, DriveError>
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
            return Err(DriveError::RunTimeout);
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
                Event::GaveUp { reason } => return Err(DriveError::GaveUp(reason.clone())),
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
