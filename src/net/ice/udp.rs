//! Media ICE over UDP, controlled side, sans-IO (jami-protocol.md §6.4). The caller (pjnath,
//! controlling, full) checks every pair and nominates one per component; the room answers
//! its checks and takes the nominated address as where to send. The room sends no checks of
//! its own: a controlling full agent needs none from us to validate and select a pair.
//!
//! One [`IceUdpComponent`] per local socket (RTP or RTCP of a stream). Datagrams that are not
//! STUN are media (RTP/RTCP, first byte 128–191) and are left to the caller.

use std::net::SocketAddr;

use rtc_stun::message::{CLASS_REQUEST, METHOD_BINDING, Message};

use super::stun::{Role, answer_check};
use super::tcp::Credentials;

/// What a received datagram was.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UdpReceived {
    /// An ICE check: send `response` back to its source.
    Check {
        /// The response to send to `to`.
        response: Vec<u8>,
        /// Where to send it.
        to: SocketAddr,
        /// This check nominated its pair: media now goes to `to`.
        nominated: bool,
    },
    /// RTP or RTCP: the media path's.
    Media,
    /// Dropped (not authentic, or neither STUN nor media).
    Dropped,
}

/// One component (the RTP or RTCP socket of a stream) of a media ICE session.
#[derive(Debug)]
pub struct IceUdpComponent {
    local: Credentials,
    remote_ufrag: String,
    selected: Option<SocketAddr>,
    dropped: u64,
}

impl IceUdpComponent {
    /// A component answering checks signed with `local`'s password from the peer `remote_ufrag`.
    pub fn new(local: Credentials, remote_ufrag: String) -> Self {
        Self { local, remote_ufrag, selected: None, dropped: 0 }
    }

    /// Where the caller nominated us to send, once it has.
    pub fn selected(&self) -> Option<SocketAddr> {
        self.selected
    }

    /// Datagrams dropped so far.
    pub fn dropped(&self) -> u64 {
        self.dropped
    }

    /// Classifies and, for checks, answers a datagram from `from`.
    pub fn receive(&mut self, datagram: &[u8], from: SocketAddr) -> UdpReceived {
        match datagram.first() {
            Some(0..=3) => {}
            Some(128..=191) => return UdpReceived::Media,
            _ => {
                self.dropped += 1;
                return UdpReceived::Dropped;
            }
        }
        let mut message = Message::new();
        if message.unmarshal_binary(datagram).is_err()
            || message.typ.method != METHOD_BINDING
            || message.typ.class != CLASS_REQUEST
        {
            // Responses and indications never come to a responder; junk is counted.
            self.dropped += 1;
            return UdpReceived::Dropped;
        }
        let Some(answer) =
            answer_check(&mut message, &self.local, &self.remote_ufrag, Role::Controlled, from)
        else {
            self.dropped += 1;
            return UdpReceived::Dropped;
        };
        if !answer.valid {
            self.dropped += 1;
        }
        if answer.nominated {
            self.selected = Some(from);
        }
        UdpReceived::Check { response: answer.response, to: from, nominated: answer.nominated }
    }
}

#[cfg(test)]
mod tests {
    use rtc_crypto::providers::RingCrypto;
    use rtc_stun::attributes::{ATTR_ICE_CONTROLLING, ATTR_USE_CANDIDATE, ATTR_USERNAME};
    use rtc_stun::fingerprint::FINGERPRINT;
    use rtc_stun::integrity::MessageIntegrity;
    use rtc_stun::message::{BINDING_REQUEST, BINDING_SUCCESS, Setter as _, TransactionId};
    use rtc_stun::textattrs::TextAttribute;

    use super::*;

    fn ours() -> Credentials {
        Credentials { ufrag: "room".into(), pwd: "roompassword0123456789ab".into() }
    }

    /// A check as pjnath (controlling) sends it.
    fn check(pwd: &str, nominate: bool) -> Vec<u8> {
        let mut request = Message::new();
        request
            .build(&[
                Box::new(TransactionId::new()),
                Box::new(BINDING_REQUEST),
                Box::new(TextAttribute::new(ATTR_USERNAME, "room:call".into())),
            ])
            .unwrap();
        request.add(ATTR_ICE_CONTROLLING, &7u64.to_be_bytes());
        if nominate {
            request.add(ATTR_USE_CANDIDATE, &[]);
        }
        MessageIntegrity::new_short_term_integrity_with_provider(pwd.into(), &RingCrypto)
            .add_to(&mut request)
            .unwrap();
        FINGERPRINT.add_to(&mut request).unwrap();
        request.raw
    }

    #[test]
    fn checks_are_answered_and_the_nominated_address_is_selected() {
        let mut component = IceUdpComponent::new(ours(), "call".into());
        let from: SocketAddr = "198.18.0.1:40000".parse().unwrap();
        let UdpReceived::Check { response, to, nominated } =
            component.receive(&check(&ours().pwd, false), from)
        else {
            panic!("a check")
        };
        assert_eq!((to, nominated, component.selected()), (from, false, None));
        let mut parsed = Message::new();
        parsed.unmarshal_binary(&response).unwrap();
        assert_eq!(parsed.typ, BINDING_SUCCESS);
        MessageIntegrity::check(&mut parsed, ours().pwd.as_bytes(), &RingCrypto).unwrap();

        let other: SocketAddr = "198.18.0.1:40004".parse().unwrap();
        assert!(matches!(
            component.receive(&check(&ours().pwd, true), other),
            UdpReceived::Check { nominated: true, .. }
        ));
        assert_eq!(component.selected(), Some(other));
    }

    #[test]
    fn media_passes_and_forgeries_and_junk_are_dropped() {
        let mut component = IceUdpComponent::new(ours(), "call".into());
        let from: SocketAddr = "198.18.0.1:40000".parse().unwrap();
        assert_eq!(component.receive(&[0x80, 104, 0, 1], from), UdpReceived::Media);
        // A nomination signed with the wrong password selects nothing.
        let forged = component.receive(&check("not our password", true), from);
        assert!(matches!(forged, UdpReceived::Check { nominated: false, .. }));
        assert_eq!(component.selected(), None);
        assert_eq!(component.receive(&[0x40; 30], from), UdpReceived::Dropped);
        assert_eq!(component.receive(&[0x00, 0x01, 0x00], from), UdpReceived::Dropped);
        assert_eq!(component.dropped(), 3);
    }
}
