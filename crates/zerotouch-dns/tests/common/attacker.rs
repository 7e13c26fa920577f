//! An on-path attacker's tools: read every captured packet back into the binding's queries
//! and answers, reassemble the messages they carry, and forge answers that carry other bytes.

use std::collections::BTreeMap;

use hickory_proto::op::Message;
use hickory_proto::rr::rdata::TXT;
use hickory_proto::rr::{RData, Record};
use zerotouch_dns::answer::body_capacity;
use zerotouch_dns::{AnswerPayload, AnswerStatus, NameKind, Query, QueryKind, TunnelId, Zone};

use super::proxy::{Captured, Direction};

/// A message's place: its tunnel and index.
pub type MessageKey = (TunnelId, u8);

/// What the attacker read from a capture.
#[derive(Debug, Default)]
pub struct Reading {
    /// Every query's data, and every answer's payload body, in capture order.
    pub decoded: Vec<Vec<u8>>,
    /// The device's messages, reassembled from the data chunks.
    pub requests: BTreeMap<MessageKey, Vec<u8>>,
    /// The server's responses, reassembled from the data pieces.
    pub responses: BTreeMap<MessageKey, Vec<u8>>,
}

fn question_of(message: &Message, zone: &Zone) -> Option<Query> {
    let name = message.queries.first()?.name().to_ascii();
    match Query::classify(&name, zone).ok()? {
        NameKind::Query(q) => Some(q),
        _ => None,
    }
}

fn payload_of(message: &Message) -> Option<AnswerPayload> {
    message.answers.iter().find_map(|r| match &r.data {
        RData::TXT(txt) => AnswerPayload::from_strings(&txt.txt_data).ok(),
        _ => None,
    })
}

/// Reads every packet of `capture` (UDP datagrams and TCP messages alike).
pub fn read(capture: &[Captured], zone: &Zone) -> Reading {
    let mut reading = Reading::default();
    let mut chunks: BTreeMap<MessageKey, BTreeMap<u16, Vec<u8>>> = BTreeMap::new();
    let mut pieces: BTreeMap<MessageKey, BTreeMap<u16, (u16, Vec<u8>)>> = BTreeMap::new();
    for packet in capture {
        let Ok(message) = Message::from_vec(&packet.bytes) else {
            continue;
        };
        let Some(query) = question_of(&message, zone) else {
            continue;
        };
        let key = (query.header.tunnel, query.header.message);
        match packet.direction {
            Direction::ToUpstream => {
                reading.decoded.push(query.data.clone());
                if matches!(query.header.kind, QueryKind::Data | QueryKind::LastData) {
                    chunks
                        .entry(key)
                        .or_default()
                        .insert(query.header.position, query.data);
                }
            }
            Direction::ToClient => {
                let Some(payload) = payload_of(&message) else {
                    continue;
                };
                reading.decoded.push(payload.body.clone());
                let offset = match query.header.kind {
                    QueryKind::LastData => 0,
                    QueryKind::Poll => query.header.position,
                    _ => continue,
                };
                if payload.status == AnswerStatus::Data {
                    pieces
                        .entry(key)
                        .or_default()
                        .insert(offset, (payload.length, payload.body));
                }
            }
        }
    }
    for (key, parts) in chunks {
        reading
            .requests
            .insert(key, parts.into_values().flatten().collect());
    }
    for (key, parts) in pieces {
        let mut response = Vec::new();
        for (offset, (_, body)) in parts {
            if usize::from(offset) == response.len() {
                response.extend_from_slice(&body);
            }
        }
        reading.responses.insert(key, response);
    }
    reading
}

/// The answer packet `packet` rewritten to carry `forged` as the response to message
/// `message` (of any tunnel): the piece the question asks for, sized as the server would.
/// `None` when the packet answers something else.
pub fn forge(packet: &[u8], zone: &Zone, message: u8, forged: &[u8]) -> Option<Vec<u8>> {
    let mut answer = Message::from_vec(packet).ok()?;
    let query = question_of(&answer, zone)?;
    if query.header.message != message {
        return None;
    }
    let offset = match query.header.kind {
        QueryKind::LastData => 0,
        QueryKind::Poll => usize::from(query.header.position),
        _ => return None,
    };
    let qname = answer.queries.first()?.name().clone();
    let capacity = body_capacity(
        query.header.limit,
        qname.to_ascii().trim_end_matches('.').len() + 2,
    );
    let body = forged.get(offset..)?;
    let payload = AnswerPayload {
        status: AnswerStatus::Data,
        length: u16::try_from(forged.len()).ok()?,
        body: body.get(..capacity.min(body.len()))?.to_vec(),
    };
    let strings = payload.to_strings();
    let txt = TXT::from_bytes(strings.iter().map(Vec::as_slice).collect());
    answer.answers = vec![Record::from_rdata(qname, 0, RData::TXT(txt))];
    answer.to_vec().ok()
}

/// Whether `needle` occurs anywhere in `haystack`.
pub fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty() && haystack.windows(needle.len()).any(|w| w == needle)
}

/// The tunnel an answer packet belongs to.
pub fn tunnel_of(packet: &[u8], zone: &Zone) -> Option<TunnelId> {
    let message = Message::from_vec(packet).ok()?;
    question_of(&message, zone).map(|q| q.header.tunnel)
}
