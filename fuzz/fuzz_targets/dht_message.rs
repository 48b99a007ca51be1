//! The DHT message decoder on arbitrary datagrams: it must never panic, and what it decodes
//! must survive an encode/decode round trip unchanged.
#![no_main]

use rdv::dht::wire::Message;

libfuzzer_sys::fuzz_target!(|datagram: &[u8]| {
    if let Ok(message) = Message::decode(datagram) {
        let encoded = message.encode();
        assert_eq!(Message::decode(&encoded).as_ref(), Ok(&message), "round trip of {message:?}");
    }
});
