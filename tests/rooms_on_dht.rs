//! `rdv run` publishes its rooms on the DHT and takes connection requests, checked with a real
//! OpenDHT node (python3-opendht) and with a caller built like jamid's.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

mod common;
#[path = "support/python_peer.rs"]
mod python_peer;
#[path = "support/server.rs"]
mod server;

use std::time::SystemTime;

use common::{Rdv, wait_announced};
use python_peer::{OpenDht, PythonPeer, free_udp_port};
use rdv::dht::InfoHash;
use rdv::dht::crypto::{PrivateKey, PublicKey};
use rdv::dht::driver::{DriverConfig, spawn};
use rdv::dht::node::NodeConfig;
use rdv::dht::value::{Body, ValueType};
use rdv::identity::RoomIdentity;
use rdv::presence::{PeerConnectionData, ProtocolEra, certificate_value, seal};
use serde_json::json;
use server::Server;

#[test]
fn a_room_is_published_and_takes_verified_requests() {
    for generation in OpenDht::available() {
        eprintln!("--- OpenDHT {generation:?}");
        published_and_takes_requests(generation);
    }
}

fn published_and_takes_requests(generation: OpenDht) {
    let rdv = Rdv::new();
    let room = rdv.run(&["room", "create", "lobby", "--json"]).json();
    let jami_id: InfoHash = room["jami_id"].as_str().unwrap().parse().unwrap();
    let device_id: InfoHash = room["device_id"].as_str().unwrap().parse().unwrap();

    let mut opendht = PythonPeer::start_with(generation, free_udp_port(), &[]);
    let mut server = Server::start(&rdv, &[], &opendht.address());
    server.wait_for(&["room listening for calls on the DHT", "lobby"]);
    server.wait_for(&["device announcement stored on the DHT"]);
    server.wait_for(&["device certificate stored on the DHT"]);

    // A real OpenDHT node sees the announcement at the Jami ID, signed by that account.
    let got = opendht.command(json!({"cmd": "get", "key": jami_id.to_string(), "signed": true}));
    let announcement = &got["values"][0];
    assert_eq!(announcement["owner"], jami_id.to_string(), "signed by the account: {got}");
    #[derive(serde::Deserialize)]
    struct Announcement {
        dev: serde_bytes::ByteBuf,
        pk: serde_bytes::ByteBuf,
    }
    let data = hex::decode(announcement["data"].as_str().unwrap()).unwrap();
    let decoded: Announcement = rmp_serde::from_slice(&data).unwrap();
    assert_eq!(decoded.dev.as_slice(), device_id.as_bytes());
    assert_eq!(PublicKey::from_spki_der(&decoded.pk).unwrap().id(), device_id);

    // ... and the device certificate at the device id.
    let got = opendht.command(json!({"cmd": "get", "key": device_id.to_string()}));
    let data = hex::decode(got["values"][0]["data"].as_str().unwrap()).unwrap();
    let pem: serde_bytes::ByteBuf = rmp_serde::from_slice(&data).unwrap();
    assert_eq!(std::str::from_utf8(&pem).unwrap(), room["certificate_chain_pem"].as_str().unwrap());
    // ... and at the hash of its long id, where today's callers look (OpenDHT 2.4.12 nodes
    // refuse to keep it there; 4.3.1 nodes keep it).
    if generation == OpenDht::V4_3 {
        let long_id: rdv::identity::DeviceLongId =
            room["device_long_id"].as_str().unwrap().parse().unwrap();
        let key = InfoHash::from(long_id);
        let got = opendht.command(json!({"cmd": "get", "key": key.to_string()}));
        let data = hex::decode(got["values"][0]["data"].as_str().unwrap()).unwrap();
        let pem: serde_bytes::ByteBuf = rmp_serde::from_slice(&data).unwrap();
        assert_eq!(
            std::str::from_utf8(&pem).unwrap(),
            room["certificate_chain_pem"].as_str().unwrap()
        );
    }

    // A caller, built as jamid builds one: its own chain on the DHT, then a request sealed
    // to the room's device and signed by the caller's device, at the room's peer key.
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let caller = RoomIdentity::generate_blocking(SystemTime::now()).unwrap();
    let caller_key = PrivateKey::from_pem(caller.device().private_key.expose()).unwrap();
    let room_device =
        PublicKey::from_spki_der(&pem_leaf_spki(room["certificate_chain_pem"].as_str().unwrap()))
            .unwrap();
    let room_peer_key = ProtocolEra::Legacy.peer_key(&room_device);
    assert_eq!(room_peer_key, InfoHash::of(format!("peer:{device_id}").as_bytes()));
    let request_value = |id: u64| {
        let data = PeerConnectionData {
            id,
            ice_msg: "u\np\n".into(),
            is_answer: false,
            connection_type: "videoCall".into(),
        };
        seal(&caller_key, &room_device, 31337 + id, data.into_body()).unwrap()
    };
    let dht = runtime.block_on(async {
        let node = NodeConfig::new(InfoHash::of(b"caller node"));
        let (dht, _task) =
            spawn(DriverConfig { node, port: 0, ipv6: false, bootstrap: vec![opendht.address()] })
                .await
                .unwrap();
        let mut published = dht
            .announce(caller.device_id().into(), certificate_value(&caller), true)
            .await
            .unwrap();
        wait_announced(&mut published.events).await;

        let mut put = dht.announce(room_peer_key, request_value(777), false).await.unwrap();
        wait_announced(&mut put.events).await;

        // Junk at the peer key: a plain, unencrypted value. Dropped and counted, not fatal.
        let junk = rdv::dht::value::Value::new(
            5,
            rdv::dht::value::Content::Clear {
                body: Body::new(ValueType::USER_DATA, b"junk".to_vec()),
                signature: None,
            },
        );
        let mut junk = dht.announce(room_peer_key, junk, false).await.unwrap();
        let _ = junk.events.recv().await;
        dht
    });
    let line = server.wait_for(&["verified connection request", "lobby"]);
    assert!(
        line.contains(&caller.account_id().to_string()),
        "logged with the caller's account id: {line}"
    );
    assert!(line.contains("request_id=777"), "{line}");
    assert!(line.contains("key=legacy"), "{line}");
    server.wait_for(&["dropped a value at our peer key"]);

    // Today's caller (dhtnet LegacyMode::Disabled, OpenDHT ≥ 3.7.2): its certificate only at
    // the hash of its long id, its request only at the room's key of the room's long id.
    let today = RoomIdentity::generate_blocking(SystemTime::now()).unwrap();
    let today_key = PrivateKey::from_pem(today.device().private_key.expose()).unwrap();
    runtime.block_on(async {
        let certificate_key = ProtocolEra::Current.certificate_key(today_key.public_key());
        assert_eq!(certificate_key, InfoHash::from(today.device_long_id()));
        let mut published =
            dht.announce(certificate_key, certificate_value(&today), true).await.unwrap();
        wait_announced(&mut published.events).await;
        let data = PeerConnectionData {
            id: 2026,
            ice_msg: "u\np\n".into(),
            is_answer: false,
            connection_type: "videoCall".into(),
        };
        let value = seal(&today_key, &room_device, 2026, data.into_body()).unwrap();
        let room_key = ProtocolEra::Current.peer_key(&room_device);
        let long_id = room["device_long_id"].as_str().unwrap();
        assert_eq!(room_key, InfoHash::of(format!("peer:{long_id}").as_bytes()));
        let mut put = dht.announce(room_key, value, false).await.unwrap();
        wait_announced(&mut put.events).await;
    });
    let line = server.wait_for(&["verified connection request", "request_id=2026"]);
    assert!(line.contains(&today.account_id().to_string()), "{line}");
    assert!(line.contains("key=current"), "{line}");

    // The admission policy, changed from the CLI while the server runs: a banned caller and
    // one missing from an allow-list are refused, logged with their account id and counted.
    let caller_id = caller.account_id().to_string();
    let call = |id: u64| {
        runtime.block_on(async {
            let mut put = dht.announce(room_peer_key, request_value(id), false).await.unwrap();
            wait_announced(&mut put.events).await;
        });
    };
    // The CLI writes the store; the running server takes it at its next sync (within 2 s).
    rdv.run(&["room", "ban", "lobby", &caller_id]).ok();
    server.wait_for_nth(&["room roles changed"], 1);
    call(778);
    let line = server.wait_for(&["refused a caller", "reason=banned", &caller_id]);
    assert!(line.contains("refused=1"), "{line}");
    rdv.run(&["room", "unban", "lobby", &caller_id]).ok();
    rdv.run(&["room", "admission", "lobby", "allow-list"]).ok();
    server.wait_for_nth(&["room roles changed"], 2);
    server.wait_for(&["room policy changed", "AllowList"]);
    call(779);
    let line = server.wait_for(&["refused a caller", "not on the allow-list", &caller_id]);
    assert!(line.contains("refused=2"), "{line}");

    assert_eq!(server.stop(), 0, "clean exit on SIGTERM");
}

fn pem_leaf_spki(chain: &str) -> Vec<u8> {
    rdv::identity::verify_device_chain(chain).unwrap().public_keys_der()[0].clone()
}
