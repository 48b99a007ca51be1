//! Opening a device link to an admitted caller: the ICE answer over the DHT, then ICE-TCP
//! with the room as the controlling agent (jami-protocol.md §2–3). Every TCP connection that
//! could carry the link — the caller's to our passive candidates, ours to the caller's
//! passive ones — runs its own checks. The first valid one is nominated, and only it (pjnath
//! sends on its best nominated pair, so nominating two and closing one breaks the link); the
//! others stay open in reserve until it is connected, then are closed.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use crate::dht::crypto::{CryptoError, PrivateKey};
use crate::dht::driver::{DhtHandle, DhtStopped};
use crate::net::ice::candidate::{Candidate, IceInfo, TcpType, Transport};
use crate::net::ice::tcp::{Credentials, IceEvent, IceTcpConnection, State};
use crate::presence::{PeerConnectionRequest, answer_value};

/// Longest time from the answer to a nominated connection.
pub(super) const ICE_TIMEOUT: Duration = Duration::from_secs(15);
/// Longest wait for an outgoing TCP connection.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Connections accepted per link attempt (a caller has a handful of candidates).
const MAX_INCOMING: usize = 8;

/// Why a link could not be opened.
#[derive(Debug, thiserror::Error)]
pub(super) enum LinkError {
    /// The caller's ICE info does not parse (the caller's fault).
    #[error("the caller's ICE info: {0}")]
    CallerIce(String),
    /// No local address to offer (the host's configuration).
    #[error("no local address routes to the caller's candidates")]
    NoAddress,
    /// Listening failed (the host).
    #[error("cannot listen for the caller: {0}")]
    Listen(std::io::Error),
    /// The answer could not be sealed.
    #[error("cannot seal the answer: {0}")]
    Seal(#[from] CryptoError),
    /// The DHT node stopped.
    #[error("{0}")]
    Dht(#[from] DhtStopped),
    /// No connection was nominated in time (the network or the caller).
    #[error("no ICE-TCP connection within {0:?}")]
    Timeout(Duration),
}

/// A nominated ICE-TCP connection: its socket, its ICE state (which answers keep-alives and
/// frames application data) and the application bytes already received.
pub(super) struct IceLink {
    pub(super) stream: TcpStream,
    pub(super) ice: IceTcpConnection,
    pub(super) early_data: Vec<u8>,
    pub(super) local: SocketAddr,
    pub(super) remote: SocketAddr,
}

/// Answers `request` over the DHT with our candidates and returns the first nominated
/// connection.
pub(super) async fn open(
    dht: &DhtHandle,
    device_key: &PrivateKey,
    request: &PeerConnectionRequest,
    configured: &[IpAddr],
) -> Result<IceLink, LinkError> {
    let remote = IceInfo::parse(&request.ice_message)
        .map_err(|error| LinkError::CallerIce(error.to_string()))?;
    let remote_tcp: Vec<&Candidate> =
        remote.candidates.iter().filter(|c| c.transport == Transport::Tcp).collect();
    let addresses = if configured.is_empty() {
        routed_addresses(remote_tcp.iter().map(|c| c.address.ip()))
    } else {
        configured.to_vec()
    };
    if addresses.is_empty() {
        return Err(LinkError::NoAddress);
    }
    let mut listeners = Vec::new();
    for ip in &addresses {
        listeners.push(TcpListener::bind((*ip, 0)).await.map_err(LinkError::Listen)?);
    }
    let local = Credentials::random();
    let mut candidates = Vec::new();
    for listener in &listeners {
        let address = listener.local_addr().map_err(LinkError::Listen)?;
        candidates.push(Candidate::tcp_host(address, TcpType::Passive));
        candidates.push(Candidate::tcp_host(address, TcpType::Active));
    }
    let answer = IceInfo { ufrag: local.ufrag.clone(), pwd: local.pwd.clone(), candidates };
    // To the caller's `peer:` key of the era its request came in: the one it listens on.
    let value = answer_value(device_key, request, answer.to_string())?;
    let _put = dht.announce(request.era.peer_key(&request.sender), value, false).await?;

    let remote_credentials = Credentials { ufrag: remote.ufrag.clone(), pwd: remote.pwd.clone() };
    let tie_breaker = rand::random::<u64>();
    // One permit: the right to nominate. A nominated connection that fails gives it back.
    let nomination = Arc::new(Semaphore::new(1));
    let mut attempts = JoinSet::new();
    for candidate in remote_tcp.iter().filter(|c| {
        c.tcp_type == Some(TcpType::Passive)
            && c.address.port() != 9
            && addresses.iter().any(|ip| ip.is_ipv4() == c.address.is_ipv4())
    }) {
        let (local, remote, address) =
            (local.clone(), remote_credentials.clone(), candidate.address);
        let nomination = Arc::clone(&nomination);
        attempts.spawn(async move {
            let stream = tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(address))
                .await
                .ok()?
                .ok()?;
            check(stream, local, remote, tie_breaker, nomination).await
        });
    }
    // The caller's connections to our passive candidates, from every listener.
    let (incoming, mut accepted) = tokio::sync::mpsc::channel(MAX_INCOMING);
    let mut acceptors = JoinSet::new();
    for listener in listeners {
        let incoming = incoming.clone();
        acceptors.spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                if incoming.send(stream).await.is_err() {
                    break;
                }
            }
        });
    }
    drop(incoming);
    let deadline = tokio::time::Instant::now() + ICE_TIMEOUT;
    let mut taken = 0;
    loop {
        tokio::select! {
            Some(stream) = accepted.recv(), if taken < MAX_INCOMING => {
                taken += 1;
                let (local, remote) = (local.clone(), remote_credentials.clone());
                attempts.spawn(check(stream, local, remote, tie_breaker, Arc::clone(&nomination)));
            }
            Some(done) = attempts.join_next(), if !attempts.is_empty() => {
                if let Ok(Some(link)) = done {
                    return Ok(link);
                }
            }
            () = tokio::time::sleep_until(deadline) => return Err(LinkError::Timeout(ICE_TIMEOUT)),
        }
    }
}

/// Runs the ICE checks on one TCP connection until it is nominated or fails; it nominates
/// once valid and holding the link's only `nomination` permit.
async fn check(
    mut stream: TcpStream,
    local: Credentials,
    remote: Credentials,
    tie_breaker: u64,
    nomination: Arc<Semaphore>,
) -> Option<IceLink> {
    let _ = stream.set_nodelay(true);
    let (local_address, remote_address) = (stream.local_addr().ok()?, stream.peer_addr().ok()?);
    let mut ice = IceTcpConnection::new(local, remote, tie_breaker, remote_address, Instant::now());
    let mut buffer = vec![0; 16 * 1024];
    let mut connected = false;
    let mut early_data = Vec::new();
    // Held while nominating; dropped (given back) if this connection fails.
    let mut permit: Option<tokio::sync::OwnedSemaphorePermit> = None;
    loop {
        while let Some(bytes) = ice.poll_transmit() {
            stream.write_all(&bytes).await.ok()?;
        }
        if connected {
            // The link is decided: no other connection may nominate, ever.
            if let Some(permit) = permit.take() {
                permit.forget();
            }
            return Some(IceLink {
                stream,
                ice,
                early_data,
                local: local_address,
                remote: remote_address,
            });
        }
        let timeout = ice
            .poll_timeout()
            .map_or(ICE_TIMEOUT, |at| at.saturating_duration_since(Instant::now()));
        let may_nominate = ice.state() == State::Checked && permit.is_none();
        tokio::select! {
            acquired = Arc::clone(&nomination).acquire_owned(), if may_nominate => {
                permit = Some(acquired.ok()?);
                ice.nominate();
            }
            read = stream.read(&mut buffer) => {
                let count = read.ok().filter(|count| *count > 0)?;
                for event in ice.receive(&buffer[..count], Instant::now()) {
                    match event {
                        IceEvent::Connected => connected = true,
                        IceEvent::Data(data) => early_data.extend(data),
                        IceEvent::Failed(_) => return None,
                    }
                }
            }
            () = tokio::time::sleep(timeout) => {
                if let Some(IceEvent::Failed(_)) = ice.handle_timeout(Instant::now()) {
                    return None;
                }
            }
        }
    }
}

/// For each remote address, the local address the host routes to it from (what a UDP
/// socket "connected" to it is bound to); loopback only for a loopback peer.
fn routed_addresses(remote: impl Iterator<Item = IpAddr>) -> Vec<IpAddr> {
    let mut found = Vec::new();
    for address in remote {
        let unspecified: IpAddr = if address.is_ipv4() {
            std::net::Ipv4Addr::UNSPECIFIED.into()
        } else {
            std::net::Ipv6Addr::UNSPECIFIED.into()
        };
        let Ok(socket) = std::net::UdpSocket::bind((unspecified, 0)) else { continue };
        if socket.connect((address, 9)).is_err() {
            continue;
        }
        if let Ok(local) = socket.local_addr()
            && !local.ip().is_unspecified()
            && (!local.ip().is_loopback() || address.is_loopback())
            && !found.contains(&local.ip())
        {
            found.push(local.ip());
        }
    }
    found
}
