//! DNS packets for the device client: a TXT question out, the answer's TXT strings in
//! (hickory-proto does the wire format).

use hickory_proto::op::{Edns, Message, MessageType, OpCode, Query as DnsQuestion, ResponseCode};
use hickory_proto::rr::{DNSClass, Name, RData, RecordType};

use crate::Reply;

/// Builds a recursive TXT query for `name` with `id`, advertising `edns_payload` when given.
pub(crate) fn query_packet(
    id: u16,
    name: &str,
    edns_payload: Option<u16>,
) -> Result<Vec<u8>, hickory_proto::ProtoError> {
    let mut message = Message::new(id, MessageType::Query, OpCode::Query);
    message.metadata.recursion_desired = true;
    let mut question = DnsQuestion::query(Name::from_ascii(format!("{name}."))?, RecordType::TXT);
    question.set_query_class(DNSClass::IN);
    message.add_query(question);
    if let Some(payload) = edns_payload {
        let mut edns = Edns::new();
        edns.set_max_payload(payload);
        message.set_edns(edns);
    }
    message.to_vec()
}

/// An answer read from a packet: its id, its question's name and what it says.
#[derive(Debug)]
pub(crate) struct ReadAnswer {
    pub id: u16,
    pub question: String,
    pub reply: Reply,
}

/// Reads a response packet; `None` for anything that is not a response with one question.
pub(crate) fn read_answer(bytes: &[u8]) -> Option<ReadAnswer> {
    let message = Message::from_vec(bytes).ok()?;
    if message.metadata.message_type != MessageType::Response {
        return None;
    }
    let [question] = message.queries.as_slice() else {
        return None;
    };
    let reply = if message.metadata.truncation {
        Reply::Truncated
    } else {
        match message.metadata.response_code {
            ResponseCode::NoError => {
                let txt = message.answers.iter().find_map(|r| match &r.data {
                    RData::TXT(txt) => Some(txt.txt_data.iter().map(|s| s.to_vec()).collect()),
                    _ => None,
                });
                txt.map_or(Reply::NoData, Reply::Txt)
            }
            ResponseCode::NXDomain => Reply::NameError,
            _ => Reply::ServerFailure,
        }
    };
    Some(ReadAnswer {
        id: message.metadata.id,
        question: question.name().to_ascii(),
        reply,
    })
}
