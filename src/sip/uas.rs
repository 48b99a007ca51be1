//! The room's SIP user agent server, sans-IO: requests in, responses out.
//!
//! INVITE is answered by the session once it has set up media: `100 Trying`, `180 Ringing`
//! and `200 OK` with the SDP answer ([`answer_invite`]), or a rejection ([`reject`]). OPTIONS,
//! MESSAGE, INFO, BYE and CANCEL get 200 (an unanswered out-of-dialog MESSAGE makes Jami drop
//! the channel); ACK gets nothing; other methods get 405 with the methods we allow.

use super::CallId;
use sipx_sip::{HeaderName, Method, Request, Response, ResponseBuilder, StatusCode};

/// What the room says it is, in the form jamid reads abilities from (`SIPCall::
/// setPeerUaVersion`, jami-protocol-2026.md §4): `Jami Daemon` and a version below every
/// ability threshold, because the room has none of them yet: several streams per call
/// (≥ 10.0.2), ICE kept across re-INVITEs (≥ 11.0.2; every re-INVITE gets new media here),
/// per-stream ICE numbering (≥ 13.3.0) and several audio streams (≥ 13.11.0). The words after
/// the version (no `-` there: jamid would cut the version at it) name the server.
pub const USER_AGENT: &str = concat!("Jami Daemon 10.0.1 (rdv ", env!("CARGO_PKG_VERSION"), ")");
/// The methods we take; MESSAGE and INFO must be listed or Jami sends neither.
pub const ALLOW: &str = "INVITE, ACK, BYE, CANCEL, OPTIONS, INFO, MESSAGE";
/// Largest SIP message a Jami peer accepts (`PJSIP_MAX_PKT_LEN`).
pub const MAX_MESSAGE: usize = 8000;

/// The responses to a request other than INVITE, in order.
pub fn respond(request: &Request, to_tag: &str) -> Vec<Vec<u8>> {
    let (code, reason) = match request.method {
        Method::Ack => return Vec::new(),
        Method::Invite => return reject(request, 486, "Busy Here", to_tag),
        Method::Options | Method::Message | Method::Info | Method::Bye | Method::Cancel => {
            (200, "OK")
        }
        _ => (405, "Method Not Allowed"),
    };
    build(request, code, reason, Some(to_tag), &[], None).into_iter().collect()
}

/// `100 Trying` then a final error response to an INVITE.
pub fn reject(request: &Request, code: u16, reason: &'static str, to_tag: &str) -> Vec<Vec<u8>> {
    let trying = build(request, 100, "Trying", None, &[], None);
    let final_response = build(request, code, reason, Some(to_tag), &[], None);
    [trying, final_response].into_iter().flatten().collect()
}

/// `100 Trying`, `180 Ringing` and `200 OK` with `sdp`, all naming us in `contact`.
pub fn answer_invite(request: &Request, to_tag: &str, contact: &str, sdp: &str) -> Vec<Vec<u8>> {
    let contact = [(HeaderName::Contact, contact)];
    let trying = build(request, 100, "Trying", None, &[], None);
    let ringing = build(request, 180, "Ringing", Some(to_tag), &contact, None);
    let ok = build(request, 200, "OK", Some(to_tag), &contact, Some(sdp));
    [trying, ringing, ok].into_iter().flatten().collect()
}

/// The Call-ID of a message, if it has a valid one.
pub fn call_id(request: &Request) -> Option<CallId> {
    CallId::parse(&request.headers.value(&HeaderName::CallId)?)
}

/// A response to `request`, with our To tag on everything but 100.
fn build(
    request: &Request,
    code: u16,
    reason: &'static str,
    to_tag: Option<&str>,
    headers: &[(HeaderName, &str)],
    sdp: Option<&str>,
) -> Option<Vec<u8>> {
    let status = StatusCode::new(code)?;
    let mut builder = ResponseBuilder::to_request(request, status, reason).ok()?;
    if let Some(tag) = to_tag {
        let to = request.headers.value(&HeaderName::To)?;
        let to = String::from_utf8_lossy(&to).into_owned();
        if !to.contains(";tag=") {
            builder = builder.set_header(&HeaderName::To, format!("{to};tag={tag}")).ok()?;
        }
    }
    builder = builder
        .header(HeaderName::UserAgent, USER_AGENT)
        .ok()?
        .header(HeaderName::Allow, ALLOW)
        .ok()?;
    for (name, value) in headers {
        builder = builder.header(name.clone(), value.to_string()).ok()?;
    }
    if let Some(sdp) = sdp {
        builder = builder
            .header(HeaderName::ContentType, "application/sdp")
            .ok()?
            .body(sdp.as_bytes().to_vec());
    }
    let response: Response = builder.build();
    let mut bytes = Vec::new();
    response.write_to(&mut bytes);
    (bytes.len() < MAX_MESSAGE).then_some(bytes)
}

#[cfg(test)]
mod tests;
