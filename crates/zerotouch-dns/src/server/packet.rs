//! DNS messages: a request's bytes in, the response's bytes out (hickory-proto on the wire,
//! the handler for the answer).

use std::net::IpAddr;

use hickory_proto::op::{Edns, Message, MessageType, OpCode, ResponseCode};
use hickory_proto::rr::rdata::{SOA, TXT};
use hickory_proto::rr::{DNSClass, Name, RData, Record};
use tracing::debug;
use zerotouch_core::{Instant, Signer};
use zerotouch_store::Store;

use super::DnsServerError;
use super::handler::{DnsHandler, HandlerAnswer, SoaSection};
use crate::Zone;

/// The UDP payload size the server advertises in its OPT record (DNS flag day 2020).
pub const MAX_UDP_PAYLOAD: u16 = 1232;
/// The UDP payload every DNS client accepts, and the most without EDNS.
const CLASSIC_UDP_PAYLOAD: usize = 512;
/// Bytes of a DNS header.
const HEADER_LEN: usize = 12;

/// How a request came.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Via {
    /// A datagram: the response must fit the requester's payload size.
    Udp,
    /// A TCP stream: any size up to 65,535 bytes.
    Tcp,
}

/// The zone's SOA record: TTL 0 and minimum 0, so negative answers are not cached.
pub(crate) fn soa_record(zone: &Zone) -> Result<Record, DnsServerError> {
    let name = |s: &str| Name::from_ascii(s).map_err(|e| DnsServerError::Zone(e.to_string()));
    let apex = name(&format!("{}.", zone.as_str()))?;
    let hostmaster = name(&format!("hostmaster.{}.", zone.as_str()))?;
    let soa = SOA::new(apex.clone(), hostmaster, 1, 3600, 600, 86_400, 0);
    Ok(Record::from_rdata(apex, 0, RData::SOA(soa)))
}

/// Answers requests with a handler.
#[derive(Debug)]
pub(crate) struct Responder<St, S> {
    pub(crate) handler: DnsHandler<St, S>,
    pub(crate) soa: Record,
}

impl<St: Store, S: Signer> Responder<St, S> {
    /// The response to `request` from `client`, or nothing (a response, or too short to say
    /// which query it was).
    pub(crate) async fn respond(
        &self,
        request: &[u8],
        client: IpAddr,
        via: Via,
        now: Instant,
    ) -> Option<Vec<u8>> {
        let request = match Message::from_vec(request) {
            Ok(message) => message,
            Err(error) => {
                debug!(%error, "malformed request");
                return format_error(request);
            }
        };
        if request.message_type != MessageType::Query {
            return None;
        }
        let mut response = Message::response(request.id, request.op_code);
        // Every answer but REFUSED is authoritative.
        response.metadata.authoritative = true;
        response.metadata.recursion_desired = request.recursion_desired;
        response.metadata.checking_disabled = request.checking_disabled;
        if request.edns.is_some() {
            let mut edns = Edns::new();
            edns.set_max_payload(MAX_UDP_PAYLOAD).set_version(0);
            response.set_edns(edns);
        }
        let question = match request.queries.as_slice() {
            [question] => Some(question),
            _ => None,
        };
        if let Some(question) = question {
            // Echoed as received: hickory keeps the name's case on the wire.
            response.add_query(question.clone());
        }
        let edns_version = request.edns.as_ref().map_or(0, Edns::version);
        match question {
            _ if request.op_code != OpCode::Query => {
                response.metadata.response_code = ResponseCode::NotImp;
            }
            _ if edns_version > 0 => response.metadata.response_code = ResponseCode::BADVERS,
            None => response.metadata.response_code = ResponseCode::FormErr,
            Some(q) if q.query_class != DNSClass::IN => {
                response.metadata.response_code = ResponseCode::Refused;
                response.metadata.authoritative = false;
            }
            Some(q) => {
                let qname = q.name.to_ascii();
                let answer = self.handler.answer(&qname, q.query_type, client, now).await;
                self.fill(&mut response, &q.name, answer);
            }
        }
        let limit = match via {
            Via::Tcp => usize::from(u16::MAX),
            // Never above 1,232 bytes over UDP, whatever the requester advertises: a cookie
            // holder spoofing a victim's address gets at most that much sent to it per query.
            Via::Udp => request.edns.as_ref().map_or(CLASSIC_UDP_PAYLOAD, |e| {
                usize::from(e.max_payload())
                    .clamp(CLASSIC_UDP_PAYLOAD, usize::from(MAX_UDP_PAYLOAD))
            }),
        };
        encode(&response, limit)
    }

    fn fill(&self, response: &mut Message, qname: &Name, answer: HandlerAnswer) {
        response.metadata.response_code = answer.rcode;
        response.metadata.authoritative = answer.rcode != ResponseCode::Refused;
        if let Some(payload) = answer.txt {
            let strings = payload.to_strings();
            let txt = TXT::from_bytes(strings.iter().map(Vec::as_slice).collect());
            response.add_answer(Record::from_rdata(qname.clone(), 0, RData::TXT(txt)));
        }
        match answer.soa {
            Some(SoaSection::Answer) => {
                response.add_answer(self.soa.clone());
            }
            Some(SoaSection::Authority) => {
                response.add_authority(self.soa.clone());
            }
            None => {}
        }
    }
}

/// `response` on the wire; larger than `limit`, the same header and question with the TC bit
/// and no records, so the resolver asks again over TCP.
fn encode(response: &Message, limit: usize) -> Option<Vec<u8>> {
    let bytes = match response.to_vec() {
        Ok(bytes) => bytes,
        Err(error) => {
            debug!(%error, "response not encodable");
            let mut failure = Message::response(response.id, response.op_code);
            failure.metadata.response_code = ResponseCode::ServFail;
            failure.metadata.authoritative = true;
            failure.metadata.recursion_desired = response.recursion_desired;
            failure.add_queries(response.queries.iter().cloned());
            failure.edns = response.edns.clone();
            return failure.to_vec().ok();
        }
    };
    if bytes.len() <= limit {
        return Some(bytes);
    }
    debug!(size = bytes.len(), limit, "truncated");
    let mut truncated = Message::response(response.id, response.op_code);
    truncated.metadata = response.metadata;
    truncated.metadata.truncation = true;
    truncated.add_queries(response.queries.iter().cloned());
    truncated.edns = response.edns.clone();
    truncated.to_vec().ok()
}

/// FORMERR for a request that does not decode, if it has a header and is not a response.
fn format_error(request: &[u8]) -> Option<Vec<u8>> {
    let header = request.get(..HEADER_LEN)?;
    let (&[i0, i1, flags], _) = header.split_first_chunk::<3>()?;
    if flags & 0x80 != 0 {
        return None;
    }
    let op_code = OpCode::from_u8((flags >> 3) & 0x0f);
    let mut response =
        Message::error_msg(u16::from_be_bytes([i0, i1]), op_code, ResponseCode::FormErr);
    response.metadata.authoritative = true;
    response.metadata.recursion_desired = flags & 0x01 != 0;
    response.to_vec().ok()
}
