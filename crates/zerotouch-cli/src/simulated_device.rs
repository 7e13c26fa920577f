//! A simulated device: the real `zerotouch-device` session with a software key, a radio
//! that sees the networks it is told about, and a real transport: the HTTPS client with
//! mutual TLS ([`run_device`]) or any other [`Exchange`] ([`run_over`], e.g. the DNS client).
//! `simulate` and `demo` run it; with an [`Output`] it prints each protocol step as it
//! happens.

use std::sync::Arc;
use std::time::Duration;

use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng as _;
use zerotouch_core::flow1::{DeviceIdentityRef, ReportedNetwork};
use zerotouch_core::{
    CipherSuite, Envelope, KeyId, Passphrase, Pin, PinnedKeys, SoftwareSigner, Transport,
};
use zerotouch_device::{
    DeviceConfig, DeviceSession, Event, JoinResult, MemoryDeviceState, Path, RetryPolicy, Trigger,
};
use zerotouch_device_tokio::{DeviceRun, Exchange, Radio, drive_observed};
use zerotouch_http::{DirectHttps, ServerEndpoint, ServerTrust, device_tls_config};

use crate::{CliError, Output};

/// A device as the factory made it.
#[derive(Debug, Clone)]
pub struct SimulatedDevice {
    /// Its serial number.
    pub serial: u64,
    /// Its type.
    pub device_type: u32,
    /// Its identity key id.
    pub key_id: KeyId,
    /// Its certificate (DER).
    pub certificate_der: Vec<u8>,
    /// Its identity key.
    pub signer: Arc<SoftwareSigner>,
    /// The PIN in its box, if any.
    pub pin: Option<Pin>,
}

/// A network in range of a simulated device.
#[derive(Debug, Clone)]
pub struct NetworkInRange {
    /// Its SSID.
    pub ssid: Vec<u8>,
    /// Its passphrase, when the simulation knows it: a join with another one fails. Without
    /// it any passphrase is taken (`simulate` has no access point to check against).
    pub passphrase: Option<Passphrase>,
}

/// The radio: the networks in range. Passphrases are never printed.
struct SimulatedRadio<'a> {
    networks: Vec<NetworkInRange>,
    out: Option<&'a Output>,
}

impl Radio for SimulatedRadio<'_> {
    async fn scan(&mut self) -> Vec<ReportedNetwork> {
        if let Some(out) = self.out {
            out.step(
                "device",
                &format!("scans: {} network(s) in range", self.networks.len()),
            );
        }
        self.networks
            .iter()
            .enumerate()
            .map(|(i, n)| ReportedNetwork {
                ssid: n.ssid.clone(),
                signal_loss_db: 45 + u8::try_from(i.min(40)).unwrap_or(40),
                band: 1,
                channel: 6,
                security: 3,
            })
            .collect()
    }

    async fn join(&mut self, ssid: &[u8], _security: u8, passphrase: &Passphrase) -> JoinResult {
        use subtle::ConstantTimeEq as _;
        let result = match self.networks.iter().find(|n| n.ssid == ssid) {
            None => JoinResult::Failed(zerotouch_device::JoinFailure::NetworkGone),
            Some(NetworkInRange {
                passphrase: Some(expected),
                ..
            }) if !bool::from(expected.expose_secret().ct_eq(passphrase.expose_secret())) => {
                JoinResult::Failed(zerotouch_device::JoinFailure::WrongPassphrase)
            }
            Some(_) => JoinResult::Joined,
        };
        if let Some(out) = self.out {
            out.step(
                "device",
                &format!(
                    "joins {:?} with the delivered passphrase: {}",
                    String::from_utf8_lossy(ssid),
                    match result {
                        JoinResult::Joined => "associated, address leased",
                        JoinResult::Failed(zerotouch_device::JoinFailure::WrongPassphrase) =>
                            "the access point refused the passphrase",
                        JoinResult::Failed(_) => "not in range",
                    }
                ),
            );
        }
        result
    }

    async fn leave(&mut self) {}
}

/// An exchange that prints each message's tag and size both ways.
struct ObservedExchange<'a, 'x, X> {
    inner: &'x mut X,
    out: Option<&'a Output>,
}

fn tag_of(bytes: &[u8]) -> String {
    Envelope::decode(bytes)
        .map(|e| format!("{:?}", e.header.tag))
        .unwrap_or_else(|_| "unreadable message".to_string())
}

impl<X: Exchange + Sync> Exchange for ObservedExchange<'_, '_, X> {
    type Error = X::Error;

    async fn exchange(&mut self, path: Path, message: Vec<u8>) -> Result<Vec<u8>, X::Error> {
        let net = match path {
            Path::Setup => "setup network",
            Path::Home => "home network",
        };
        if let Some(out) = self.out {
            out.step(
                "device",
                &format!("-> {} ({} B) over {net}", tag_of(&message), message.len()),
            );
        }
        let answer = self.inner.exchange(path, message).await;
        if let Some(out) = self.out {
            match &answer {
                Ok(a) => out.step("server", &format!("<- {} ({} B)", tag_of(a), a.len())),
                Err(e) => out.step("server", &format!("<- failed: {e}")),
            }
        }
        answer
    }
}

fn describe(event: &Event) -> Option<String> {
    Some(match event {
        Event::ServerAuthenticated { key_id } => format!(
            "server authenticated by pinned key {}",
            hex::encode(key_id.0.get(..8).unwrap_or_default())
        ),
        Event::Join { ssid, .. } => format!(
            "received the credential for {:?} (sealed to this session)",
            String::from_utf8_lossy(ssid)
        ),
        Event::Joined { ssid } => format!("joined {:?}", String::from_utf8_lossy(ssid)),
        Event::OutcomeAcknowledged => "outcome acknowledged by the server".into(),
        Event::KeyRevoked { key_id, .. } => {
            format!("server key {} is revoked", hex::encode(key_id.0))
        }
        Event::MessageRefused { reason } => format!("refused a message: {reason:?}"),
        Event::ServerHint { code, .. } => format!("server said {code:?}"),
        Event::SessionFailed { reason } => format!("session failed: {reason:?}"),
        Event::GaveUp { reason } => format!("gave up: {reason:?}"),
        Event::Complete { revocation_checked } => format!(
            "complete (server key {})",
            if *revocation_checked {
                "checked: not revoked"
            } else {
                "not checked"
            }
        ),
        Event::ScanRequested | Event::LeaveNetwork | Event::StateNotSaved => return None,
    })
}

/// How a device reaches the server: the exchange that carries its messages, the transport
/// its transcript names (the server checks it against the one it received on), and how
/// its hello identifies it.
pub struct Link<'x, X> {
    /// Carries each message and brings back the answer.
    pub exchange: &'x mut X,
    /// The transport on both networks (setup and home).
    pub transport: Transport,
    /// Its certificate (a TLS client proves the same key) or only its public key (a
    /// transport with no TLS, where every byte costs: DNS).
    pub identity: DeviceIdentityRef,
}

/// Runs `device` through flow 1 against `endpoint`, trusting the server's CA `server_ca`
/// (without checking dates: a device has no clock before it joins) and the keys in
/// `pinned`. With `out`, each step is printed as it happens.
pub async fn run_device(
    device: &SimulatedDevice,
    pinned: PinnedKeys,
    endpoint: &ServerEndpoint,
    server_ca: &[u8],
    networks: &[NetworkInRange],
    out: Option<&Output>,
    bound: Duration,
) -> Result<DeviceRun, CliError> {
    let tls = device_tls_config(
        device.certificate_der.clone(),
        Arc::clone(&device.signer),
        ServerTrust::Ca {
            ca_der: server_ca.to_vec(),
            check_dates: false,
        },
    )?;
    let mut https = DirectHttps::new(endpoint.clone(), endpoint.clone(), tls);
    let link = Link {
        exchange: &mut https,
        transport: Transport::Https,
        identity: DeviceIdentityRef::Certificate(device.certificate_der.clone()),
    };
    run_over(device, pinned, link, networks, out, bound).await
}

/// Runs `device` through flow 1 over `link`, trusting the keys in `pinned`, with
/// `networks` in range of its radio; gives up after `bound`. With `out`, each step is
/// printed as it happens.
pub async fn run_over<X: Exchange + Sync>(
    device: &SimulatedDevice,
    pinned: PinnedKeys,
    link: Link<'_, X>,
    networks: &[NetworkInRange],
    out: Option<&Output>,
    bound: Duration,
) -> Result<DeviceRun, CliError> {
    let name = format!("{}-{}", device.device_type, device.serial);
    let fail = |reason: String| CliError::DeviceFailed {
        device: name.clone(),
        reason,
    };
    let mut exchange = ObservedExchange {
        inner: link.exchange,
        out,
    };
    let mut session = DeviceSession::new(
        DeviceConfig {
            transport: link.transport,
            home_transport: link.transport,
            identity: link.identity,
            pin: device.pin.clone(),
            radio_bands: 1,
            radio_security: 3,
            suites: CipherSuite::SUPPORTED.to_vec(),
            retry: RetryPolicy::default(),
        },
        pinned,
        Arc::clone(&device.signer),
        MemoryDeviceState::new(),
    )
    .map_err(|e| fail(format!("{e:?}")))?;
    let mut radio = SimulatedRadio {
        networks: networks.to_vec(),
        out,
    };
    let mut rng = ChaCha20Rng::from_rng(&mut crate::system_rng()?);
    let mut observe = |event: &Event| {
        if let (Some(out), Some(text)) = (out, describe(event)) {
            out.step("device", &text);
        }
    };
    let run = drive_observed(
        &mut session,
        Trigger::FirstBoot,
        &mut exchange,
        &mut radio,
        &mut rng,
        bound,
        &mut observe,
    )
    .await
    .map_err(|e| fail(e.to_string()))?;
    if run.joined.is_none() {
        return Err(fail("finished without joining a network".into()));
    }
    Ok(run)
}
