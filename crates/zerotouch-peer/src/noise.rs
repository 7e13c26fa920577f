//! The Noise Protocol Framework (revision 34), sans-IO: `Noise_NN_25519_ChaChaPoly_SHA256` and
//! `Noise_XX_25519_ChaChaPoly_SHA256`.
//!
//! This module follows the specification's own objects: a `CipherState` (section 5.1), a
//! `SymmetricState` (section 5.2) and a [`Handshake`] (the `HandshakeState` of section 5.3),
//! with HKDF as in section 4.3. Every primitive comes from a vetted crate: X25519 from
//! `x25519-dalek`, ChaCha20-Poly1305 from `chacha20poly1305`, SHA-256 and HMAC from RustCrypto.
//! Nothing here does I/O or reads a clock; randomness comes from the caller's RNG, once, when a
//! [`Handshake`] is made. Messages go out and come in as byte vectors; framing them on a stream
//! is [`crate::framing`]'s job.
//!
//! After the last handshake message, [`Handshake::into_transport`] gives a [`Transport`] with one
//! cipher per direction and the handshake hash, which binds everything both sides sent and is
//! what higher layers sign or MAC to tie themselves to this channel.
//!
//! Checked against the cacophony test vectors (`tests/noise_vectors.rs`).

use alloc::vec::Vec;
use core::fmt;

use chacha20poly1305::aead::{Aead, Payload};
use chacha20poly1305::{ChaCha20Poly1305, KeyInit, Nonce};
use hmac::{Hmac, Mac};
use rand_core::CryptoRng;
use sha2::{Digest, Sha256};
use x25519_dalek::{PublicKey, StaticSecret};
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

/// Largest Noise message, handshake or transport (Noise section 3): its length must fit the
/// 16-bit prefix most framings, ours included, put in front of it.
pub const MAX_MESSAGE_LEN: usize = 65535;

/// Length of an X25519 public key and of a DH output (Noise `DHLEN`).
pub const DH_LEN: usize = 32;

/// Length of a SHA-256 output (Noise `HASHLEN`): the handshake hash and the chaining key.
pub const HASH_LEN: usize = 32;

/// Length of the ChaCha20-Poly1305 authentication tag added to every encrypted payload.
pub const TAG_LEN: usize = 16;

/// Largest plaintext one transport message can carry: the tag must fit too.
pub const MAX_PLAINTEXT_LEN: usize = MAX_MESSAGE_LEN - TAG_LEN;

/// What went wrong in a Noise handshake or transport operation.
///
/// After any error from [`Handshake::write_message`] or [`Handshake::read_message`] other than
/// [`NoiseError::OutOfTurn`], [`NoiseError::MessageTooLong`] and
/// [`NoiseError::HandshakeAlreadyFinished`], the handshake is over (the specification says to
/// delete it): start a new one. Transport errors leave the [`Transport`] usable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum NoiseError {
    /// The message (or, for transport, the plaintext plus its tag) would be longer than
    /// [`MAX_MESSAGE_LEN`]. Nothing changed; send less.
    #[error("Noise message longer than 65535 bytes")]
    MessageTooLong,
    /// The message ended before a public key, an encrypted static key or a tag was complete.
    #[error("Noise message truncated")]
    TruncatedMessage,
    /// Authentication failed: the message was altered, replayed, reordered or not meant for
    /// this session. A transport keeps its nonce, so the next genuine message still decrypts.
    #[error("Noise message failed to decrypt")]
    DecryptFailed,
    /// `write_message` was called when a message from the peer was due, or `read_message`
    /// when it was our turn to send. Nothing changed.
    #[error("Noise handshake message out of turn")]
    OutOfTurn,
    /// `into_transport` was called before the last handshake message was written or read.
    #[error("Noise handshake not finished")]
    HandshakeNotFinished,
    /// The handshake already sent and received all its messages; call `into_transport`.
    #[error("Noise handshake already finished")]
    HandshakeAlreadyFinished,
    /// An earlier error ended this handshake; its state can no longer be trusted. Start anew.
    #[error("Noise handshake aborted by an earlier error")]
    HandshakeAborted,
    /// A Diffie-Hellman result was all zeros: the peer sent a low-order public key.
    #[error("Noise DH result is all zeros (low-order public key)")]
    WeakDhResult,
    /// A cipher used its last nonce (2^64 - 2); the value 2^64 - 1 is reserved by Noise.
    /// Start a new session.
    #[error("Noise nonce space exhausted")]
    NonceExhausted,
    /// The pattern (XX) needs a local static key and none was given.
    #[error("Noise pattern needs a local static key")]
    MissingStaticKey,
    /// The pattern (NN) has no static keys, yet one was given: refused rather than ignored, so
    /// a caller never believes it authenticated with a key that was never sent.
    #[error("Noise pattern takes no static key")]
    UnexpectedStaticKey,
    /// A DH token needed a remote key not yet received. The NN and XX patterns always send the
    /// key first, so this means the handshake state machine itself is broken.
    #[error("Noise remote key missing")]
    MissingRemoteKey,
}

/// The handshake patterns implemented (Noise section 7.5).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Pattern {
    /// `NN`: ephemeral keys only; confidentiality against passive attackers, no
    /// authentication. Two messages.
    Nn,
    /// `XX`: both sides send their static key, encrypted; mutual authentication once the
    /// application checks the remote static key. Three messages.
    Xx,
}

impl Pattern {
    /// The full Noise protocol name, hashed into the initial state.
    #[must_use]
    pub const fn protocol_name(self) -> &'static str {
        match self {
            Self::Nn => "Noise_NN_25519_ChaChaPoly_SHA256",
            Self::Xx => "Noise_XX_25519_ChaChaPoly_SHA256",
        }
    }

    /// The message patterns, initiator first and then alternating.
    const fn messages(self) -> &'static [&'static [Token]] {
        use Token::{E, Ee, Es, S, Se};
        match self {
            Self::Nn => &[&[E], &[E, Ee]],
            Self::Xx => &[&[E], &[E, Ee, S, Es], &[S, Se]],
        }
    }

    /// Whether the pattern has both sides send a static key.
    const fn needs_static(self) -> bool {
        matches!(self, Self::Xx)
    }
}

/// Which side of the handshake this is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    /// Sends the first message.
    Initiator,
    /// Receives the first message.
    Responder,
}

/// A token of a message pattern (Noise section 7.1). `ss` and PSK tokens do not occur in NN or
/// XX and are left out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Token {
    E,
    S,
    Ee,
    Es,
    Se,
}

/// An X25519 key pair: a device's long-term Noise identity, or a handshake's ephemeral.
///
/// The secret is zeroized on drop (by `x25519-dalek`) and never printed.
#[derive(Clone)]
pub struct StaticKeypair {
    secret: StaticSecret,
    public: [u8; DH_LEN],
}

impl StaticKeypair {
    /// Draws a new key pair from the caller's cryptographic RNG.
    pub fn generate<R: CryptoRng + ?Sized>(rng: &mut R) -> Self {
        Self::from_secret(StaticSecret::random_from_rng(rng))
    }

    /// Rebuilds a key pair from its 32 secret bytes (as stored by the device). The caller
    /// should zeroize its own copy. Any 32 bytes are a valid X25519 secret (clamped when used).
    #[must_use]
    pub fn from_secret_bytes(secret: [u8; 32]) -> Self {
        Self::from_secret(StaticSecret::from(secret))
    }

    /// The 32 secret bytes, for storing the key; zeroized when the returned value drops.
    #[must_use]
    pub fn to_secret_bytes(&self) -> Zeroizing<[u8; 32]> {
        Zeroizing::new(self.secret.to_bytes())
    }

    /// The public key, as sent in handshake messages.
    #[must_use]
    pub fn public(&self) -> [u8; DH_LEN] {
        self.public
    }

    fn from_secret(secret: StaticSecret) -> Self {
        let public = PublicKey::from(&secret).to_bytes();
        Self { secret, public }
    }
}

impl fmt::Debug for StaticKeypair {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StaticKeypair")
            .field("public", &self.public)
            .field("secret", &"<redacted>")
            .finish()
    }
}

/// X25519 with the contributory check.
///
/// An all-zero output means the remote public key is one of the low-order points: the "shared"
/// secret is then a constant anyone can compute, whatever our secret is, so mixing it in adds
/// no secrecy, and an active attacker can use such keys to force two sessions onto keys it
/// controls or predicts. Noise (section 12.1) allows rejecting it and RFC 7748 (section 6.1)
/// recommends the check; with it, every DH that goes into the keys is one the peer really took
/// part in.
fn dh(
    secret: &StaticSecret,
    remote_public: &[u8; DH_LEN],
) -> Result<Zeroizing<[u8; DH_LEN]>, NoiseError> {
    let shared = secret.diffie_hellman(&PublicKey::from(*remote_public));
    if !shared.was_contributory() {
        return Err(NoiseError::WeakDhResult);
    }
    Ok(Zeroizing::new(shared.to_bytes()))
}

/// HMAC-SHA-256 over the concatenation of `parts`.
fn hmac_sha256(key: &[u8; HASH_LEN], parts: &[&[u8]]) -> [u8; HASH_LEN] {
    // The key is placed in a zero-padded block and given to the fixed-size constructor: this is
    // exactly how HMAC (RFC 2104) treats a key shorter than the block, and unlike
    // `new_from_slice` it cannot fail, so no error path is needed.
    let mut block = hmac::digest::Key::<Hmac<Sha256>>::default();
    for (dst, src) in block.iter_mut().zip(key.iter()) {
        *dst = *src;
    }
    let mut mac = <Hmac<Sha256> as KeyInit>::new(&block);
    block.as_mut_slice().zeroize();
    for part in parts {
        mac.update(part);
    }
    mac.finalize().into_bytes().into()
}

/// HKDF as Noise defines it (section 4.3), with two outputs: the only case NN and XX need.
fn hkdf2(
    chaining_key: &[u8; HASH_LEN],
    input_key_material: &[u8],
) -> (Zeroizing<[u8; HASH_LEN]>, Zeroizing<[u8; HASH_LEN]>) {
    let temp_key = Zeroizing::new(hmac_sha256(chaining_key, &[input_key_material]));
    let output1 = Zeroizing::new(hmac_sha256(&temp_key, &[&[0x01]]));
    let output2 = Zeroizing::new(hmac_sha256(&temp_key, &[output1.as_slice(), &[0x02]]));
    (output1, output2)
}

/// The ChaCha20-Poly1305 nonce Noise uses: 32 zero bits, then the counter little-endian
/// (section 12.3).
fn chacha_nonce(n: u64) -> Nonce {
    let mut nonce = [0u8; 12];
    for (dst, src) in nonce.iter_mut().skip(4).zip(n.to_le_bytes()) {
        *dst = src;
    }
    Nonce::from(nonce)
}

/// A key and nonce (Noise section 5.1). The key is zeroized on drop.
#[derive(Zeroize, ZeroizeOnDrop)]
struct CipherState {
    /// `None` is the specification's "empty" key: payloads then go in clear.
    k: Option<[u8; 32]>,
    n: u64,
}

impl CipherState {
    const fn empty() -> Self {
        Self { k: None, n: 0 }
    }

    fn with_key(k: &[u8; 32]) -> Self {
        Self { k: Some(*k), n: 0 }
    }

    const fn has_key(&self) -> bool {
        self.k.is_some()
    }

    /// `EncryptWithAd`: encrypts under the current nonce, then advances it.
    fn encrypt_with_ad(&mut self, ad: &[u8], plaintext: &[u8]) -> Result<Vec<u8>, NoiseError> {
        let Some(k) = &self.k else {
            return Ok(plaintext.to_vec());
        };
        // 2^64 - 1 is reserved (section 5.1): refusing here also means `n + 1` cannot wrap.
        if self.n == u64::MAX {
            return Err(NoiseError::NonceExhausted);
        }
        let cipher = ChaCha20Poly1305::new(k.into());
        let ciphertext = cipher
            .encrypt(
                &chacha_nonce(self.n),
                Payload {
                    msg: plaintext,
                    aad: ad,
                },
            )
            .map_err(|_| NoiseError::MessageTooLong)?;
        self.n += 1;
        Ok(ciphertext)
    }

    /// `DecryptWithAd`: decrypts under the current nonce and advances it only on success, so a
    /// forged or damaged message cannot desynchronise the two sides.
    fn decrypt_with_ad(&mut self, ad: &[u8], ciphertext: &[u8]) -> Result<Vec<u8>, NoiseError> {
        let Some(k) = &self.k else {
            return Ok(ciphertext.to_vec());
        };
        if self.n == u64::MAX {
            return Err(NoiseError::NonceExhausted);
        }
        if ciphertext.len() < TAG_LEN {
            return Err(NoiseError::TruncatedMessage);
        }
        let cipher = ChaCha20Poly1305::new(k.into());
        let plaintext = cipher
            .decrypt(
                &chacha_nonce(self.n),
                Payload {
                    msg: ciphertext,
                    aad: ad,
                },
            )
            .map_err(|_| NoiseError::DecryptFailed)?;
        self.n += 1;
        Ok(plaintext)
    }
}

/// Chaining key, handshake hash and the handshake's cipher (Noise section 5.2). The chaining
/// key, the hash and the key are zeroized on drop.
#[derive(Zeroize, ZeroizeOnDrop)]
struct SymmetricState {
    ck: [u8; HASH_LEN],
    h: [u8; HASH_LEN],
    cipher: CipherState,
}

impl SymmetricState {
    /// `InitializeSymmetric`.
    fn new(protocol_name: &str) -> Self {
        let name = protocol_name.as_bytes();
        let mut h = [0u8; HASH_LEN];
        if name.len() <= HASH_LEN {
            for (dst, src) in h.iter_mut().zip(name) {
                *dst = *src;
            }
        } else {
            h = Sha256::digest(name).into();
        }
        Self {
            ck: h,
            h,
            cipher: CipherState::empty(),
        }
    }

    /// `MixKey`.
    fn mix_key(&mut self, input_key_material: &[u8]) {
        let (ck, temp_k) = hkdf2(&self.ck, input_key_material);
        self.ck = *ck;
        // Replacing the cipher drops (and so zeroizes) the old key.
        self.cipher = CipherState::with_key(&temp_k);
    }

    /// `MixHash`.
    fn mix_hash(&mut self, data: &[u8]) {
        let mut hasher = Sha256::new();
        hasher.update(self.h);
        hasher.update(data);
        self.h = hasher.finalize().into();
    }

    /// `EncryptAndHash`.
    fn encrypt_and_hash(&mut self, plaintext: &[u8]) -> Result<Vec<u8>, NoiseError> {
        let h = self.h;
        let ciphertext = self.cipher.encrypt_with_ad(&h, plaintext)?;
        self.mix_hash(&ciphertext);
        Ok(ciphertext)
    }

    /// `DecryptAndHash`.
    fn decrypt_and_hash(&mut self, ciphertext: &[u8]) -> Result<Vec<u8>, NoiseError> {
        let h = self.h;
        let plaintext = self.cipher.decrypt_with_ad(&h, ciphertext)?;
        self.mix_hash(ciphertext);
        Ok(plaintext)
    }

    /// `Split`: the initiator-to-responder cipher, then the responder-to-initiator one.
    fn split(&self) -> (CipherState, CipherState) {
        let (k1, k2) = hkdf2(&self.ck, &[]);
        (CipherState::with_key(&k1), CipherState::with_key(&k2))
    }
}

/// A Noise handshake in progress (the specification's `HandshakeState`, section 5.3).
///
/// Call [`Handshake::write_message`] when [`Handshake::is_my_turn`] and
/// [`Handshake::read_message`] with each message from the peer otherwise; once
/// [`Handshake::is_finished`], [`Handshake::into_transport`] gives the session ciphers.
pub struct Handshake {
    pattern: Pattern,
    role: Role,
    symmetric: SymmetricState,
    s: Option<StaticKeypair>,
    e: StaticKeypair,
    rs: Option<[u8; DH_LEN]>,
    re: Option<[u8; DH_LEN]>,
    /// Index of the next message pattern to write or read.
    next: usize,
    /// Set by any error after the state may have changed: Noise says to delete the handshake
    /// then, and this enforces it.
    aborted: bool,
}

impl fmt::Debug for Handshake {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Handshake")
            .field("pattern", &self.pattern)
            .field("role", &self.role)
            .field("next_message", &self.next)
            .field("aborted", &self.aborted)
            .finish_non_exhaustive()
    }
}

impl Handshake {
    /// Starts a handshake. `prologue` is data both sides must agree on without sending it (for
    /// example the protocol version); a mismatch makes the first encrypted payload fail.
    /// `local_static` is required for [`Pattern::Xx`] and refused for [`Pattern::Nn`]. The
    /// ephemeral key is drawn from `rng` now, so writing messages needs no RNG.
    ///
    /// # Errors
    /// [`NoiseError::MissingStaticKey`] or [`NoiseError::UnexpectedStaticKey`].
    pub fn new<R: CryptoRng + ?Sized>(
        pattern: Pattern,
        role: Role,
        prologue: &[u8],
        local_static: Option<StaticKeypair>,
        rng: &mut R,
    ) -> Result<Self, NoiseError> {
        // Checked before drawing the ephemeral so a misuse costs no randomness.
        check_static(pattern, local_static.as_ref())?;
        let e = StaticKeypair::generate(rng);
        Ok(Self::init(pattern, role, prologue, local_static, e))
    }

    /// Starts a handshake with a given ephemeral secret. **For known-answer tests only**: a
    /// reused ephemeral breaks Noise's security, so real sessions use [`Handshake::new`].
    ///
    /// # Errors
    /// As [`Handshake::new`].
    pub fn with_fixed_ephemeral(
        pattern: Pattern,
        role: Role,
        prologue: &[u8],
        local_static: Option<StaticKeypair>,
        ephemeral_secret: [u8; 32],
    ) -> Result<Self, NoiseError> {
        check_static(pattern, local_static.as_ref())?;
        let e = StaticKeypair::from_secret_bytes(ephemeral_secret);
        Ok(Self::init(pattern, role, prologue, local_static, e))
    }

    fn init(
        pattern: Pattern,
        role: Role,
        prologue: &[u8],
        s: Option<StaticKeypair>,
        e: StaticKeypair,
    ) -> Self {
        let mut symmetric = SymmetricState::new(pattern.protocol_name());
        symmetric.mix_hash(prologue);
        // NN and XX have no pre-messages, so nothing else is hashed in here.
        Self {
            pattern,
            role,
            symmetric,
            s,
            e,
            rs: None,
            re: None,
            next: 0,
            aborted: false,
        }
    }

    /// Whether every handshake message has been written or read.
    #[must_use]
    pub fn is_finished(&self) -> bool {
        self.next >= self.pattern.messages().len()
    }

    /// Whether the next call must be [`Handshake::write_message`] (false once finished or
    /// aborted).
    #[must_use]
    pub fn is_my_turn(&self) -> bool {
        !self.aborted
            && !self.is_finished()
            && (self.next.is_multiple_of(2) == (self.role == Role::Initiator))
    }

    /// The peer's static public key, once received (XX: after the second message for the
    /// initiator, after the third for the responder). The application must check it is the
    /// key it expects; Noise only proves the peer holds it.
    #[must_use]
    pub fn remote_static(&self) -> Option<[u8; DH_LEN]> {
        self.rs
    }

    /// Writes the next handshake message with `payload` (encrypted once a key is set, which in
    /// NN and XX is from the second message on; the first message's payload goes in clear).
    ///
    /// # Errors
    /// [`NoiseError::OutOfTurn`], [`NoiseError::HandshakeAlreadyFinished`] or
    /// [`NoiseError::MessageTooLong`] leave the handshake as it was;
    /// [`NoiseError::HandshakeAborted`] after an earlier error; [`NoiseError::WeakDhResult`]
    /// if the peer's ephemeral was low-order (this aborts the handshake).
    pub fn write_message(&mut self, payload: &[u8]) -> Result<Vec<u8>, NoiseError> {
        let tokens = self.next_tokens()?;
        if !self.is_my_turn() {
            return Err(NoiseError::OutOfTurn);
        }
        let len = self
            .message_len(tokens, payload.len())
            .ok_or(NoiseError::MessageTooLong)?;
        if len > MAX_MESSAGE_LEN {
            return Err(NoiseError::MessageTooLong);
        }
        let result = self.write_tokens(tokens, payload, len);
        self.finish_step(result)
    }

    /// Reads the peer's next handshake message and returns its payload.
    ///
    /// # Errors
    /// [`NoiseError::OutOfTurn`], [`NoiseError::HandshakeAlreadyFinished`] or
    /// [`NoiseError::MessageTooLong`] leave the handshake as it was; a
    /// [`NoiseError::TruncatedMessage`], [`NoiseError::DecryptFailed`] or
    /// [`NoiseError::WeakDhResult`] aborts it (as Noise requires), and so does anything after
    /// the message that should not be there (it fails to decrypt as the payload).
    pub fn read_message(&mut self, message: &[u8]) -> Result<Vec<u8>, NoiseError> {
        let tokens = self.next_tokens()?;
        if self.is_my_turn() {
            return Err(NoiseError::OutOfTurn);
        }
        if message.len() > MAX_MESSAGE_LEN {
            return Err(NoiseError::MessageTooLong);
        }
        let result = self.read_tokens(tokens, message);
        self.finish_step(result)
    }

    /// Ends the handshake: the two transport ciphers (Noise `Split`), the handshake hash and
    /// the peer's static key (XX).
    ///
    /// # Errors
    /// [`NoiseError::HandshakeNotFinished`] before the last message, or
    /// [`NoiseError::HandshakeAborted`].
    pub fn into_transport(self) -> Result<Transport, NoiseError> {
        if self.aborted {
            return Err(NoiseError::HandshakeAborted);
        }
        if !self.is_finished() {
            return Err(NoiseError::HandshakeNotFinished);
        }
        let (initiator_to_responder, responder_to_initiator) = self.symmetric.split();
        let (send, recv) = match self.role {
            Role::Initiator => (initiator_to_responder, responder_to_initiator),
            Role::Responder => (responder_to_initiator, initiator_to_responder),
        };
        Ok(Transport {
            send,
            recv,
            handshake_hash: self.symmetric.h,
            remote_static: self.rs,
        })
    }

    /// The tokens of the next message, or why there is none.
    fn next_tokens(&self) -> Result<&'static [Token], NoiseError> {
        if self.aborted {
            return Err(NoiseError::HandshakeAborted);
        }
        self.pattern
            .messages()
            .get(self.next)
            .copied()
            .ok_or(NoiseError::HandshakeAlreadyFinished)
    }

    /// Records the outcome of a step: success moves to the next message, failure aborts.
    fn finish_step(&mut self, result: Result<Vec<u8>, NoiseError>) -> Result<Vec<u8>, NoiseError> {
        match result {
            Ok(out) => {
                self.next += 1;
                Ok(out)
            }
            Err(error) => {
                self.aborted = true;
                Err(error)
            }
        }
    }

    /// The length of the message we are about to write, computed before touching any state so
    /// an over-long payload is refused without aborting the handshake.
    fn message_len(&self, tokens: &[Token], payload_len: usize) -> Option<usize> {
        let mut has_key = self.symmetric.cipher.has_key();
        let mut len = 0usize;
        for token in tokens {
            match token {
                Token::E => len = len.checked_add(DH_LEN)?,
                Token::S => len = len.checked_add(DH_LEN + if has_key { TAG_LEN } else { 0 })?,
                Token::Ee | Token::Es | Token::Se => has_key = true,
            }
        }
        len.checked_add(payload_len)?
            .checked_add(if has_key { TAG_LEN } else { 0 })
    }

    fn write_tokens(
        &mut self,
        tokens: &[Token],
        payload: &[u8],
        len: usize,
    ) -> Result<Vec<u8>, NoiseError> {
        let mut out = Vec::with_capacity(len);
        for &token in tokens {
            match token {
                Token::E => {
                    let public = self.e.public;
                    out.extend_from_slice(&public);
                    self.symmetric.mix_hash(&public);
                }
                Token::S => {
                    let public = self.s.as_ref().ok_or(NoiseError::MissingStaticKey)?.public;
                    let ciphertext = self.symmetric.encrypt_and_hash(&public)?;
                    out.extend_from_slice(&ciphertext);
                }
                Token::Ee | Token::Es | Token::Se => self.mix_dh(token)?,
            }
        }
        let ciphertext = self.symmetric.encrypt_and_hash(payload)?;
        out.extend_from_slice(&ciphertext);
        Ok(out)
    }

    fn read_tokens(&mut self, tokens: &[Token], message: &[u8]) -> Result<Vec<u8>, NoiseError> {
        let mut rest = message;
        for &token in tokens {
            match token {
                Token::E => {
                    let (re, tail) = rest
                        .split_first_chunk::<DH_LEN>()
                        .ok_or(NoiseError::TruncatedMessage)?;
                    self.re = Some(*re);
                    self.symmetric.mix_hash(re);
                    rest = tail;
                }
                Token::S => {
                    let len = DH_LEN
                        + if self.symmetric.cipher.has_key() {
                            TAG_LEN
                        } else {
                            0
                        };
                    let (encrypted, tail) = rest
                        .split_at_checked(len)
                        .ok_or(NoiseError::TruncatedMessage)?;
                    let rs = self.symmetric.decrypt_and_hash(encrypted)?;
                    // Always DH_LEN bytes once decrypted; the check keeps this panic-free.
                    let rs: [u8; DH_LEN] = rs
                        .as_slice()
                        .try_into()
                        .map_err(|_| NoiseError::TruncatedMessage)?;
                    self.rs = Some(rs);
                    rest = tail;
                }
                Token::Ee | Token::Es | Token::Se => self.mix_dh(token)?,
            }
        }
        self.symmetric.decrypt_and_hash(rest)
    }

    /// `ee`, `es` and `se`: which keys meet depends on the role (section 5.3).
    fn mix_dh(&mut self, token: Token) -> Result<(), NoiseError> {
        let initiator = self.role == Role::Initiator;
        let (local, remote) = match token {
            Token::Ee => (&self.e, self.re),
            Token::Es if initiator => (&self.e, self.rs),
            Token::Es => (
                self.s.as_ref().ok_or(NoiseError::MissingStaticKey)?,
                self.re,
            ),
            Token::Se if initiator => (
                self.s.as_ref().ok_or(NoiseError::MissingStaticKey)?,
                self.re,
            ),
            Token::Se => (&self.e, self.rs),
            Token::E | Token::S => return Ok(()),
        };
        let remote = remote.ok_or(NoiseError::MissingRemoteKey)?;
        let shared = dh(&local.secret, &remote)?;
        self.symmetric.mix_key(shared.as_slice());
        Ok(())
    }
}

fn check_static(pattern: Pattern, local_static: Option<&StaticKeypair>) -> Result<(), NoiseError> {
    match (pattern.needs_static(), local_static.is_some()) {
        (true, false) => Err(NoiseError::MissingStaticKey),
        (false, true) => Err(NoiseError::UnexpectedStaticKey),
        _ => Ok(()),
    }
}

/// An established Noise session: one cipher per direction (keys zeroized on drop), the
/// handshake hash and the peer's static key.
///
/// Messages must be decrypted in the order they were encrypted: each direction counts its
/// messages, so a replayed, dropped or reordered message fails to decrypt. Run it over a
/// reliable, ordered stream.
pub struct Transport {
    send: CipherState,
    recv: CipherState,
    handshake_hash: [u8; HASH_LEN],
    remote_static: Option<[u8; DH_LEN]>,
}

impl fmt::Debug for Transport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Transport")
            .field("sent", &self.send.n)
            .field("received", &self.recv.n)
            .field("remote_static", &self.remote_static)
            .finish_non_exhaustive()
    }
}

impl Transport {
    /// Encrypts one message to the peer (empty associated data, as Noise transport messages
    /// have).
    ///
    /// # Errors
    /// [`NoiseError::MessageTooLong`] above [`MAX_PLAINTEXT_LEN`];
    /// [`NoiseError::NonceExhausted`] after 2^64 - 1 messages.
    pub fn encrypt(&mut self, plaintext: &[u8]) -> Result<Vec<u8>, NoiseError> {
        if plaintext.len() > MAX_PLAINTEXT_LEN {
            return Err(NoiseError::MessageTooLong);
        }
        self.send.encrypt_with_ad(&[], plaintext)
    }

    /// Decrypts the peer's next message. On failure the receive nonce does not move, so the
    /// session survives a forged message and the next genuine one still decrypts.
    ///
    /// # Errors
    /// [`NoiseError::MessageTooLong`], [`NoiseError::TruncatedMessage`] (shorter than a tag),
    /// [`NoiseError::DecryptFailed`] or [`NoiseError::NonceExhausted`].
    pub fn decrypt(&mut self, ciphertext: &[u8]) -> Result<Vec<u8>, NoiseError> {
        if ciphertext.len() > MAX_MESSAGE_LEN {
            return Err(NoiseError::MessageTooLong);
        }
        self.recv.decrypt_with_ad(&[], ciphertext)
    }

    /// The handshake hash (Noise section 11.2): equal on both sides of one session and
    /// different for every other, so higher layers sign or MAC it to bind themselves to this
    /// channel.
    #[must_use]
    pub fn handshake_hash(&self) -> [u8; HASH_LEN] {
        self.handshake_hash
    }

    /// The peer's static public key (XX), or `None` (NN). Check it is the expected key.
    #[must_use]
    pub fn remote_static(&self) -> Option<[u8; DH_LEN]> {
        self.remote_static
    }
}

#[cfg(test)]
mod tests {
    use super::{CipherState, NoiseError};

    /// The nonce 2^64 - 1 is reserved (Noise section 5.1): the last usable one is 2^64 - 2,
    /// and after it both directions refuse rather than wrap and reuse a nonce.
    #[test]
    fn nonce_exhaustion_is_refused() {
        let mut send = CipherState::with_key(&[7; 32]);
        let mut recv = CipherState::with_key(&[7; 32]);
        send.n = u64::MAX - 1;
        recv.n = u64::MAX - 1;
        let last = send.encrypt_with_ad(b"ad", b"last").unwrap();
        assert_eq!(
            send.encrypt_with_ad(b"ad", b"more"),
            Err(NoiseError::NonceExhausted)
        );
        assert_eq!(recv.decrypt_with_ad(b"ad", &last).unwrap(), b"last");
        assert_eq!(
            recv.decrypt_with_ad(b"ad", &last),
            Err(NoiseError::NonceExhausted)
        );
        assert_eq!(send.n, u64::MAX);
    }
}
