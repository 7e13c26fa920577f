//! With the `device` feature, [`crate::zt_check_run`] also drives `zerotouch-device` through a
//! whole setup, as a firmware would: scan, hello, a forged proof ignored, the genuine proof,
//! the credential request with the PIN and report sealed to the server, the sealed credential
//! opened and joined, the outcome report and the revocation check over the home network. The
//! server's side is built here from the core's primitives.

use alloc::vec;
use alloc::vec::Vec;

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
    DeviceConfig, DeviceSession, Event, JoinResult, MemoryDeviceState, Path, RetryPolicy, Trigger,
};

use crate::run::{Check, CounterRng, Step, ensure};

const VERDICT_SECRET: [u8; 32] = [0x44; 32];
const PIN: &str = "482915";
const PASSPHRASE: &[u8] = b"correct horse battery staple";
const SUITE: CipherSuite = CipherSuite::P256_SHA256_CHACHA20POLY1305;

type Session = DeviceSession<SoftwareSigner, MemoryDeviceState>;

/// The one transmit the session must have queued, on `path`.
fn sent(session: &mut Session, path: Path) -> Result<Vec<u8>, Step> {
    let t = session.poll_transmit().ok_or(Step::DeviceFlow)?;
    ensure(
        t.path == path && session.poll_transmit().is_none(),
        Step::DeviceFlow,
    )?;
    Ok(t.bytes)
}

/// Drains the events; true if one matched.
fn saw(session: &mut Session, want: impl Fn(&Event) -> bool) -> bool {
    let mut found = false;
    while let Some(e) = session.poll_event() {
        found |= want(&e);
    }
    found
}

/// The envelope's header session and plain or verified payload.
fn open_envelope(bytes: &[u8]) -> Result<Envelope, Step> {
    Envelope::decode(bytes).map_err(|_| Step::DeviceFlow)
}

pub fn run(
    provider: &RustCryptoProvider,
    server: &SoftwareSigner,
    device: &SoftwareSigner,
) -> Check {
    let mut rng = CounterRng(1_000);
    let verdict_secret = zeroize::Zeroizing::new(VERDICT_SECRET);
    let revocation = SoftwareSigner::new(
        SigningKey::from_secret_bytes(SignatureAlgorithm::EcdsaP256Sha256, &verdict_secret)
            .map_err(|_| Step::DeviceSession)?,
    );
    let pinned = PinnedKeys::new(vec![
        PinnedKey::new(KeyRole::SetupSigning, server.public_key().clone()),
        PinnedKey::new(KeyRole::RevocationVerdict, revocation.public_key().clone()),
    ]);
    let config = DeviceConfig {
        transport: Transport::Dns,
        home_transport: Transport::Https,
        identity: DeviceIdentityRef::PublicKey(device.public_key().to_spki_der()),
        pin: Some(Pin::new(PIN).map_err(|_| Step::DeviceSession)?),
        radio_bands: 1,
        radio_security: 3,
        suites: vec![SUITE],
        retry: RetryPolicy::default(),
    };
    let mut session = DeviceSession::new(config, pinned, device.clone(), MemoryDeviceState::new())
        .map_err(|_| Step::DeviceSession)?;

    session.start(Instant(0), Trigger::FirstBoot);
    ensure(
        saw(&mut session, |e| *e == Event::ScanRequested),
        Step::DeviceFlow,
    )?;
    let scan = vec![
        ReportedNetwork {
            ssid: b"home".to_vec(),
            signal_loss_db: 50,
            band: 1,
            channel: 6,
            security: 1,
        },
        ReportedNetwork {
            ssid: b"cafe".to_vec(),
            signal_loss_db: 30,
            band: 1,
            channel: 1,
            security: 0,
        },
    ];
    session.scan_complete(Instant(1), scan, &mut rng);

    // Server: the hello, then its proof over t1.
    let hello = open_envelope(&sent(&mut session, Path::Setup)?)?;
    let sid = hello.header.session_id;
    let Body::Plain(hello_body) = &hello.body else {
        return Err(Step::DeviceFlow);
    };
    let mut t = SetupTranscript::after_hello(provider, Transport::Dns, &sid, hello_body);
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

    // A forged copy (one signature bit flipped) is ignored: nothing goes out.
    let mut forged = wire.clone();
    if let Some(last) = forged.last_mut() {
        *last ^= 1;
    }
    session.handle_incoming(Instant(2), Path::Setup, &forged, &mut rng);
    ensure(
        saw(&mut session, |e| matches!(e, Event::MessageRefused { .. }))
            && session.poll_transmit().is_none(),
        Step::DeviceForgedAccepted,
    )?;
    session.handle_incoming(Instant(3), Path::Setup, &wire, &mut rng);
    ensure(
        saw(&mut session, |e| {
            matches!(e, Event::ServerAuthenticated { .. })
        }),
        Step::DeviceFlow,
    )?;
    t.absorb_proof(provider, &proof);

    // Server: the request, signed by the device over t2, its report sealed to the server.
    let request = open_envelope(&sent(&mut session, Path::Setup)?)?;
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
    ensure(
        report.pin.as_ref().map(Pin::expose_secret) == Some(PIN) && report.networks.len() == 1,
        Step::DeviceFlow,
    )?;
    t.absorb_request(provider, &payload);
    let t3 = t.hash();

    // Server: the credential, sealed to the session key with t3, signed over t3.
    let sealed = seal_to(
        SUITE,
        &request.session_key,
        CREDENTIALS_INFO,
        &seal_aad(&t3),
        &[PASSPHRASE],
        &mut rng,
    )
    .map_err(|_| Step::DeviceFlow)?;
    let response = CredentialResponse {
        encapsulated_key: sealed.encapsulated_key,
        entries: vec![CredentialEntry {
            ssid: b"home".to_vec(),
            security: 1,
            status: EntryStatus::Sealed,
            ciphertext: sealed
                .ciphertexts
                .into_iter()
                .next()
                .ok_or(Step::DeviceFlow)?,
        }],
    };
    let wire = sign_message(
        header(MessageTag::CredentialResponse, sid),
        KeyRole::SetupSigning,
        &t3,
        response.encode_body(),
        server,
        provider,
    )
    .map_err(|_| Step::DeviceFlow)?
    .encode();
    session.handle_incoming(Instant(4), Path::Setup, &wire, &mut rng);
    ensure(
        saw(
            &mut session,
            |e| matches!(e, Event::Join { ssid, passphrase, .. } if ssid == b"home" && passphrase.expose_secret() == PASSPHRASE),
        ),
        Step::DeviceFlow,
    )?;
    session.join_result(Instant(5), JoinResult::Joined, &mut rng);
    ensure(
        saw(&mut session, |e| matches!(e, Event::Joined { .. })),
        Step::DeviceFlow,
    )?;

    // Server, over the home network: the outcome report and its acknowledgement.
    let outcome = open_envelope(&sent(&mut session, Path::Home)?)?;
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
    ensure(report.setup_session == sid, Step::DeviceFlow)?;
    let ack = OutcomeAck {
        device_nonce: report.device_nonce,
    }
    .encode_body();
    let th = outcome_ack_transcript(provider, Transport::Https, &osid, &payload);
    let wire = sign_message(
        header(MessageTag::OutcomeAck, osid),
        KeyRole::SetupSigning,
        &th,
        ack,
        server,
        provider,
    )
    .map_err(|_| Step::DeviceFlow)?
    .encode();
    session.handle_incoming(Instant(6), Path::Home, &wire, &mut rng);
    ensure(
        saw(&mut session, |e| *e == Event::OutcomeAcknowledged),
        Step::DeviceFlow,
    )?;

    // Revocation service: the query and a "good" verdict.
    let query = open_envelope(&sent(&mut session, Path::Home)?)?;
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
    let wire = sign_message(
        header(MessageTag::RevocationVerdict, rsid),
        KeyRole::RevocationVerdict,
        &th,
        verdict,
        &revocation,
        provider,
    )
    .map_err(|_| Step::DeviceFlow)?
    .encode();
    session.handle_incoming(Instant(7), Path::Home, &wire, &mut rng);
    ensure(
        saw(&mut session, |e| {
            *e == Event::Complete {
                revocation_checked: true,
            }
        }) && session.is_idle()
            && session
                .state()
                .stored()
                .is_some_and(|s| s.in_progress.is_none()),
        Step::DeviceFlow,
    )
}
