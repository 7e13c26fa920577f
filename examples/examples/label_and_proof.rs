//! A factory makes a device key and its box label; a server signs a message bound to a session;
//! the device verifies it against its pinned key. Run:
//! `cargo run -p zerotouch-examples --example label_and_proof`

use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;
use zerotouch_core::*;

fn main() -> Result<(), Error> {
    // A seeded RNG keeps the example reproducible; firmware and servers use a CSPRNG.
    let mut rng = ChaCha20Rng::seed_from_u64(2026);
    let provider = RustCryptoProvider;

    // Factory: device identity key, PIN, label.
    let device = SoftwareSigner::new(SigningKey::generate(
        SignatureAlgorithm::EcdsaP256Sha256,
        &mut rng,
    )?);
    let pin = Pin::generate(&mut rng, 6)?;
    let label = BarcodePayload {
        fingerprint: KeyFingerprint::of(&device.key_id(), 16)?,
        device_type: 7,
        product_number: "SMARTPLUG01".into(),
        pin: Some(pin),
    };
    println!("device key id   {:?}", device.key_id());
    // The label text carries the PIN, so it goes to the printer, not to a log.
    println!(
        "box label       {} characters for the printer; PIN {:?}",
        label.encode().len(),
        label.pin
    );

    // Registrar: scans the label; the fingerprint names the device key.
    let scanned = BarcodePayload::decode(&label.encode())?;
    println!(
        "scanned         device type {}, product {}, key matches: {}",
        scanned.device_type,
        scanned.product_number,
        scanned.fingerprint.matches(&device.key_id())
    );

    // Server: signs with the key its type/serial map names for this device.
    let mut ring = ServerKeyRing::new();
    let old = ring.add(
        KeyRole::SetupSigning,
        SoftwareSigner::new(SigningKey::generate(SignatureAlgorithm::Ed25519, &mut rng)?),
    )?;
    let new = ring.add(
        KeyRole::SetupSigning,
        SoftwareSigner::new(SigningKey::generate(
            SignatureAlgorithm::EcdsaP256Sha256,
            &mut rng,
        )?),
    )?;
    ring.map_devices(7, 0, 99_999, new)?;
    let pinned = PinnedKeys::new(
        ring.keys()
            .iter()
            .map(|k| PinnedKey::new(k.role, k.signer.public_key().clone()))
            .collect(),
    );
    let trusted = pinned.trusted_key_ids(KeyRole::SetupSigning);
    let signer = ring.select_setup_key(7, 1234, &trusted)?;
    println!("server chose    {:?} (map) over {:?}", signer.key_id(), old);

    // Both sides agree on a transcript; the server signs over it.
    let session_id = SessionId::random(&mut rng);
    let mut t = Transcript::new(&provider, Flow::ServerSetup, Transport::Https, &session_id);
    t.offered_versions(&provider, SUPPORTED_VERSIONS);
    t.device_key(&provider, device.public_key());
    t.device_nonce(&provider, &Nonce::random(&mut rng));
    let header = Header {
        version: ProtocolVersion::V1,
        flow: Flow::ServerSetup,
        tag: MessageTag::ServerProof,
        session_id,
        seq: 0,
    };
    let wire = sign_message(
        header,
        KeyRole::SetupSigning,
        &t.hash(),
        b"hello device".to_vec(),
        signer,
        &provider,
    )?
    .encode();
    println!("signed message  {} bytes on the wire", wire.len());

    // Device: decodes and verifies against its pinned keys.
    let env = Envelope::decode(&wire)?;
    if let Body::Signed(body) = &env.body {
        let payload = body.verify_trusted(
            &env.header,
            KeyRole::SetupSigning,
            &t.hash(),
            &pinned,
            &provider,
        )?;
        println!(
            "device verified {:?}",
            core::str::from_utf8(payload).unwrap_or("<binary>")
        );
    }
    Ok(())
}
