//! The association service's world: accounts, sponsors and joiners in every state, the
//! association key, and a sponsor built from the core's primitives that can send what a
//! correct sponsor sends, and anything else.

use zerotouch_core::flow2::{
    self, AnswerContext, AnswerKey, ChallengeData, ChannelBinding, Commitment,
    EXPECTED_ANSWER_INFO, VerificationData, VerificationRequest, challenge_answer,
    handoff_transcript,
};
use zerotouch_core::*;
use zerotouch_server::*;
use zerotouch_store::*;
use zerotouch_store_suite::fixtures::{device, device_id, device_key};

pub use super::{P, T0, fresh};

pub const HOUR_MS: u64 = 3_600_000;

/// Sponsors: 1 and 7 on the owner's account, 6 blocked, 9 unknown to the server.
pub const SPONSOR: u8 = 1;
pub const SECOND_SPONSOR: u8 = 7;
pub const BLOCKED_SPONSOR: u8 = 6;
pub const UNKNOWN: u8 = 9;
/// Joiners: 2 on the owner's account, 3 on the neighbour's, 4 blocked, 5 without a secret.
pub const JOINER: u8 = 2;
pub const NEIGHBOURS_DEVICE: u8 = 3;
pub const BLOCKED_JOINER: u8 = 4;
pub const SECRETLESS_JOINER: u8 = 5;

/// The sponsor's channel binding (its own Noise handshake hash).
pub const BINDING: ChannelBinding = ChannelBinding([0x7b; 32]);

pub fn association_signer() -> SoftwareSigner {
    SoftwareSigner::new(
        SigningKey::from_secret_bytes(SignatureAlgorithm::EcdsaP256Sha256, &[0xb1; 32]).unwrap(),
    )
}

/// What devices pin for flow 2: the association key.
pub fn pinned() -> PinnedKeys {
    PinnedKeys::new(vec![PinnedKey::new(
        KeyRole::Association,
        association_signer().public_key().clone(),
    )])
}

pub fn ring() -> ServerKeyRing<SoftwareSigner> {
    let mut ring = ServerKeyRing::new();
    ring.add(KeyRole::Association, association_signer())
        .unwrap();
    ring
}

pub fn direct() -> TransportIdentity {
    TransportIdentity::Direct {
        transport: Transport::Https,
        client_key: None,
    }
}

pub fn with_client_key(seed: u8) -> TransportIdentity {
    TransportIdentity::Direct {
        transport: Transport::Https,
        client_key: Some(device_key(seed).public_key()),
    }
}

/// Accounts, devices and associations every test starts from.
pub async fn populate<St: Store>(store: &St) {
    let owner = store.create_account("owner", T0).await.unwrap();
    let neighbour = store.create_account("neighbour", T0).await.unwrap();
    let registrar = store
        .add_registrar("shop", RegistrarCredential::ApiTokenHash([9; 32]), T0)
        .await
        .unwrap();
    let mut devices: Vec<DeviceRecord> = [
        SPONSOR,
        SECOND_SPONSOR,
        BLOCKED_SPONSOR,
        JOINER,
        NEIGHBOURS_DEVICE,
        BLOCKED_JOINER,
    ]
    .into_iter()
    .map(device)
    .collect();
    devices.push(DeviceRecord {
        device_secret: None,
        ..device(SECRETLESS_JOINER)
    });
    store.import_devices(devices).await.unwrap();
    for (seed, account) in [
        (SPONSOR, owner),
        (SECOND_SPONSOR, owner),
        (BLOCKED_SPONSOR, owner),
        (JOINER, owner),
        (NEIGHBOURS_DEVICE, neighbour),
        (BLOCKED_JOINER, owner),
        (SECRETLESS_JOINER, owner),
    ] {
        store
            .apply_association_change(AssociationChange {
                action: AssociationAction::Add,
                device: device_id(seed),
                account,
                registrar,
                label: None,
                at: T0,
            })
            .await
            .unwrap();
    }
    for seed in [BLOCKED_SPONSOR, BLOCKED_JOINER] {
        store.set_blocked(&device_id(seed), true).await.unwrap();
    }
    store
        .add_server_key(
            KeyRole::Association,
            association_signer().public_key().clone(),
            T0,
        )
        .await
        .unwrap();
}

pub type Service<St> = AssociationService<St, SoftwareSigner>;

pub async fn service_with(config: AssociationConfig) -> Service<MemoryStore> {
    let store = MemoryStore::new();
    populate(&store).await;
    AssociationService::new(store, ring(), config)
}

pub async fn service() -> Service<MemoryStore> {
    service_with(AssociationConfig::default()).await
}

/// A verification request as a sponsor builds it; every field can be changed.
pub struct Req {
    /// Whose key signs it.
    pub signer: u8,
    pub sponsor_id: KeyId,
    pub joiner_id: KeyId,
    pub session: SessionId,
    pub nonce: Nonce,
    pub commitment: Commitment,
    pub binding: ChannelBinding,
    pub answer_key: SessionKeyPair,
}

impl Req {
    /// Sponsor `sponsor` asks about `joiner` in handoff `n` (session and nonce from `n`).
    pub fn new(sponsor: u8, joiner: u8, n: u8) -> Self {
        Req {
            signer: sponsor,
            sponsor_id: device_id(sponsor),
            joiner_id: device_id(joiner),
            session: SessionId([n; 16]),
            nonce: Nonce([n; 16]),
            commitment: Commitment([0xcc; 32]),
            binding: BINDING,
            answer_key: SessionKeyPair::derive(
                CipherSuite::X25519_SHA256_CHACHA20POLY1305,
                &[n, sponsor, joiner],
            )
            .unwrap(),
        }
    }

    pub fn payload(&self) -> VerificationRequest {
        VerificationRequest {
            sponsor_id: self.sponsor_id,
            joiner_id: self.joiner_id,
            nonce: self.nonce,
            commitment: self.commitment,
            binding: self.binding,
            answer_key: AnswerKey {
                suite: self.answer_key.suite(),
                public_key: self.answer_key.public_key().to_vec(),
            },
        }
    }

    pub fn bytes(&self) -> Vec<u8> {
        self.bytes_of(self.payload().encode_body())
    }

    pub fn bytes_of(&self, payload: Vec<u8>) -> Vec<u8> {
        sign_message(
            flow2::header(MessageTag::VerificationRequest, self.session),
            KeyRole::DeviceIdentity,
            &handoff_transcript(&P, &self.session),
            payload,
            &SoftwareSigner::new(device_key(self.signer)),
            &P,
        )
        .unwrap()
        .encode()
    }

    pub fn context(&self) -> (SessionId, Nonce, KeyId, KeyId) {
        (self.session, self.nonce, self.sponsor_id, self.joiner_id)
    }
}

pub async fn send<St: Store>(
    service: &Service<St>,
    bytes: &[u8],
    now: Instant,
) -> AssociationAnswer {
    service.answer(bytes, &direct(), now, &mut fresh()).await
}

/// The error an answer carries, checking its header: flow 2, tag Error, seq `expected_seq`.
pub fn error_of(bytes: &[u8], expected_seq: u32) -> ErrorMessage {
    let e = Envelope::decode(bytes).unwrap();
    assert_eq!(e.header.flow, Flow::PeerHandoff);
    assert_eq!(e.header.tag, MessageTag::Error);
    assert_eq!(e.header.seq, expected_seq);
    let Body::Plain(body) = &e.body else {
        panic!("an error message is plain")
    };
    ErrorMessage::decode_body(body).unwrap()
}

/// The code of a refused verification request (the error answering seq 0 has seq 1).
pub fn code_of(answer: &AssociationAnswer) -> Option<ErrorCode> {
    let e = Envelope::decode(&answer.bytes).unwrap();
    if e.header.tag != MessageTag::Error {
        assert_eq!(answer.refusal, None);
        return None;
    }
    let code = error_of(&answer.bytes, 1).code;
    assert_eq!(
        answer.code(),
        Some(code),
        "the refusal's code is the one sent"
    );
    Some(code)
}

/// What a sponsor reads from the verification data: both signatures verified against the
/// pinned association key, the challenge data, and the expected answer opened with its key.
pub struct Opened {
    pub challenge_data_bytes: Vec<u8>,
    pub challenge_data: ChallengeData,
    pub expected: Vec<u8>,
    pub window_ms: u32,
}

pub fn open_as_sponsor(req: &Req, bytes: &[u8]) -> Opened {
    open_with(req, bytes, &req.answer_key).unwrap()
}

pub fn open_with(req: &Req, bytes: &[u8], key: &SessionKeyPair) -> Result<Opened, SealError> {
    let th = handoff_transcript(&P, &req.session);
    let pinned = pinned();
    let e = Envelope::decode(bytes).unwrap();
    assert_eq!(
        e.header,
        flow2::header(MessageTag::VerificationData, req.session)
    );
    let Body::Signed(signed) = &e.body else {
        panic!("verification data is signed")
    };
    let payload = signed
        .verify_trusted(&e.header, KeyRole::Association, &th, &pinned, &P)
        .unwrap();
    let data = VerificationData::decode_body(payload).unwrap();
    let cd = Envelope::decode(&data.challenge_data).unwrap();
    assert_eq!(
        cd.header,
        flow2::header(MessageTag::ChallengeData, req.session)
    );
    let Body::Signed(cd_signed) = &cd.body else {
        panic!("challenge data is signed")
    };
    let cd_payload = cd_signed
        .verify_trusted(&cd.header, KeyRole::Association, &th, &pinned, &P)
        .unwrap();
    let challenge_data = ChallengeData::decode_body(cd_payload).unwrap();
    let opened = key.open(
        &data.sealed_answer.encapsulated_key,
        EXPECTED_ANSWER_INFO,
        &P.sha256(&[&data.challenge_data]),
        &[&data.sealed_answer.ciphertext],
    )?;
    Ok(Opened {
        challenge_data_bytes: data.challenge_data.clone(),
        challenge_data,
        expected: opened[0].to_vec(),
        window_ms: data.answer_window_ms,
    })
}

/// The joiner's answer to `challenge_data` on a channel with `binding`.
pub fn joiner_answer(req: &Req, cd: &ChallengeData, binding: &ChannelBinding) -> [u8; 32] {
    let secret = device(JOINER).device_secret.unwrap();
    let (session, nonce, sponsor, joiner) = req.context();
    *challenge_answer(
        &P,
        &secret,
        &AnswerContext {
            session_id: &session,
            nonce: &nonce,
            sponsor_id: &sponsor,
            joiner_id: &joiner,
        },
        &cd.challenge,
        binding,
    )
    .expose_secret()
}

pub fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty() && haystack.windows(needle.len()).any(|w| w == needle)
}
