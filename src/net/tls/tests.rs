//! Real TLS handshakes in memory: our client against a rustls server that behaves like the
//! caller's side (client certificate required, the caller's chain presented).

use std::sync::OnceLock;
use std::time::SystemTime;

use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::{DistinguishedName, ServerConfig, ServerConnection};

use super::*;

fn identities() -> &'static (RoomIdentity, RoomIdentity) {
    static IDENTITIES: OnceLock<(RoomIdentity, RoomIdentity)> = OnceLock::new();
    IDENTITIES.get_or_init(|| {
        let generate = || RoomIdentity::generate_blocking(SystemTime::now()).unwrap();
        (generate(), generate())
    })
}

/// Accepts any client chain (what it presents is checked by the test).
#[derive(Debug)]
struct AnyClient(WebPkiSupportedAlgorithms);

impl ClientCertVerifier for AnyClient {
    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &[]
    }

    fn verify_client_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        Ok(ClientCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.0)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.0)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        SCHEMES.to_vec()
    }
}

/// The caller's side: a TLS server presenting `identity`'s chain.
fn server(identity: &RoomIdentity) -> ServerConnection {
    let provider = Arc::new(provider());
    let (chain, key) = device_credentials(identity).unwrap();
    let verifier = Arc::new(AnyClient(provider.signature_verification_algorithms));
    let config = ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])
        .unwrap()
        .with_client_cert_verifier(verifier)
        .with_single_cert(chain, key)
        .unwrap();
    ServerConnection::new(Arc::new(config)).unwrap()
}

/// Runs the handshake in memory; returns the client's error, if any.
fn handshake(
    client: &mut rustls::ClientConnection,
    server: &mut ServerConnection,
) -> Result<(), rustls::Error> {
    for _ in 0..10 {
        let mut bytes = Vec::new();
        while client.wants_write() {
            client.write_tls(&mut bytes).unwrap();
        }
        let mut slice = bytes.as_slice();
        while !slice.is_empty() {
            server.read_tls(&mut slice).unwrap();
            server.process_new_packets()?;
        }
        let mut bytes = Vec::new();
        while server.wants_write() {
            server.write_tls(&mut bytes).unwrap();
        }
        let mut slice = bytes.as_slice();
        while !slice.is_empty() {
            client.read_tls(&mut slice).unwrap();
            client.process_new_packets()?;
        }
        if !client.is_handshaking() && !server.is_handshaking() {
            return Ok(());
        }
    }
    Err(rustls::Error::General("handshake did not finish".into()))
}

/// The caller's device as its connection request names it.
fn expected(caller: &RoomIdentity) -> ExpectedPeer {
    ExpectedPeer {
        device_key: caller.chain().public_keys_der()[0].clone(),
        account: caller.account_id(),
    }
}

fn verifier(expected: ExpectedPeer) -> PinnedDevice {
    PinnedDevice { expected, algorithms: provider().signature_verification_algorithms }
}

/// What the verifier says of `chain` (DER, leaf first) presented by the caller.
fn verdict(verifier: &PinnedDevice, chain: &[Vec<u8>]) -> Result<(), rustls::Error> {
    let chain: Vec<CertificateDer<'_>> =
        chain.iter().map(|der| CertificateDer::from(der.as_slice())).collect();
    let name = peer_name("198.18.0.1".parse().unwrap());
    verifier.verify_server_cert(&chain[0], &chain[1..], &name, &[], UnixTime::now()).map(|_| ())
}

#[test]
fn the_callers_device_is_accepted_and_ours_is_presented() {
    let (room, caller) = identities();
    let config = client_config(room, expected(caller)).unwrap();
    let mut client =
        rustls::ClientConnection::new(config, peer_name("198.18.0.1".parse().unwrap())).unwrap();
    let mut server = server(caller);
    handshake(&mut client, &mut server).unwrap();
    assert_eq!(client.protocol_version(), Some(rustls::ProtocolVersion::TLSv1_3));
    let presented: Vec<Vec<u8>> =
        server.peer_certificates().unwrap().iter().map(|c| c.to_vec()).collect();
    assert_eq!(presented, room.chain().certificates_der(), "our whole chain, leaf first");
}

#[test]
fn another_device_is_refused() {
    let (room, caller) = identities();
    // We expect the room's own device: the caller's chain is not it.
    let config = client_config(room, expected(room)).unwrap();
    let mut client =
        rustls::ClientConnection::new(config, peer_name("198.18.0.1".parse().unwrap())).unwrap();
    let error = handshake(&mut client, &mut server(caller)).unwrap_err();
    assert!(matches!(error, rustls::Error::InvalidCertificate(_)), "{error:?}");
}

#[test]
fn a_renewed_certificate_for_the_same_device_is_accepted() {
    // As today's dhtnet compares keys, not whole chains: a caller whose device certificate
    // was renewed after it published the old one is still the same device.
    let (_, caller) = identities();
    let renewed = crate::identity::generate::recertified_device(caller.device(), caller).unwrap();
    assert_ne!(renewed[0], caller.chain().certificates_der()[0]);
    verdict(&verifier(expected(caller)), &renewed).unwrap();
    verdict(&verifier(expected(caller)), caller.chain().certificates_der()).unwrap();
}

#[test]
fn a_chain_that_does_not_prove_the_device_and_account_is_refused() {
    let (room, caller) = identities();
    let verifier = verifier(expected(caller));
    // The caller's key certified by another account (the room's): same key, wrong account.
    let forged = crate::identity::generate::recertified_device(caller.device(), room).unwrap();
    assert!(verdict(&verifier, &forged).is_err(), "another account's certificate");
    // The leaf alone proves no account.
    let leaf_only = vec![caller.chain().certificates_der()[0].clone()];
    assert!(verdict(&verifier, &leaf_only).is_err(), "leaf alone");
    // The right leaf with a broken chain above it.
    let mut broken = caller.chain().certificates_der().to_vec();
    broken[1] = room.chain().certificates_der()[1].clone();
    assert!(verdict(&verifier, &broken).is_err(), "leaf not issued by the next certificate");
    // Garbage.
    assert!(verdict(&verifier, &[b"junk".to_vec(), b"more junk".to_vec()]).is_err());
}

#[test]
fn only_sha384_and_sha512_schemes_are_offered() {
    let (room, caller) = identities();
    let config = client_config(room, expected(caller)).unwrap();
    assert!(!config.enable_sni);
    let schemes = verifier(expected(caller)).supported_verify_schemes();
    assert!(!schemes.is_empty());
    assert!(schemes.iter().all(|s| {
        let name = format!("{s:?}");
        name.contains("384") || name.contains("512")
    }));
}
