//! With the `device` feature, [`crate::zt_check_run`] also drives `zerotouch-device` through a
//! whole setup, as a firmware would: a scan with 30 visible networks, hello, a forged proof
//! ignored, the genuine proof, the credential request with the PIN and the 30 networks sealed
//! to the server, the account's two visible networks' credentials opened and the strongest
//! joined, the outcome report and the revocation check over the home network. The server's
//! side is built here from the core's primitives.
//!
//! Two measurements are taken here:
//! - the session's peak heap: from the session's creation to its drop, the most bytes live at
//!   once that are not the check's server side (which allocates in its own region of the arena,
//!   see [`heap::server_side`]). It includes what firmware would hold: the configuration and
//!   pinned keys, the scan's results, each received message in a receive buffer (see
//!   [`deliver`]) and each message to send until it is sent;
//! - the device crate's code: the session's methods are called only through [`entry`], whose
//!   functions are never inlined, so the script can attribute what LTO inlines into them to
//!   `zerotouch-device` by symbol name.

use alloc::vec;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicUsize, Ordering::Relaxed};

use zerotouch_core::flow1::binding::{
    CREDENTIALS_INFO, REPORT_INFO, outcome_ack_transcript, outcome_report_transcript,
    revocation_transcript, seal_aad,
};
use zerotouch_core::flow1::{
    CredentialEntry, CredentialRequest, CredentialResponse, DeviceIdentityRef, DeviceReport,
    EntryStatus, OutcomeAck, OutcomeReport, ReportedNetwork, RevocationQuery, RevocationStatus,
    RevocationVerdict, ServerProof, SetupTranscript, header,
};
use zerotouch_core::{
    Body, CipherSuite, Envelope, Instant, KeyRole, Message, MessageTag, Nonce, Pin, PinnedKey,
    PinnedKeys, ProtocolVersion, RustCryptoProvider, SessionKeyPair, SignatureAlgorithm, Signer,
    SigningKey, SoftwareSigner, Transport, seal_to, sign_message,
};
use zerotouch_device::{
    DeviceConfig, Event, JoinResult, MemoryDeviceState, Path, RetryPolicy, Trigger,
};

use crate::heap;
use crate::run::{Check, CounterRng, Step, ensure};

const VERDICT_SECRET: [u8; 32] = [0x44; 32];
const PIN: &str = "482915";
const SUITE: CipherSuite = CipherSuite::P256_SHA256_CHACHA20POLY1305;

/// WPA2-Personal, WPA3-Personal, and both (transition mode), as a scan reports them.
const WPA2: u8 = 1;
const WPA3: u8 = 2;
const WPA2_WPA3: u8 = 3;
/// 2.4 GHz and 5 GHz.
const GHZ_2_4: u8 = 1;
const GHZ_5: u8 = 2;

/// What the device's scan sees: 30 secured networks (SSID, signal loss in dB, band, channel,
/// security), as in a block of flats. SSIDs of 4 to 32 bytes (14.8 on average; five of 29 to
/// 32 bytes, two of exactly 32), both bands, WPA2, WPA3 and transition mode. Open networks are
/// left out: the session drops them before the report, and the figure is for 30 reported.
/// The account's networks `Miller-Home` (on both bands) and `Miller-Home-IoT` are among them.
const SCAN: [(&[u8], u8, u8, u16, u8); 30] = [
    (b"Miller-Home", 44, GHZ_5, 36, WPA2_WPA3),
    (b"Miller-Home", 52, GHZ_2_4, 6, WPA2_WPA3),
    (b"Miller-Home-IoT", 55, GHZ_2_4, 6, WPA2),
    (b"FRITZ!Box 7590 XY", 61, GHZ_5, 44, WPA2),
    (b"FRITZ!Box 7590 XY", 58, GHZ_2_4, 1, WPA2),
    (b"Vodafone-4A2C", 67, GHZ_2_4, 11, WPA2),
    (b"TP-Link_8F3A", 70, GHZ_2_4, 6, WPA2),
    (b"TP-Link_8F3A_5G", 74, GHZ_5, 149, WPA2),
    (b"NETGEAR42", 72, GHZ_2_4, 3, WPA2),
    (b"DIRECT-7B-HP OfficeJet Pro 9015e", 63, GHZ_2_4, 6, WPA2),
    (b"eero", 69, GHZ_5, 157, WPA3),
    (b"eero", 66, GHZ_2_4, 1, WPA2_WPA3),
    (b"Linksys01234", 78, GHZ_2_4, 11, WPA2),
    (b"The Promised LAN - Guest Network", 80, GHZ_2_4, 1, WPA2),
    (b"BT-K7PQ2X", 75, GHZ_2_4, 6, WPA2),
    (b"SKYB2F1C", 81, GHZ_2_4, 11, WPA2),
    (b"Pretty Fly for a WiFi", 77, GHZ_5, 40, WPA2_WPA3),
    (b"HUAWEI-B535-9E1D", 83, GHZ_2_4, 9, WPA2),
    (b"Bbox-5C2D9A1E", 85, GHZ_5, 100, WPA2),
    (b"Livebox-6F40", 84, GHZ_2_4, 1, WPA2),
    (b"Apt 4B", 71, GHZ_2_4, 11, WPA3),
    (b"Apt 4B 5GHz", 73, GHZ_5, 48, WPA3),
    (b"ASUS_Mesh_Node_Upstairs_Hallway", 79, GHZ_5, 52, WPA2_WPA3),
    (b"Telekom-7A1B99", 86, GHZ_2_4, 6, WPA2),
    (b"Ring-Setup-3d", 88, GHZ_2_4, 1, WPA2),
    (b"Dad's iPhone", 62, GHZ_2_4, 6, WPA2),
    (b"Samsung Galaxy S23 Ultra 8F2A", 76, GHZ_5, 36, WPA3),
    (b"UPC1234567", 87, GHZ_2_4, 13, WPA2),
    (b"Office-Printer-Floor2-EPSON-MFP", 90, GHZ_2_4, 6, WPA2),
    (b"Guest", 82, GHZ_5, 64, WPA2_WPA3),
];

/// The account's networks on the server (SSID, security to join with, passphrase). The first
/// two are in the scan; the third is not, so the server leaves it out.
const ACCOUNT: [(&[u8], u8, &[u8]); 3] = [
    (b"Miller-Home", WPA3, b"correct horse battery staple"),
    (b"Miller-Home-IoT", WPA2, b"iot only, 2.4 GHz"),
    (b"Miller-Cabin", WPA2, b"lake house 1987"),
];

/// Length of the credential request envelope the session sent in the last run.
static REQUEST_LEN: AtomicUsize = AtomicUsize::new(0);

/// Length of the credential request (envelope, signature included) with the 30 networks.
pub fn request_len() -> usize {
    REQUEST_LEN.load(Relaxed)
}

type Session = zerotouch_device::DeviceSession<SoftwareSigner, MemoryDeviceState>;

/// The session's API as firmware calls it, one function per method, never inlined: whatever
/// LTO inlines into these belongs to the session, and the script counts them as
/// `zerotouch-device`'s code (`nostd_check::device::entry::`). Without them the methods
/// called once would be inlined into this check's own code.
mod entry {
    use zerotouch_core::flow1::ReportedNetwork;
    use zerotouch_core::{Instant, PinnedKeys, SoftwareSigner};
    use zerotouch_device::{
        DeviceConfig, DeviceError, DeviceSession, Event, JoinResult, MemoryDeviceState, Path,
        Transmit, Trigger,
    };

    use super::Session;
    use crate::run::CounterRng;

    #[inline(never)]
    pub fn new(
        config: DeviceConfig,
        pinned: PinnedKeys,
        signer: SoftwareSigner,
        state: MemoryDeviceState,
    ) -> Result<Session, DeviceError> {
        DeviceSession::new(config, pinned, signer, state)
    }

    #[inline(never)]
    pub fn start(s: &mut Session, now: Instant, trigger: Trigger) {
        s.start(now, trigger);
    }

    #[inline(never)]
    pub fn scan_complete(
        s: &mut Session,
        now: Instant,
        networks: alloc::vec::Vec<ReportedNetwork>,
        rng: &mut CounterRng,
    ) {
        s.scan_complete(now, networks, rng);
    }

    #[inline(never)]
    pub fn handle_incoming(
        s: &mut Session,
        now: Instant,
        path: Path,
        bytes: &[u8],
        rng: &mut CounterRng,
    ) {
        s.handle_incoming(now, path, bytes, rng);
    }

    #[inline(never)]
    pub fn join_result(s: &mut Session, now: Instant, result: JoinResult, rng: &mut CounterRng) {
        s.join_result(now, result, rng);
    }

    #[inline(never)]
    pub fn poll_transmit(s: &mut Session) -> Option<Transmit> {
        s.poll_transmit()
    }

    #[inline(never)]
    pub fn poll_event(s: &mut Session) -> Option<Event> {
        s.poll_event()
    }
}

/// The one transmit the session must have queued, on `path`.
fn sent(session: &mut Session, path: Path) -> Result<Vec<u8>, Step> {
    let t = entry::poll_transmit(session).ok_or(Step::DeviceFlow)?;
    ensure(
        t.path == path && entry::poll_transmit(session).is_none(),
        Step::DeviceFlow,
    )?;
    Ok(t.bytes)
}

/// Drains the events; true if one matched.
fn saw(session: &mut Session, want: impl Fn(&Event) -> bool) -> bool {
    let mut found = false;
    while let Some(e) = entry::poll_event(session) {
        found |= want(&e);
    }
    found
}

/// Hands the server's bytes to the session as firmware would: copied into a receive buffer
/// on the device's side, which is freed once the session has handled them.
fn deliver(session: &mut Session, now: Instant, path: Path, wire: &[u8], rng: &mut CounterRng) {
    let received = wire.to_vec();
    entry::handle_incoming(session, now, path, &received, rng);
}

/// The envelope's header session and plain or verified payload.
fn open_envelope(bytes: &[u8]) -> Result<Envelope, Step> {
    Envelope::decode(bytes).map_err(|_| Step::DeviceFlow)
}

/// The scan's results, as the firmware's Wi-Fi driver hands them over.
fn scan_results() -> Vec<ReportedNetwork> {
    SCAN.iter()
        .map(
            |&(ssid, signal_loss_db, band, channel, security)| ReportedNetwork {
                ssid: ssid.to_vec(),
                signal_loss_db,
                band,
                channel,
                security,
            },
        )
        .collect()
}

pub fn run(
    provider: &RustCryptoProvider,
    server: &SoftwareSigner,
    device: &SoftwareSigner,
) -> Check {
    let revocation = heap::server_side(|| {
        let verdict_secret = zeroize::Zeroizing::new(VERDICT_SECRET);
        SigningKey::from_secret_bytes(SignatureAlgorithm::EcdsaP256Sha256, &verdict_secret)
            .map(SoftwareSigner::new)
            .map_err(|_| Step::DeviceSession)
    })?;
    heap::begin_session();
    let result = session(provider, server, device, &revocation);
    heap::end_session();
    result
}

/// The whole setup; the session is created and dropped inside.
fn session(
    provider: &RustCryptoProvider,
    server: &SoftwareSigner,
    device: &SoftwareSigner,
    revocation: &SoftwareSigner,
) -> Check {
    let mut rng = CounterRng(1_000);
    // Firmware: the keys burnt in, the configuration, the state store.
    let pinned = PinnedKeys::new(vec![
        PinnedKey::new(KeyRole::SetupSigning, server.public_key().clone()),
        PinnedKey::new(KeyRole::RevocationVerdict, revocation.public_key().clone()),
    ]);
    let config = DeviceConfig {
        transport: Transport::Dns,
        home_transport: Transport::Https,
        identity: DeviceIdentityRef::PublicKey(device.public_key().to_spki_der()),
        pin: Some(Pin::new(PIN).map_err(|_| Step::DeviceSession)?),
        radio_bands: GHZ_2_4 | GHZ_5,
        radio_security: WPA2 | WPA3,
        suites: vec![SUITE],
        retry: RetryPolicy::default(),
    };
    let mut session = entry::new(config, pinned, device.clone(), MemoryDeviceState::new())
        .map_err(|_| Step::DeviceSession)?;

    entry::start(&mut session, Instant(0), Trigger::FirstBoot);
    ensure(
        saw(&mut session, |e| matches!(e, Event::ScanRequested)),
        Step::DeviceFlow,
    )?;
    entry::scan_complete(&mut session, Instant(1), scan_results(), &mut rng);

    // Server: the hello, then its proof over t1.
    let hello = sent(&mut session, Path::Setup)?;
    let (sid, mut t, sealing, proof, wire, forged) = heap::server_side(|| {
        let hello = open_envelope(&hello)?;
        let sid = hello.header.session_id;
        let Body::Plain(hello_body) = &hello.body else {
            return Err(Step::DeviceFlow);
        };
        let t = SetupTranscript::after_hello(provider, Transport::Dns, &sid, hello_body);
        let mut rng = CounterRng(2_000);
        let sealing = SessionKeyPair::generate(SUITE, &mut rng).map_err(|_| Step::DeviceFlow)?;
        let proof = ServerProof {
            version: ProtocolVersion::V1,
            suite: SUITE,
            server_nonce: Nonce([0x5e; 16]),
            sealing_key: sealing.public_key().to_vec(),
            pin_required: true,
            expires_in_s: 120,
        }
        .encode_body();
        let wire = sign_message(
            header(MessageTag::ServerProof, sid),
            KeyRole::SetupSigning,
            &t.hash(),
            proof.clone(),
            server,
            provider,
        )
        .map_err(|_| Step::DeviceFlow)?
        .encode();
        // A forged copy (one signature bit flipped).
        let mut forged = wire.clone();
        if let Some(last) = forged.last_mut() {
            *last ^= 1;
        }
        Ok((sid, t, sealing, proof, wire, forged))
    })?;
    drop(hello);

    // The forged copy is ignored: nothing goes out.
    deliver(&mut session, Instant(2), Path::Setup, &forged, &mut rng);
    ensure(
        saw(&mut session, |e| matches!(e, Event::MessageRefused { .. }))
            && entry::poll_transmit(&mut session).is_none(),
        Step::DeviceForgedAccepted,
    )?;
    deliver(&mut session, Instant(3), Path::Setup, &wire, &mut rng);
    ensure(
        saw(&mut session, |e| {
            matches!(e, Event::ServerAuthenticated { .. })
        }),
        Step::DeviceFlow,
    )?;
    heap::server_side(|| t.absorb_proof(provider, &proof));

    // Server: the request, signed by the device over t2, its report (the PIN and the 30
    // networks) sealed to the server; then the credentials of the account's networks the
    // device sees, sealed to the session key with t3, signed over t3.
    let request = sent(&mut session, Path::Setup)?;
    REQUEST_LEN.store(request.len(), Relaxed);
    let wire = heap::server_side(|| {
        let request = open_envelope(&request)?;
        let Body::Signed(body) = &request.body else {
            return Err(Step::DeviceFlow);
        };
        let t2 = t.hash();
        let payload = body
            .verify(
                &request.header,
                KeyRole::DeviceIdentity,
                &t2,
                device.public_key(),
                provider,
            )
            .map_err(|_| Step::DeviceFlow)?
            .to_vec();
        let request = CredentialRequest::decode_body(&payload).map_err(|_| Step::DeviceFlow)?;
        let report = sealing
            .open(
                &request.report.encapsulated_key,
                REPORT_INFO,
                &seal_aad(&t2),
                &[&request.report.ciphertext],
            )
            .map_err(|_| Step::DeviceFlow)?;
        let report = DeviceReport::decode(report.first().ok_or(Step::DeviceFlow)?)
            .map_err(|_| Step::DeviceFlow)?;
        // All 30 networks, strongest first.
        ensure(
            report.pin.as_ref().map(Pin::expose_secret) == Some(PIN)
                && report.networks.len() == SCAN.len()
                && report
                    .networks
                    .windows(2)
                    .all(|w| matches!(w, [a, b] if a.signal_loss_db <= b.signal_loss_db))
                && report.radio_bands == GHZ_2_4 | GHZ_5,
            Step::DeviceFlow,
        )?;
        t.absorb_request(provider, &payload);
        let t3 = t.hash();

        let visible: Vec<_> = ACCOUNT
            .iter()
            .filter(|(ssid, ..)| report.networks.iter().any(|n| n.ssid == *ssid))
            .collect();
        ensure(visible.len() == 2, Step::DeviceFlow)?;
        let passphrases: Vec<&[u8]> = visible.iter().map(|(_, _, p)| *p).collect();
        let mut rng = CounterRng(3_000);
        let sealed = seal_to(
            SUITE,
            &request.session_key,
            CREDENTIALS_INFO,
            &seal_aad(&t3),
            &passphrases,
            &mut rng,
        )
        .map_err(|_| Step::DeviceFlow)?;
        let response = CredentialResponse {
            encapsulated_key: sealed.encapsulated_key,
            entries: visible
                .iter()
                .zip(sealed.ciphertexts)
                .map(|((ssid, security, _), ciphertext)| CredentialEntry {
                    ssid: ssid.to_vec(),
                    security: *security,
                    status: EntryStatus::Sealed,
                    ciphertext,
                })
                .collect(),
        };
        Ok(sign_message(
            header(MessageTag::CredentialResponse, sid),
            KeyRole::SetupSigning,
            &t3,
            response.encode_body(),
            server,
            provider,
        )
        .map_err(|_| Step::DeviceFlow)?
        .encode())
    })?;
    drop(request);
    deliver(&mut session, Instant(4), Path::Setup, &wire, &mut rng);
    // The strongest of the two first (Miller-Home, 44 dB on 5 GHz), with WPA3.
    let (home, home_security, home_passphrase) = ACCOUNT[0];
    ensure(
        saw(
            &mut session,
            |e| matches!(e, Event::Join { ssid, security, passphrase } if ssid == home && *security == home_security && passphrase.expose_secret() == home_passphrase),
        ),
        Step::DeviceFlow,
    )?;
    entry::join_result(&mut session, Instant(5), JoinResult::Joined, &mut rng);
    ensure(
        saw(&mut session, |e| matches!(e, Event::Joined { .. })),
        Step::DeviceFlow,
    )?;

    // Server, over the home network: the outcome report and its acknowledgement.
    let outcome = sent(&mut session, Path::Home)?;
    let wire = heap::server_side(|| {
        let outcome = open_envelope(&outcome)?;
        let osid = outcome.header.session_id;
        let Body::Signed(body) = &outcome.body else {
            return Err(Step::DeviceFlow);
        };
        let th = outcome_report_transcript(provider, Transport::Https, &osid);
        let payload = body
            .verify(
                &outcome.header,
                KeyRole::DeviceIdentity,
                &th,
                device.public_key(),
                provider,
            )
            .map_err(|_| Step::DeviceFlow)?
            .to_vec();
        let report = OutcomeReport::decode_body(&payload).map_err(|_| Step::DeviceFlow)?;
        ensure(
            report.setup_session == sid && report.ssid == home,
            Step::DeviceFlow,
        )?;
        let ack = OutcomeAck {
            device_nonce: report.device_nonce,
        }
        .encode_body();
        let th = outcome_ack_transcript(provider, Transport::Https, &osid, &payload);
        Ok(sign_message(
            header(MessageTag::OutcomeAck, osid),
            KeyRole::SetupSigning,
            &th,
            ack,
            server,
            provider,
        )
        .map_err(|_| Step::DeviceFlow)?
        .encode())
    })?;
    drop(outcome);
    deliver(&mut session, Instant(6), Path::Home, &wire, &mut rng);
    ensure(
        saw(&mut session, |e| matches!(e, Event::OutcomeAcknowledged)),
        Step::DeviceFlow,
    )?;

    // Revocation service: the query and a "good" verdict.
    let query = sent(&mut session, Path::Home)?;
    let wire = heap::server_side(|| {
        let query = open_envelope(&query)?;
        let rsid = query.header.session_id;
        let Body::Plain(query_body) = &query.body else {
            return Err(Step::DeviceFlow);
        };
        let q = RevocationQuery::decode_body(query_body).map_err(|_| Step::DeviceFlow)?;
        ensure(q.key_id == server.key_id(), Step::DeviceFlow)?;
        let verdict = RevocationVerdict {
            key_id: q.key_id,
            device_nonce: q.device_nonce,
            status: RevocationStatus::Good,
            replacement: None,
        }
        .encode_body();
        let th = revocation_transcript(provider, Transport::Https, &rsid, query_body);
        Ok(sign_message(
            header(MessageTag::RevocationVerdict, rsid),
            KeyRole::RevocationVerdict,
            &th,
            verdict,
            revocation,
            provider,
        )
        .map_err(|_| Step::DeviceFlow)?
        .encode())
    })?;
    drop(query);
    deliver(&mut session, Instant(7), Path::Home, &wire, &mut rng);
    ensure(
        saw(&mut session, |e| {
            matches!(
                e,
                Event::Complete {
                    revocation_checked: true
                }
            )
        }) && session.is_idle()
            && session
                .state()
                .stored()
                .is_some_and(|s| s.in_progress.is_none()),
        Step::DeviceFlow,
    )
}
