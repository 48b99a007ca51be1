//! A caller that tries to act as someone else (review H1). Two callers built from the
//! project's own protocol pieces (connection request on the DHT, ICE-TCP, TLS with their
//! chains, the multiplexer, SIP) call a room: the first is one of its moderators. The second
//! learns the moderator's Call-ID (every participant gets it in confInfo's `sinkId`) and
//! places a call with it on its own link: refused with 482. Its confOrders, sent under that
//! Call-ID or on its own call, change nothing; the moderator's own order works.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

mod common;
#[path = "support/hostile_link.rs"]
mod hostile_link;
#[path = "support/python_peer.rs"]
mod python_peer;
#[path = "support/server.rs"]
mod server;

use std::net::TcpStream;
use std::time::SystemTime;

use common::{Rdv, prerequisite, runs};
use hostile_link::{DhtCaller, TlsPeer, mux_message};
use python_peer::{PYTHON, PythonPeer, free_udp_port};
use rdv::identity::{AccountId, RoomIdentity};
use rdv::net::mux::Multiplexer;
use server::Server;
use sipx_sip::{Limits, Message, Response, StreamParser};

/// The multiplexer channel the callers open for SIP (dhtnet numbers from 1).
const SIP_CHANNEL: u16 = 1;

/// A caller's SIP over its device link, once TLS is up and the `sip` channel accepted.
struct SipLink {
    peer: TlsPeer,
    /// Plaintext not yet cut into multiplexer messages.
    plaintext: Vec<u8>,
    sip: StreamParser,
    account: AccountId,
    cseq: u32,
}

impl SipLink {
    /// Completes TLS on `stream` as `identity`, announces the multiplexer and opens `sip`.
    fn open(stream: TcpStream, identity: &RoomIdentity) -> Self {
        let mut link = Self {
            peer: TlsPeer::new(stream, identity),
            plaintext: Vec::new(),
            sip: StreamParser::new(Limits::stream()),
            account: identity.account_id(),
            cseq: 1,
        };
        while link.peer.tls.is_handshaking() {
            let bytes = link.peer.read().unwrap().expect("the room completes TLS");
            link.plaintext.extend(bytes);
            assert!(link.peer.write(&[]));
        }
        let mut mux = Multiplexer::new();
        let mut outgoing: Vec<Vec<u8>> = std::iter::from_fn(|| mux.poll_transmit()).collect();
        outgoing.push(mux_message(0, &rmp_serde::to_vec(&("sip", SIP_CHANNEL, 0u8)).unwrap()));
        assert!(link.peer.write(&outgoing));
        loop {
            let answers = link.messages();
            if answers.iter().any(|(channel, payload)| {
                *channel == 0
                    && rmp_serde::from_slice::<(String, u16, u8)>(payload).ok()
                        == Some(("sip".into(), SIP_CHANNEL, 1))
            }) {
                return link;
            }
            let bytes = link.peer.read().unwrap().expect("the room answers the channel");
            link.plaintext.extend(bytes);
        }
    }

    /// The whole multiplexer messages received so far; beacons are answered.
    fn messages(&mut self) -> Vec<(u16, Vec<u8>)> {
        let mut cursor = std::io::Cursor::new(self.plaintext.as_slice());
        let mut used = 0;
        let mut messages = Vec::new();
        while let Ok((channel, payload)) =
            rmp_serde::from_read::<_, (u16, serde_bytes::ByteBuf)>(&mut cursor)
        {
            used = usize::try_from(cursor.position()).unwrap();
            messages.push((channel, payload.into_vec()));
        }
        self.plaintext.drain(..used);
        let beacons = messages
            .iter()
            .filter(|(channel, payload)| *channel == 0xFFFF && payload == b"\x81\xa1p\xc3")
            .map(|_| mux_message(0xFFFF, b"\x81\xa1p\xc2"))
            .collect::<Vec<_>>();
        assert!(self.peer.write(&beacons));
        messages
    }

    /// Sends a SIP request on the `sip` channel.
    fn send(&mut self, request: &str) {
        assert!(self.peer.write(&[mux_message(SIP_CHANNEL, request.as_bytes())]));
    }

    /// Waits for the room's final response (requests the room sends, such as confInfo, and
    /// provisional responses are skipped).
    fn final_response(&mut self) -> Response {
        loop {
            for (channel, payload) in self.messages() {
                if channel != SIP_CHANNEL {
                    continue;
                }
                for message in self.sip.push(&payload).unwrap() {
                    if let Message::Response(response) = message
                        && response.status.code() >= 200
                    {
                        return response;
                    }
                }
            }
            let bytes = self.peer.read().unwrap().expect("the room answers");
            self.plaintext.extend(bytes);
        }
    }

    /// A request in call `call_id` from this caller, with `body` of `content_type`.
    fn request(&mut self, method: &str, call_id: &str, content_type: &str, body: &str) -> String {
        self.cseq += 1;
        let account = self.account;
        format!(
            "{method} sips:room@127.0.0.1;transport=tls SIP/2.0\r\n\
             Via: SIP/2.0/TLS 127.0.0.1:9;rport;branch=z9hG4bK{call_id}{cseq}\r\n\
             Max-Forwards: 70\r\n\
             From: <sip:{account}@ring.dht>;tag=from{cseq}\r\n\
             To: <sips:room@127.0.0.1;transport=tls>\r\n\
             Contact: <sips:{account}@127.0.0.1:9;transport=tls>\r\n\
             Call-ID: {call_id}\r\n\
             CSeq: {cseq} {method}\r\n\
             User-Agent: Jami Daemon 13.7.0 (linux)\r\n\
             Content-Type: {content_type}\r\n\
             Content-Length: {length}\r\n\r\n{body}",
            cseq = self.cseq,
            length = body.len(),
        )
    }

    /// Places call `call_id` (audio only); the room's final response.
    fn invite(&mut self, call_id: &str) -> u16 {
        let invite = self.request("INVITE", call_id, "application/sdp", OFFER);
        self.send(&invite);
        self.final_response().status.code()
    }

    /// Sends a confOrder in call `call_id`; the room's final response.
    fn order(&mut self, call_id: &str, order: &str) -> u16 {
        let message = self.request("MESSAGE", call_id, "application/confOrder+json", order);
        self.send(&message);
        self.final_response().status.code()
    }
}

/// An audio offer as jamid 13.7 makes it (its candidates lead nowhere: no media flows).
const OFFER: &str = "v=0\r\n\
o=- 1 0 IN IP4 127.0.0.1\r\n\
s=-\r\n\
c=IN IP4 127.0.0.1\r\n\
t=0 0\r\n\
a=ice-ufrag:hostile1\r\n\
a=ice-pwd:hostilehostilehostile12\r\n\
m=audio 9 RTP/SAVP 104\r\n\
a=rtpmap:104 opus/48000/2\r\n\
a=sendrecv\r\n\
a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwd\r\n\
a=candidate:H7f000001 1 UDP 2130706431 127.0.0.1 9 typ host\r\n\
a=candidate:H7f000001 2 UDP 2130706430 127.0.0.1 10 typ host\r\n";

#[test]
fn a_moderators_call_id_on_another_link_is_refused_and_gives_no_rights() {
    if !prerequisite("python3-opendht", runs(PYTHON, &["-c", "import opendht"])) {
        return;
    }
    let rdv = Rdv::new();
    let room = rdv.run(&["room", "create", "lobby", "--json"]).json();
    let (room_device, device_id) = hostile_link::room_device(&room);
    let moderator = RoomIdentity::generate_blocking(SystemTime::now()).unwrap();
    let attacker = RoomIdentity::generate_blocking(SystemTime::now()).unwrap();
    let (moderator_id, attacker_id) =
        (moderator.account_id().to_string(), attacker.account_id().to_string());
    rdv.run(&["room", "moderator", "add", "lobby", &moderator_id]).ok();

    let opendht = PythonPeer::start(free_udp_port(), &[]);
    let mut server = Server::start(&rdv, &[], &opendht.address());
    server.wait_for(&["device announcement stored on the DHT"]);
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let room_ids = (room_device, device_id);

    // The moderator calls.
    let mut caller = DhtCaller::start(&runtime, moderator.clone(), opendht.address(), room_ids);
    let stream = TcpStream::connect(caller.next_answer(&runtime)).unwrap();
    let mut moderator_link = SipLink::open(stream, &moderator);
    assert_eq!(moderator_link.invite("victim-call"), 200);
    server.wait_for(&["participant joined", &moderator_id, "moderator=true"]);

    // The attacker reuses its Call-ID on its own link: 482, logged with its account.
    let room_ids = (caller.room_device.clone(), caller.room_device_id);
    let mut caller = DhtCaller::start(&runtime, attacker.clone(), opendht.address(), room_ids);
    let stream = TcpStream::connect(caller.next_answer(&runtime)).unwrap();
    let mut attacker_link = SipLink::open(stream, &attacker);
    assert_eq!(attacker_link.invite("victim-call"), 482);
    server.wait_for(&["Call-ID is already in use", &attacker_id]);

    // Orders under that Call-ID reach nothing on the attacker's link; on its own call they are
    // refused (it is not a moderator).
    let hang_up_moderator = format!(r#"{{"hangupParticipant": "{moderator_id}"}}"#);
    let mute_moderator = format!(r#"{{"muteParticipant": "{moderator_id}", "muteState": "true"}}"#);
    attacker_link.order("victim-call", &hang_up_moderator);
    attacker_link.order("victim-call", &mute_moderator);
    assert_eq!(attacker_link.invite("attacker-call"), 200);
    server.wait_for(&["participant joined", &attacker_id, "moderator=false"]);
    attacker_link.order("attacker-call", &hang_up_moderator);
    attacker_link.order("attacker-call", &mute_moderator);
    server.wait_for_nth(&["order refused: not a moderator", &attacker_id], 2);

    // The moderator's own order works: and it is the only one carried out.
    let mute_attacker = format!(r#"{{"muteParticipant": "{attacker_id}", "muteState": "true"}}"#);
    moderator_link.order("victim-call", &mute_attacker);
    server.wait_for(&["order carried out", &moderator_id, "MuteAudio"]);
    assert_eq!(server.count(&["order carried out"]), 1, "only the moderator's order");
    assert_eq!(server.count(&["participant left"]), 0, "nobody was hung up");
    assert_eq!(server.count(&["call hung up by a moderator"]), 0);
    assert_eq!(server.stop(), 0);
}
