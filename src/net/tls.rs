//! TLS on a device link (jami-protocol.md §4): the room is the TLS **client**, presents its
//! device chain (device, account, CA) and accepts the caller's device as today's dhtnet
//! does (jami-protocol-2026.md §3): a valid device chain whose leaf holds the key that signed
//! the connection request, issued for the account that was admitted. A device whose
//! certificate was renewed since it published it is still the same device. GnuTLS peers in Jami's `SECURE192` mode accept only SHA-384/512
//! signature schemes and the x25519, secp384r1 and secp521r1 groups, so those are all we
//! offer; no SNI. TLS 1.2 is offered too (GnuTLS picks 1.3): rustls signals safe
//! renegotiation (the SCSV) only when it offers 1.2, and Jami's TLS server drops a client
//! that does not signal it ("server identity changed! MiM attack?").

use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms, ring};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, SignatureScheme};

use crate::identity::{AccountId, RoomIdentity, verify_device_chain_der};

/// The handshake signature schemes GnuTLS accepts in `SECURE192` (no SHA-256).
const SCHEMES: [SignatureScheme; 5] = [
    SignatureScheme::RSA_PSS_SHA512,
    SignatureScheme::RSA_PSS_SHA384,
    SignatureScheme::RSA_PKCS1_SHA512,
    SignatureScheme::RSA_PKCS1_SHA384,
    SignatureScheme::ECDSA_NISTP384_SHA384,
];

/// Why the TLS configuration could not be built (the room's identity is unusable).
#[derive(Debug, thiserror::Error)]
pub enum TlsSetupError {
    /// The device key does not parse.
    #[error("the room's device key: {0}")]
    Key(String),
    /// rustls refused the configuration.
    #[error("TLS configuration: {0}")]
    Config(#[from] rustls::Error),
}

/// ring with only the groups and suites GnuTLS's `SECURE192` accepts.
fn provider() -> CryptoProvider {
    let base = ring::default_provider();
    CryptoProvider {
        cipher_suites: vec![
            ring::cipher_suite::TLS13_AES_256_GCM_SHA384,
            ring::cipher_suite::TLS13_CHACHA20_POLY1305_SHA256,
            ring::cipher_suite::TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
            ring::cipher_suite::TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
        ],
        kx_groups: vec![ring::kx_group::X25519, ring::kx_group::SECP384R1],
        ..base
    }
}

/// The device a link must reach: the caller's device key (DER SPKI, the key that signed its
/// connection request) and its account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExpectedPeer {
    /// The device's public key.
    pub device_key: Vec<u8>,
    /// The account its chain must be issued for.
    pub account: AccountId,
}

/// A client configuration for a link to the `expected` device.
pub fn client_config(
    identity: &RoomIdentity,
    expected: ExpectedPeer,
) -> Result<Arc<ClientConfig>, TlsSetupError> {
    let provider = Arc::new(provider());
    let (chain, key) = device_credentials(identity)?;
    let verifier =
        PinnedDevice { expected, algorithms: provider.signature_verification_algorithms };
    let mut config = ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(verifier))
        .with_client_auth_cert(chain, key)?;
    config.enable_sni = false;
    Ok(Arc::new(config))
}

/// The room's TLS credentials: its device chain (device, account, CA; DER) and device key.
pub fn device_credentials(
    identity: &RoomIdentity,
) -> Result<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>), TlsSetupError> {
    let chain = identity
        .chain()
        .certificates_der()
        .iter()
        .map(|der| CertificateDer::from(der.clone()))
        .collect();
    let key = PrivateKeyDer::from_pem_slice(identity.device().private_key.expose().as_bytes())
        .map_err(|error| TlsSetupError::Key(error.to_string()))?;
    Ok((chain, key))
}

/// The name rustls wants for a peer that has none: its address.
pub fn peer_name(address: std::net::IpAddr) -> ServerName<'static> {
    ServerName::IpAddress(address.into())
}

/// Accepts a presented chain that verifies as a Jami device chain, valid now, whose leaf
/// holds the expected device key and whose account is the expected one; then verifies the
/// handshake signature with it. WebPKI validation would fail: Jami certificates carry no
/// names and the device certificate has no extensions.
#[derive(Debug)]
struct PinnedDevice {
    expected: ExpectedPeer,
    algorithms: WebPkiSupportedAlgorithms,
}

impl ServerCertVerifier for PinnedDevice {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let refused = |error: rustls::CertificateError| rustls::Error::InvalidCertificate(error);
        let presented = std::iter::once(end_entity.to_vec())
            .chain(intermediates.iter().map(|der| der.to_vec()))
            .collect();
        let chain = verify_device_chain_der(presented)
            .map_err(|_| refused(rustls::CertificateError::BadSignature))?;
        let now = std::time::UNIX_EPOCH + std::time::Duration::from_secs(now.as_secs());
        chain.check_validity(now).map_err(|_| refused(rustls::CertificateError::Expired))?;
        let same_device = chain.public_keys_der()[0] == self.expected.device_key;
        if same_device && chain.account_id() == self.expected.account {
            Ok(ServerCertVerified::assertion())
        } else {
            Err(refused(rustls::CertificateError::ApplicationVerificationFailure))
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        SCHEMES.to_vec()
    }
}

#[cfg(test)]
mod tests;
