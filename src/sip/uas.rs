//! The room's SIP user agent server, sans-IO: requests in, responses out.
//!
//! Until the media path lands, an INVITE is answered `100 Trying` then `486 Busy Here`, so
//! the caller's call ends at once as BUSY rather than in a timeout. OPTIONS, MESSAGE, INFO
//! and BYE get 200 (an unanswered out-of-dialog MESSAGE makes Jami drop the channel); ACK
//! gets nothing; other methods get 405 with the methods we allow.

use sipx_sip::{HeaderName, Method, Request, Response, ResponseBuilder, StatusCode};

/// What the room says it is (not "Jami Daemon", which would switch callers to modes we do
/// not implement: jami-protocol.md §6.3).
pub const USER_AGENT: &str = concat!("rdv/", env!("CARGO_PKG_VERSION"));
/// The methods we take; MESSAGE and INFO must be listed or Jami sends neither.
pub const ALLOW: &str = "INVITE, ACK, BYE, CANCEL, OPTIONS, INFO, MESSAGE";
/// Largest SIP message a Jami peer accepts (`PJSIP_MAX_PKT_LEN`).
pub const MAX_MESSAGE: usize = 8000;

/// The responses to one request, in order.
pub fn respond(request: &Request, to_tag: &str) -> Vec<Vec<u8>> {
    let (code, reason) = match request.method {
        Method::Ack => return Vec::new(),
        Method::Invite => {
            let trying = build(request, 100, "Trying", None);
            let busy = build(request, 486, "Busy Here", Some(to_tag));
            return [trying, busy].into_iter().flatten().collect();
        }
        Method::Options | Method::Message | Method::Info | Method::Bye | Method::Cancel => {
            (200, "OK")
        }
        _ => (405, "Method Not Allowed"),
    };
    build(request, code, reason, Some(to_tag)).into_iter().collect()
}

/// A response to `request`, with our To tag on everything but 100.
fn build(
    request: &Request,
    code: u16,
    reason: &'static str,
    to_tag: Option<&str>,
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
    let response: Response = builder.build();
    let mut bytes = Vec::new();
    response.write_to(&mut bytes);
    (bytes.len() < MAX_MESSAGE).then_some(bytes)
}

#[cfg(test)]
mod tests;
