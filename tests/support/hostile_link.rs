//! A caller's end of a device link, built from the project's own protocol pieces, for tests
//! that play hostile or scripted callers: the connection request on the DHT, ICE-TCP
//! (answering the room's checks), TLS as the server with the caller's chain, and the
//! multiplexer's framing.

#![allow(dead_code, unreachable_pub)]

use std::io::{Read as _, Write as _};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use rdv::dht::InfoHash;
use rdv::dht::crypto::{PrivateKey, PublicKey};
use rdv::dht::driver::{DhtHandle, DriverConfig, Operation, spawn};
use rdv::dht::node::{Event, NodeConfig};
use rdv::identity::RoomIdentity;
use rdv::net::ice::candidate::{IceInfo, TcpType};
use rdv::net::ice::framing::{Frame, FrameDecoder, frame};
use rdv::presence::{PeerConnectionData, ProtocolEra, certificate_value, open_request, seal};

use super::common::wait_announced;

/// The caller's ICE password.
pub const PASSWORD: &str = "passwordpasswordpassword";
/// Longest wait for the room.
pub const WAIT: Duration = Duration::from_secs(60);

/// The room's device key and device id, from `rdv room create --json`'s output.
pub fn room_device(room: &serde_json::Value) -> (PublicKey, InfoHash) {
    let device_id: InfoHash = room["device_id"].as_str().unwrap().parse().unwrap();
    let chain = room["certificate_chain_pem"].as_str().unwrap();
    let chain = rdv::identity::verify_device_chain(chain).unwrap();
    (PublicKey::from_spki_der(&chain.public_keys_der()[0]).unwrap(), device_id)
}

/// A caller on the DHT: its own node, its device certificate published, and its requests'
/// answers listened for at its (13.7-era) peer key.
pub struct DhtCaller {
    pub identity: RoomIdentity,
    pub key: PrivateKey,
    pub dht: DhtHandle,
    pub answers: Operation,
    pub room_device: PublicKey,
    pub room_device_id: InfoHash,
    pub next_id: u64,
}

impl DhtCaller {
    /// A new caller identity on a node bootstrapped from `bootstrap`, calling the room whose
    /// device key is `room_device` and device id `room_device_id`.
    pub fn start(
        runtime: &tokio::runtime::Runtime,
        identity: RoomIdentity,
        bootstrap: String,
        (room_device, room_device_id): (PublicKey, InfoHash),
    ) -> Self {
        let key = PrivateKey::from_pem(identity.device().private_key.expose()).unwrap();
        let (dht, answers) = runtime.block_on(async {
            let node = NodeConfig::new(InfoHash::of(identity.device_id().to_string().as_bytes()));
            let config = DriverConfig { node, port: 0, ipv6: false, bootstrap: vec![bootstrap] };
            let (dht, _task) = spawn(config).await.unwrap();
            let mut published = dht
                .announce(identity.device_id().into(), certificate_value(&identity), true)
                .await
                .unwrap();
            wait_announced(&mut published.events).await;
            let answers =
                dht.listen(ProtocolEra::Legacy.peer_key(key.public_key()), None).await.unwrap();
            (dht, answers)
        });
        // Request ids are random, as jamid's are: the room drops a repeated one as a re-delivery.
        let next_id = u64::from(rand::random::<u32>()) << 16;
        Self { identity, key, dht, answers, room_device, room_device_id, next_id }
    }

    /// Sends one request and returns the passive candidate of its answer.
    pub fn next_answer(&mut self, runtime: &tokio::runtime::Runtime) -> SocketAddr {
        let id = self.next_id;
        self.next_id += 1;
        runtime.block_on(request(&self.dht, &self.key, &self.room_device, self.room_device_id, id));
        loop {
            let event = runtime
                .block_on(async { tokio::time::timeout(WAIT, self.answers.events.recv()).await })
                .expect("an answer")
                .unwrap();
            let Event::Values { values, .. } = event else { continue };
            for value in values {
                let Ok(answer) = open_request(&self.key, &value, ProtocolEra::Legacy) else {
                    continue;
                };
                if answer.is_answer && answer.id == id {
                    return passive_candidate(&answer.ice_message);
                }
            }
        }
    }
}

/// A multiplexer message: `[channel, bin payload]`.
pub fn mux_message(channel: u16, payload: &[u8]) -> Vec<u8> {
    rmp_serde::to_vec(&(channel, serde_bytes::Bytes::new(payload))).unwrap()
}

/// The passive candidate of an answer's ICE info.
pub fn passive_candidate(ice_message: &str) -> SocketAddr {
    IceInfo::parse(ice_message)
        .unwrap()
        .candidates
        .iter()
        .find(|c| c.tcp_type == Some(TcpType::Passive))
        .unwrap()
        .address
}

/// Answers every Binding request on `stream` with a success signed with the caller's
/// password, as a controlled ICE agent does, until the room closes the connection.
pub fn answer_checks(mut stream: TcpStream) {
    let mut decoder = FrameDecoder::default();
    let mut buffer = [0u8; 4096];
    while let Ok(count) = stream.read(&mut buffer) {
        if count == 0 {
            return;
        }
        for received in decoder.push(&buffer[..count]) {
            if let Frame::Stun(raw) = received
                && answer_check(&mut stream, &raw).is_err()
            {
                return;
            }
        }
    }
}

/// Answers one Binding request (ignores anything else).
pub fn answer_check(stream: &mut TcpStream, raw: &[u8]) -> std::io::Result<()> {
    use rtc_stun::fingerprint::FINGERPRINT;
    use rtc_stun::integrity::MessageIntegrity;
    use rtc_stun::message::{BINDING_SUCCESS, CLASS_REQUEST, Message, Setter as _};

    let crypto = rtc_crypto::providers::RingCrypto;
    let mut request = Message::new();
    if request.unmarshal_binary(raw).is_err() || request.typ.class != CLASS_REQUEST {
        return Ok(());
    }
    let mut response = Message::new();
    response.build(&[Box::new(request.transaction_id), Box::new(BINDING_SUCCESS)]).unwrap();
    MessageIntegrity::new_short_term_integrity_with_provider(PASSWORD.into(), &crypto)
        .add_to(&mut response)
        .unwrap();
    FINGERPRINT.add_to(&mut response).unwrap();
    stream.write_all(&frame(&response.raw))
}

/// The caller's end of a link once ICE is passed: a TLS server over ICE-TCP framing that
/// keeps answering the room's connectivity checks.
pub struct TlsPeer {
    stream: TcpStream,
    /// The TLS state (the caller is the TLS server).
    pub tls: rustls::ServerConnection,
    decoder: FrameDecoder,
}

impl TlsPeer {
    /// The caller's end of `stream`, presenting `caller`'s chain.
    pub fn new(stream: TcpStream, caller: &RoomIdentity) -> Self {
        stream.set_read_timeout(Some(WAIT)).unwrap();
        Self { stream, tls: tls_server(caller), decoder: FrameDecoder::default() }
    }

    /// One read: the plaintext it brought (maybe none), `None` at the end of the stream or
    /// on a timeout, `Err` when TLS fails.
    pub fn read(&mut self) -> Result<Option<Vec<u8>>, ()> {
        let mut buffer = [0u8; 16 * 1024];
        let count = match self.stream.read(&mut buffer) {
            Ok(0) | Err(_) => return Ok(None),
            Ok(count) => count,
        };
        let mut plaintext = Vec::new();
        for received in self.decoder.push(&buffer[..count]) {
            match received {
                Frame::Stun(raw) => answer_check(&mut self.stream, &raw).unwrap(),
                Frame::Data(data) => {
                    let mut data = data.as_slice();
                    while !data.is_empty() {
                        self.tls.read_tls(&mut data).unwrap();
                        let state = self.tls.process_new_packets().map_err(|_| ())?;
                        let mut bytes = vec![0; state.plaintext_bytes_to_read()];
                        self.tls.reader().read_exact(&mut bytes).unwrap();
                        plaintext.extend(bytes);
                    }
                }
            }
        }
        Ok(Some(plaintext))
    }

    /// Sends `messages` and whatever TLS has queued; false once the room has closed.
    pub fn write(&mut self, messages: &[Vec<u8>]) -> bool {
        for message in messages {
            self.tls.writer().write_all(message).unwrap();
        }
        let mut records = Vec::new();
        while self.tls.wants_write() {
            self.tls.write_tls(&mut records).unwrap();
        }
        records.is_empty() || self.stream.write_all(&frame(&records)).is_ok()
    }
}

/// A rustls server presenting `identity`'s device chain and accepting any client chain.
fn tls_server(identity: &RoomIdentity) -> rustls::ServerConnection {
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    let (chain, key) = rdv::net::tls::device_credentials(identity).unwrap();
    let verifier = std::sync::Arc::new(AnyClient(provider.signature_verification_algorithms));
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_client_cert_verifier(verifier)
        .with_single_cert(chain, key)
        .unwrap();
    rustls::ServerConnection::new(std::sync::Arc::new(config)).unwrap()
}

/// Accepts any client chain: this peer only needs the handshake to complete.
#[derive(Debug)]
struct AnyClient(rustls::crypto::WebPkiSupportedAlgorithms);

impl rustls::server::danger::ClientCertVerifier for AnyClient {
    fn root_hint_subjects(&self) -> &[rustls::DistinguishedName] {
        &[]
    }

    fn verify_client_cert(
        &self,
        _end_entity: &rustls::pki_types::CertificateDer<'_>,
        _intermediates: &[rustls::pki_types::CertificateDer<'_>],
        _now: rustls::pki_types::UnixTime,
    ) -> Result<rustls::server::danger::ClientCertVerified, rustls::Error> {
        Ok(rustls::server::danger::ClientCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.0)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.0)
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.supported_schemes()
    }
}

/// Puts a 13.7-era connection request (id `id`) from `caller_key` for the room's device on
/// the DHT, offering an active ICE-TCP candidate.
pub async fn request(
    dht: &DhtHandle,
    caller_key: &PrivateKey,
    room_device: &PublicKey,
    device_id: InfoHash,
    id: u64,
) {
    let data = PeerConnectionData {
        id,
        ice_msg: format!(
            "hostile\n{PASSWORD}\nH7f000001 1 TCP 2128609535 127.0.0.1 9 typ host tcptype active\n"
        ),
        is_answer: false,
        connection_type: "audioCall".into(),
    };
    let value = seal(caller_key, room_device, 1000 + id, data.into_body()).unwrap();
    // A 13.7-era caller: at the room's legacy key, the answer expected at ours.
    let key = ProtocolEra::Legacy.peer_key(room_device);
    assert_eq!(InfoHash::of(format!("peer:{device_id}").as_bytes()), key);
    let mut put = dht.announce(key, value, false).await.unwrap();
    wait_announced(&mut put.events).await;
}
