//! Write tokens (opendht-wire.md §6.1): `SHA-256(secret ‖ ip ‖ port)`, with a secret that
//! rotates every 15–45 minutes; tokens made with the previous secret stay valid.

use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use rand::{Rng, RngExt as _};
use sha2::{Digest as _, Sha256};

/// The secrets behind the tokens this node hands out.
#[derive(Debug)]
pub(super) struct TokenSecrets {
    current: u64,
    previous: u64,
    rotate_at: Instant,
}

impl TokenSecrets {
    pub(super) fn new(now: Instant, rng: &mut impl Rng) -> Self {
        let current = rng.random();
        Self { current, previous: current, rotate_at: now + rotation_delay(rng) }
    }

    /// The token for a requester at `address`.
    pub(super) fn token(&self, address: SocketAddr) -> Vec<u8> {
        make(self.current, address)
    }

    /// Whether `token` was handed to `address` within the last one or two rotations.
    pub(super) fn is_valid(&self, token: &[u8], address: SocketAddr) -> bool {
        token == make(self.current, address) || token == make(self.previous, address)
    }

    /// Rotates the secret when due.
    pub(super) fn rotate(&mut self, now: Instant, rng: &mut impl Rng) {
        if now >= self.rotate_at {
            self.previous = self.current;
            self.current = rng.random();
            self.rotate_at = now + rotation_delay(rng);
        }
    }

    pub(super) fn next_rotation(&self) -> Instant {
        self.rotate_at
    }
}

fn rotation_delay(rng: &mut impl Rng) -> Duration {
    Duration::from_secs(rng.random_range(15 * 60..=45 * 60))
}

fn make(secret: u64, address: SocketAddr) -> Vec<u8> {
    let mut hash = Sha256::new();
    hash.update(secret.to_ne_bytes());
    match address.ip() {
        IpAddr::V4(ip) => hash.update(ip.octets()),
        IpAddr::V6(ip) => hash.update(ip.octets()),
    }
    hash.update(address.port().to_be_bytes());
    hash.finalize().to_vec()
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;
    use rand::rngs::StdRng;

    use super::*;

    #[test]
    fn tokens_are_per_address_and_survive_one_rotation() {
        let mut rng = StdRng::seed_from_u64(1);
        let start = Instant::now();
        let mut secrets = TokenSecrets::new(start, &mut rng);
        let alice: SocketAddr = "10.0.0.1:4222".parse().unwrap();
        let bob: SocketAddr = "10.0.0.1:4223".parse().unwrap();
        let token = secrets.token(alice);
        assert_eq!(token.len(), 32);
        assert!(secrets.is_valid(&token, alice));
        assert!(!secrets.is_valid(&token, bob), "bound to the port too");
        assert!(!secrets.is_valid(&[0; 32], alice));

        secrets.rotate(secrets.next_rotation(), &mut rng);
        assert!(secrets.is_valid(&token, alice), "previous secret still accepted");
        secrets.rotate(secrets.next_rotation(), &mut rng);
        assert!(!secrets.is_valid(&token, alice), "two rotations later it is gone");
    }
}
