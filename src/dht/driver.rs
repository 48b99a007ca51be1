//! The tokio shell around the sans-IO [`Node`]: one task owns the node and its UDP sockets
//! (IPv4, and IPv6 when the host has it), feeds it datagrams, commands and timeouts, and sends
//! what it emits. Others talk to it through a [`DhtHandle`] over a bounded channel; each
//! operation's events come back on its own bounded channel, and a slow consumer loses events
//! rather than stall the node.

use std::collections::HashMap;
use std::io;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Instant;

use tokio::net::UdpSocket;
use tokio::sync::{mpsc, oneshot};
use tracing::{debug, info, warn};

use super::InfoHash;
use super::node::{Event, Node, NodeConfig, NodeStats, OperationId};
use super::value::Value;
use super::wire::ValueQuery;

/// Commands waiting for the DHT task.
const COMMAND_QUEUE: usize = 256;
/// Events waiting for one operation's consumer.
const EVENT_QUEUE: usize = 256;
/// Largest datagram read.
const MAX_DATAGRAM: usize = 65536;

/// How to run the DHT task.
#[derive(Debug, Clone)]
pub struct DriverConfig {
    /// The node's settings.
    pub node: NodeConfig,
    /// UDP port for both families; 0 picks one.
    pub port: u16,
    /// Whether to open an IPv6 socket too.
    pub ipv6: bool,
    /// Addresses (`host:port`) to join the network through.
    pub bootstrap: Vec<String>,
}

/// A running operation: its id, and its events.
#[derive(Debug)]
pub struct Operation {
    /// The id, to cancel it.
    pub id: OperationId,
    /// Its events.
    pub events: mpsc::Receiver<Event>,
}

/// The DHT task is gone.
#[derive(Debug, Clone, Copy, thiserror::Error)]
#[error("the DHT node has stopped")]
pub struct DhtStopped;

/// Node state for monitoring.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DhtStatus {
    /// Counters.
    pub stats: NodeStats,
    /// Good nodes, IPv4 and IPv6.
    pub good_nodes: (usize, usize),
    /// Values stored for the network.
    pub stored_values: usize,
    /// Whether a node answered us.
    pub connected: bool,
}

enum Command {
    Get(InfoHash, Option<ValueQuery>, oneshot::Sender<Operation>),
    Announce(InfoHash, Value, bool, oneshot::Sender<Operation>),
    Listen(InfoHash, Option<ValueQuery>, oneshot::Sender<Operation>),
    Cancel(OperationId),
    Status(oneshot::Sender<DhtStatus>),
}

/// A cheap handle to the DHT task.
#[derive(Debug, Clone)]
pub struct DhtHandle {
    commands: mpsc::Sender<Command>,
    local_addresses: Vec<SocketAddr>,
}

impl std::fmt::Debug for Command {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Command")
    }
}

impl DhtHandle {
    /// Looks for values at `key`.
    pub async fn get(
        &self,
        key: InfoHash,
        query: Option<ValueQuery>,
    ) -> Result<Operation, DhtStopped> {
        self.request(|reply| Command::Get(key, query, reply)).await
    }

    /// Stores `value` at `key`, permanently (re-put before expiry) or once.
    pub async fn announce(
        &self,
        key: InfoHash,
        value: Value,
        permanent: bool,
    ) -> Result<Operation, DhtStopped> {
        self.request(|reply| Command::Announce(key, value, permanent, reply)).await
    }

    /// Listens to `key`.
    pub async fn listen(
        &self,
        key: InfoHash,
        query: Option<ValueQuery>,
    ) -> Result<Operation, DhtStopped> {
        self.request(|reply| Command::Listen(key, query, reply)).await
    }

    /// Stops an operation.
    pub async fn cancel(&self, id: OperationId) -> Result<(), DhtStopped> {
        self.commands.send(Command::Cancel(id)).await.map_err(|_| DhtStopped)
    }

    /// Current state.
    pub async fn status(&self) -> Result<DhtStatus, DhtStopped> {
        self.request(Command::Status).await
    }

    /// The bound UDP addresses.
    pub fn local_addresses(&self) -> &[SocketAddr] {
        &self.local_addresses
    }

    async fn request<T>(
        &self,
        command: impl FnOnce(oneshot::Sender<T>) -> Command,
    ) -> Result<T, DhtStopped> {
        let (reply, answer) = oneshot::channel();
        self.commands.send(command(reply)).await.map_err(|_| DhtStopped)?;
        answer.await.map_err(|_| DhtStopped)
    }
}

/// Binds the sockets and starts the DHT task; it stops when every handle is dropped.
pub async fn spawn(config: DriverConfig) -> io::Result<(DhtHandle, tokio::task::JoinHandle<()>)> {
    let socket4 = UdpSocket::bind(SocketAddr::from((Ipv4Addr::UNSPECIFIED, config.port))).await?;
    let port = socket4.local_addr()?.port();
    let socket6 = if config.ipv6 {
        match bind_ipv6(port) {
            Ok(socket) => Some(socket),
            Err(error) => {
                info!(%error, "no IPv6 DHT socket");
                None
            }
        }
    } else {
        None
    };
    let mut local_addresses = vec![socket4.local_addr()?];
    if let Some(socket6) = &socket6 {
        local_addresses.push(socket6.local_addr()?);
    }
    let (commands, receiver) = mpsc::channel(COMMAND_QUEUE);
    let node = Node::new(config.node, Instant::now(), crate::clock::unix_now(), rand::random());
    info!(node_id = %node.id(), addresses = ?local_addresses, "DHT node started");
    let task = Task {
        node,
        socket4,
        socket6,
        commands: receiver,
        operations: HashMap::new(),
        bootstrap: config.bootstrap,
    };
    let join = tokio::spawn(task.run());
    Ok((DhtHandle { commands, local_addresses }, join))
}

fn bind_ipv6(port: u16) -> io::Result<UdpSocket> {
    let socket = socket2::Socket::new(
        socket2::Domain::IPV6,
        socket2::Type::DGRAM,
        Some(socket2::Protocol::UDP),
    )?;
    socket.set_only_v6(true)?;
    socket.set_nonblocking(true)?;
    socket.bind(&SocketAddr::from((Ipv6Addr::UNSPECIFIED, port)).into())?;
    UdpSocket::from_std(socket.into())
}

struct Task {
    node: Node,
    socket4: UdpSocket,
    socket6: Option<UdpSocket>,
    commands: mpsc::Receiver<Command>,
    operations: HashMap<OperationId, mpsc::Sender<Event>>,
    bootstrap: Vec<String>,
}

impl Task {
    async fn run(mut self) {
        for host in std::mem::take(&mut self.bootstrap) {
            match tokio::net::lookup_host(&host).await {
                Ok(addresses) => {
                    for address in addresses.filter(|a| a.is_ipv4() || self.socket6.is_some()) {
                        self.node.bootstrap(address, Instant::now());
                    }
                }
                Err(error) => warn!(%host, %error, "cannot resolve a DHT bootstrap host"),
            }
        }
        let mut buffer4 = vec![0u8; MAX_DATAGRAM];
        let mut buffer6 = vec![0u8; MAX_DATAGRAM];
        loop {
            self.flush().await;
            let deadline = self.node.poll_timeout().map(tokio::time::Instant::from_std);
            let sleep = async {
                match deadline {
                    Some(deadline) => tokio::time::sleep_until(deadline).await,
                    None => std::future::pending().await,
                }
            };
            let receive6 = async {
                match &self.socket6 {
                    Some(socket) => {
                        socket.recv_from(&mut buffer6).await.map(|(n, from)| (n, from, true))
                    }
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                received = self.socket4.recv_from(&mut buffer4) => match received {
                    Ok((length, from)) => self.node.handle_datagram(from, &buffer4[..length], Instant::now()),
                    Err(error) => debug!(%error, "UDP receive error"),
                },
                received = receive6 => match received {
                    Ok((length, from, _)) => self.node.handle_datagram(from, &buffer6[..length], Instant::now()),
                    Err(error) => debug!(%error, "UDP receive error"),
                },
                command = self.commands.recv() => match command {
                    Some(command) => self.command(command),
                    None => break,
                },
                () = sleep => self.node.handle_timeout(Instant::now()),
            }
        }
        info!("DHT node stopped");
    }

    fn command(&mut self, command: Command) {
        let now = Instant::now();
        let (id, reply) = match command {
            Command::Get(key, query, reply) => (self.node.get(key, query, now), reply),
            Command::Announce(key, value, permanent, reply) => {
                (self.node.announce(key, value, permanent, now), reply)
            }
            Command::Listen(key, query, reply) => (self.node.listen(key, query, now), reply),
            Command::Cancel(id) => {
                self.node.cancel(id);
                self.operations.remove(&id);
                return;
            }
            Command::Status(reply) => {
                let status = DhtStatus {
                    stats: self.node.stats(),
                    good_nodes: self.node.good_nodes(now),
                    stored_values: self.node.storage().value_count(),
                    connected: self.node.is_connected(),
                };
                let _ = reply.send(status);
                return;
            }
        };
        let (events, receiver) = mpsc::channel(EVENT_QUEUE);
        if reply.send(Operation { id, events: receiver }).is_ok() {
            self.operations.insert(id, events);
        } else {
            self.node.cancel(id);
        }
    }

    async fn flush(&mut self) {
        while let Some(transmit) = self.node.poll_transmit() {
            let socket =
                if transmit.to.is_ipv4() { Some(&self.socket4) } else { self.socket6.as_ref() };
            if let Some(socket) = socket
                && let Err(error) = socket.send_to(&transmit.datagram, transmit.to).await
            {
                debug!(peer = %transmit.to, %error, "UDP send error");
            }
        }
        while let Some(event) = self.node.poll_event() {
            let operation = match &event {
                Event::Values { operation, .. }
                | Event::Expired { operation, .. }
                | Event::GetDone { operation, .. }
                | Event::Announced { operation, .. } => *operation,
                Event::Connected => {
                    info!("DHT node connected");
                    continue;
                }
            };
            let Some(sender) = self.operations.get(&operation) else { continue };
            match sender.try_send(event) {
                Ok(()) => {}
                Err(mpsc::error::TrySendError::Full(_)) => {
                    warn!(?operation, "DHT events dropped: slow consumer")
                }
                Err(mpsc::error::TrySendError::Closed(_)) => {
                    self.operations.remove(&operation);
                    self.node.cancel(operation);
                }
            }
        }
    }
}
