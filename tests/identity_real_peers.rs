//! The chain `rdv room show --json` prints, checked by real Jami-side software: OpenDHT, the
//! library jamid uses (Debian's 2.4.12 and today's 4.3.1), and GnuTLS's certtool.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

mod common;
#[path = "support/python_peer.rs"]
mod python_peer;

use std::process::Command;

use common::{Rdv, prerequisite, runs};
use python_peer::OpenDht;

/// Loads the chain with OpenDHT, prints the ids it derives, and verifies the device
/// certificate with a trust list holding only the top issuer, as Jami does for a peer.
const OPENDHT_CHECK: &str = r#"
import json, sys
import opendht as dht
room = json.load(sys.stdin)
device = dht.Certificate(room["certificate_chain_pem"].encode())
account = device.issuer
ca = account.issuer
trust = dht.TrustList()
trust.add(ca)
stranger = dht.TrustList()
stranger.add(dht.Identity.generate("Jami CA", bits=2048).certificate)
long_id = device.getLongId() if hasattr(device, "getLongId") else None
# 2.4 names are bytes and a root's issuer an empty certificate; 4.x gives str and None.
name = lambda cert: cert.getName().decode() if isinstance(cert.getName(), bytes) else cert.getName()
print(json.dumps({
    "device_id": str(device.getId()),
    "device_long_id": str(long_id) if long_id is not None else None,
    "account_id": str(account.getId()),
    "names": [name(device), name(account), name(ca)],
    "ca_is_root": ca.issuer is None or str(ca.issuer.getId()) == "0" * 40,
    "trusted": bool(trust.verify(device)),
    "trusted_by_stranger": bool(stranger.verify(device)),
}))
"#;

fn created_room(rdv: &Rdv) -> serde_json::Value {
    rdv.run(&["room", "create", "interop", "--json"]).ok();
    rdv.run(&["room", "show", "interop", "--json"]).json()
}

#[test]
fn opendht_derives_the_same_ids_and_trusts_the_chain() {
    let rdv = Rdv::new();
    let room = created_room(&rdv);
    for generation in OpenDht::available() {
        eprintln!("--- OpenDHT {generation:?}");
        opendht_checks(generation, &room);
    }
}

fn opendht_checks(generation: OpenDht, room: &serde_json::Value) {
    let mut child = generation
        .python()
        .args(["-c", OPENDHT_CHECK])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    serde_json::to_writer(child.stdin.take().unwrap(), room).unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(output.status.success(), "OpenDHT {generation:?} failed");
    let opendht: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();

    assert_eq!(opendht["device_id"], room["device_id"]);
    if generation == OpenDht::V4_3 {
        // The long id (dhtnet's device id, the key of today's `peer:` and certificate keys).
        assert_eq!(opendht["device_long_id"], room["device_long_id"]);
    }
    assert_eq!(opendht["account_id"], room["jami_id"]);
    assert_eq!(opendht["names"], serde_json::json!(["Jami device", "Jami", "Jami CA"]));
    assert_eq!(opendht["ca_is_root"], true);
    assert_eq!(opendht["trusted"], true, "OpenDHT's trust list rejects the chain");
    assert_eq!(opendht["trusted_by_stranger"], false, "the trust check is not vacuous");
}

#[test]
fn gnutls_certtool_verifies_the_chain() {
    if !prerequisite("certtool (Debian gnutls-bin)", runs("certtool", &["--version"])) {
        return;
    }
    let rdv = Rdv::new();
    let room = created_room(&rdv);
    let chain = rdv.path().join("chain.pem");
    let pem = room["certificate_chain_pem"].as_str().unwrap();
    std::fs::write(&chain, pem).unwrap();
    let (verified, report) = certtool_verify_chain(&chain);
    assert!(verified, "certtool refused the chain:\n{report}");
    assert!(report.contains("Chain verification output: Verified."), "{report}");
    assert_eq!(report.matches("Signature algorithm: RSA-SHA384").count(), 2, "{report}");

    // The same tool refuses the chain once a signature is damaged, so the check has teeth.
    let blocks: Vec<&str> = pem.split_inclusive("-----END CERTIFICATE-----\n").collect();
    std::fs::write(&chain, [&damage_signature(blocks[0]), blocks[1], blocks[2]].concat()).unwrap();
    let (verified, report) = certtool_verify_chain(&chain);
    assert!(!verified, "certtool accepted a damaged signature");
    assert!(report.contains("The signature in the certificate is invalid"), "{report}");
}

/// Runs `certtool --verify-chain` on a PEM file: whether it verified, and its report.
fn certtool_verify_chain(path: &std::path::Path) -> (bool, String) {
    let output =
        Command::new("certtool").arg("--verify-chain").arg("--infile").arg(path).output().unwrap();
    (output.status.success(), String::from_utf8_lossy(&output.stdout).into_owned())
}

/// Flips the last bit of a PEM certificate's DER, which lies in its signature.
fn damage_signature(pem: &str) -> String {
    use base64::Engine as _;
    let engine = base64::engine::general_purpose::STANDARD;
    let body: String = pem.lines().filter(|line| !line.starts_with("-----")).collect();
    let mut der = engine.decode(body).unwrap();
    *der.last_mut().unwrap() ^= 0x01;
    format!("-----BEGIN CERTIFICATE-----\n{}\n-----END CERTIFICATE-----\n", engine.encode(der))
}
