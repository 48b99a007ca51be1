//! Answering a peer's ICE connectivity check (RFC 8445 §7.3), shared by the device link's
//! ICE-TCP and the media ICE-UDP: authenticate the Binding request with our password, and
//! answer success with XOR-MAPPED-ADDRESS, 401 when it does not authenticate, or 487 when the
//! peer claims the role we hold.

use std::net::SocketAddr;

use rtc_crypto::providers::RingCrypto;
use rtc_stun::attributes::{
    ATTR_ICE_CONTROLLED, ATTR_ICE_CONTROLLING, ATTR_USE_CANDIDATE, ATTR_USERNAME,
    ATTR_XORMAPPED_ADDRESS,
};
use rtc_stun::error_code::{CODE_ROLE_CONFLICT, CODE_UNAUTHORIZED};
use rtc_stun::fingerprint::FINGERPRINT;
use rtc_stun::integrity::MessageIntegrity;
use rtc_stun::message::{BINDING_ERROR, BINDING_SUCCESS, Message, Setter};
use rtc_stun::textattrs::TextAttribute;
use rtc_stun::xoraddr::XorMappedAddress;

use super::tcp::Credentials;

/// Our role in an ICE session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// We nominate (device links).
    Controlling,
    /// The peer nominates (media, where the caller controls).
    Controlled,
}

/// What answering a check found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckAnswer {
    /// The response to send back to where the request came from.
    pub response: Vec<u8>,
    /// The request authenticated and did not conflict: the pair works.
    pub valid: bool,
    /// It carried USE-CANDIDATE: the peer nominates this pair.
    pub nominated: bool,
}

/// Answers a Binding request from `peer`, checked against our credentials (`local`) and the
/// peer's ufrag.
pub fn answer_check(
    request: &mut Message,
    local: &Credentials,
    remote_ufrag: &str,
    role: Role,
    peer: SocketAddr,
) -> Option<CheckAnswer> {
    let crypto = RingCrypto;
    let expected_user = format!("{}:{}", local.ufrag, remote_ufrag);
    let username = TextAttribute::get_from_as(request, ATTR_USERNAME).ok();
    let authentic = FINGERPRINT.check(request).is_ok()
        && username.is_some_and(|u| u.text == expected_user)
        && MessageIntegrity::check(request, local.pwd.as_bytes(), &crypto).is_ok();
    let conflict = match role {
        Role::Controlling => request.contains(ATTR_ICE_CONTROLLING),
        Role::Controlled => request.contains(ATTR_ICE_CONTROLLED),
    };
    let integrity =
        || MessageIntegrity::new_short_term_integrity_with_provider(local.pwd.clone(), &crypto);
    let mut response = Message::new();
    let built = if !authentic {
        response.build(&[
            Box::new(request.transaction_id),
            Box::new(BINDING_ERROR),
            Box::new(CODE_UNAUTHORIZED),
            Box::new(FINGERPRINT),
        ])
    } else if conflict {
        // We keep our role: the room always controls device links, callers control media.
        response.build(&[
            Box::new(request.transaction_id),
            Box::new(BINDING_ERROR),
            Box::new(CODE_ROLE_CONFLICT),
            Box::new(integrity()),
            Box::new(FINGERPRINT),
        ])
    } else {
        let mapped = XorMappedAddress { ip: peer.ip(), port: peer.port() };
        response
            .build(&[Box::new(request.transaction_id), Box::new(BINDING_SUCCESS)])
            .and_then(|()| mapped.add_to_as(&mut response, ATTR_XORMAPPED_ADDRESS))
            .and_then(|()| integrity().add_to(&mut response))
            .and_then(|()| FINGERPRINT.add_to(&mut response))
    };
    built.ok()?;
    let valid = authentic && !conflict;
    Some(CheckAnswer {
        response: response.raw,
        valid,
        nominated: valid && request.contains(ATTR_USE_CANDIDATE),
    })
}
