//! What the attack tests share: an adversary made of closures, and the byte surgery an
//! attacker on the wire can do (it can read every plain field and every signed payload,
//! since signatures hide nothing; it cannot sign as the server or the device).
#![allow(dead_code)]

use std::cell::RefCell;
use std::rc::Rc;

use ciborium::Value;
use zerotouch_core::flow1::SetupTranscript;
use zerotouch_core::*;
use zerotouch_device::{Event, Path};
use zerotouch_sim::*;
use zerotouch_store::Store;

pub const P: RustCryptoProvider = RustCryptoProvider;

type OnDevice = Box<dyn FnMut(Instant, Path, Vec<u8>) -> Wire>;
type OnServer = Box<dyn FnMut(Instant, Path, Vec<u8>) -> Vec<Vec<u8>>>;

/// An adversary whose two hooks are closures.
pub struct Tap {
    pub on_device: OnDevice,
    pub on_server: OnServer,
}

impl Tap {
    pub fn new() -> Self {
        Tap {
            on_device: Box::new(|_, _, b| Wire::forward(b)),
            on_server: Box::new(|_, _, b| vec![b]),
        }
    }
    pub fn device(mut self, f: impl FnMut(Instant, Path, Vec<u8>) -> Wire + 'static) -> Self {
        self.on_device = Box::new(f);
        self
    }
    pub fn server(
        mut self,
        f: impl FnMut(Instant, Path, Vec<u8>) -> Vec<Vec<u8>> + 'static,
    ) -> Self {
        self.on_server = Box::new(f);
        self
    }
}

impl Adversary for Tap {
    fn on_device_datagram(&mut self, now: Instant, path: Path, bytes: Vec<u8>) -> Wire {
        (self.on_device)(now, path, bytes)
    }
    fn on_server_answer(&mut self, now: Instant, path: Path, bytes: Vec<u8>) -> Vec<Vec<u8>> {
        (self.on_server)(now, path, bytes)
    }
}

/// A shared recording of what an adversary saw.
pub type Seen = Rc<RefCell<Vec<Vec<u8>>>>;

pub fn seen() -> Seen {
    Rc::new(RefCell::new(Vec::new()))
}

pub fn tag_of(bytes: &[u8]) -> Option<MessageTag> {
    Envelope::decode(bytes).ok().map(|e| e.header.tag)
}

pub fn session_of(bytes: &[u8]) -> SessionId {
    Envelope::decode(bytes).unwrap().header.session_id
}

fn envelope_items(bytes: &[u8]) -> Vec<Value> {
    let v: Value = ciborium::from_reader(bytes).unwrap();
    let Value::Array(items) = v else {
        panic!("not an envelope")
    };
    items
}

fn encode(items: Vec<Value>) -> Vec<u8> {
    let mut out = Vec::new();
    ciborium::into_writer(&Value::Array(items), &mut out).unwrap();
    out
}

/// The payload of a signed envelope, read without verifying (anyone on the wire can).
pub fn signed_payload(bytes: &[u8]) -> Vec<u8> {
    let items = envelope_items(bytes);
    let Value::Array(cose) = &items[5] else {
        panic!("not signed")
    };
    let Value::Bytes(p) = &cose[2] else { panic!() };
    p.clone()
}

/// The same envelope with another payload and the original signature.
pub fn with_signed_payload(bytes: &[u8], payload: Vec<u8>) -> Vec<u8> {
    let mut items = envelope_items(bytes);
    let Value::Array(cose) = &mut items[5] else {
        panic!("not signed")
    };
    cose[2] = Value::Bytes(payload);
    encode(items)
}

/// The body of a plain envelope.
pub fn plain_body(bytes: &[u8]) -> Vec<u8> {
    let items = envelope_items(bytes);
    let Value::Bytes(b) = &items[5] else {
        panic!("not plain")
    };
    b.clone()
}

/// The same plain envelope with another body.
pub fn with_plain_body(bytes: &[u8], body: Vec<u8>) -> Vec<u8> {
    let mut items = envelope_items(bytes);
    items[5] = Value::Bytes(body);
    encode(items)
}

/// The same envelope under another session id (signature untouched).
pub fn with_session(bytes: &[u8], sid: SessionId) -> Vec<u8> {
    let mut items = envelope_items(bytes);
    items[3] = Value::Bytes(sid.0.to_vec());
    encode(items)
}

/// The setup transcript t1 after `hello` (everything in it is public).
pub fn t1_of(hello: &[u8], transport: Transport) -> SetupTranscript {
    SetupTranscript::after_hello(&P, transport, &session_of(hello), &plain_body(hello))
}

/// An attacker's own signing key (not pinned by any device).
pub fn attacker_signer() -> SoftwareSigner {
    SoftwareSigner::new(
        SigningKey::from_secret_bytes(SignatureAlgorithm::EcdsaP256Sha256, &[0x66; 32]).unwrap(),
    )
}

pub fn refusals<St: Store>(sim: &Sim<St>) -> Vec<zerotouch_device::Refusal> {
    sim.events()
        .iter()
        .filter_map(|(_, e)| match e {
            Event::MessageRefused { reason } => Some(reason.clone()),
            _ => None,
        })
        .collect()
}

pub fn joins<St: Store>(sim: &Sim<St>) -> Vec<(Vec<u8>, Vec<u8>)> {
    sim.events()
        .iter()
        .filter_map(|(_, e)| match e {
            Event::Join {
                ssid, passphrase, ..
            } => Some((ssid.clone(), passphrase.expose_secret().to_vec())),
            _ => None,
        })
        .collect()
}

/// The SSIDs of every `Join` the device was told to make, in order.
pub fn join_attempts<St: Store>(sim: &Sim<St>) -> Vec<Vec<u8>> {
    joins(sim).into_iter().map(|(ssid, _)| ssid).collect()
}

/// Why each session failed, in order.
pub fn session_failures<St: Store>(sim: &Sim<St>) -> Vec<zerotouch_device::Failure> {
    sim.events()
        .iter()
        .filter_map(|(_, e)| match e {
            Event::SessionFailed { reason } => Some(reason.clone()),
            _ => None,
        })
        .collect()
}

/// The error message in an answer, if it is one.
pub fn error_of(bytes: &[u8]) -> Option<ErrorMessage> {
    let env = Envelope::decode(bytes).ok()?;
    if env.header.tag != MessageTag::Error {
        return None;
    }
    let Body::Plain(b) = env.body else {
        return None;
    };
    ErrorMessage::decode_body(&b).ok()
}

/// The error code in an answer, if it is an error.
pub fn code_of(bytes: &[u8]) -> Option<ErrorCode> {
    error_of(bytes).map(|e| e.code)
}

/// The SSIDs the device ended up on.
pub fn joined<St: Store>(sim: &Sim<St>) -> Vec<Vec<u8>> {
    sim.events()
        .iter()
        .filter_map(|(_, e)| match e {
            Event::Joined { ssid } => Some(ssid.clone()),
            _ => None,
        })
        .collect()
}

/// Messages with `tag` the device sent.
pub fn sent_by_device<St: Store>(sim: &Sim<St>, tag: MessageTag) -> Vec<Vec<u8>> {
    sim.trace()
        .iter()
        .filter(|s| s.sender == Sender::Device && s.tag() == Some(tag))
        .map(|s| s.bytes.clone())
        .collect()
}

/// Answers with `tag` the server sent.
pub fn sent_by_server<St: Store>(sim: &Sim<St>, tag: MessageTag) -> Vec<Vec<u8>> {
    sim.trace()
        .iter()
        .filter(|s| s.sender == Sender::Server && s.tag() == Some(tag))
        .map(|s| s.bytes.clone())
        .collect()
}

pub fn complete(checked: bool) -> Outcome {
    Outcome::Stopped(Event::Complete {
        revocation_checked: checked,
    })
}

pub fn gave_up(o: &Outcome) -> bool {
    matches!(o, Outcome::Stopped(Event::GaveUp { .. }))
}
