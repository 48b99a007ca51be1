//! A call's media transport: per accepted stream of the offer, two UDP sockets (RTP and
//! RTCP) with a controlled ICE component each and an SRTP session. The caller's checks are
//! answered and its nominations followed; SRTP is decrypted and counted. Mixing comes next.

use std::net::{IpAddr, SocketAddr};

use tokio::net::UdpSocket;
use tokio::task::JoinSet;
use tracing::{debug, info};

use crate::identity::AccountId;
use crate::media::srtp::SrtpSession;
use crate::net::ice::tcp::Credentials;
use crate::net::ice::udp::{IceUdpComponent, UdpReceived};
use crate::room::RoomName;
use crate::sip::sdp::{LocalStream, MediaKind, Offer, SrtpKey};

/// A call's media, running until dropped.
pub(super) struct CallMedia {
    /// Our side of each offered stream (`None`: refused).
    pub(super) streams: Vec<Option<LocalStream>>,
    /// Our media ICE credentials.
    pub(super) ice: Credentials,
    tasks: JoinSet<()>,
}

/// Who a call is, for its logs.
#[derive(Debug, Clone)]
pub(super) struct CallLabel {
    pub(super) room: RoomName,
    pub(super) caller: AccountId,
    pub(super) call_id: String,
}

impl CallMedia {
    /// Binds the sockets for `offer` on `ip` and starts answering ICE and receiving SRTP.
    pub(super) fn start(ip: IpAddr, offer: &Offer, label: CallLabel) -> std::io::Result<Self> {
        let ice = Credentials::random();
        let mut streams = Vec::new();
        let mut tasks = JoinSet::new();
        for offered in &offer.streams {
            let Some(remote_key) = offered.key.clone().filter(|_| offered.accepted()) else {
                streams.push(None);
                continue;
            };
            let (rtp, rtcp) = (bind(ip)?, bind(ip)?);
            let local = LocalStream {
                rtp: rtp.local_addr()?,
                rtcp: rtcp.local_addr()?,
                key: SrtpKey::random(),
            };
            let Ok(srtp) = SrtpSession::new(&local.key, &remote_key) else {
                streams.push(None);
                continue;
            };
            let components = [
                IceUdpComponent::new(ice.clone(), offer.ice_ufrag.clone()),
                IceUdpComponent::new(ice.clone(), offer.ice_ufrag.clone()),
            ];
            tasks.spawn(serve_stream(offered.kind, [rtp, rtcp], components, srtp, label.clone()));
            streams.push(Some(local));
        }
        Ok(Self { streams, ice, tasks })
    }
}

impl Drop for CallMedia {
    fn drop(&mut self) {
        self.tasks.abort_all();
    }
}

/// One stream: answers checks on both sockets, decrypts what arrives.
async fn serve_stream(
    kind: MediaKind,
    sockets: [UdpSocket; 2],
    mut components: [IceUdpComponent; 2],
    mut srtp: SrtpSession,
    label: CallLabel,
) {
    let [rtp, rtcp] = sockets;
    let (mut rtp_buffer, mut rtcp_buffer) = (vec![0u8; 2048], vec![0u8; 2048]);
    let mut received = [0u64; 2];
    let mut nominated_logged = [false; 2];
    let mut refused = 0u64;
    loop {
        let (index, socket, count, from) = tokio::select! {
            Ok((count, from)) = rtp.recv_from(&mut rtp_buffer) => (0, &rtp, count, from),
            Ok((count, from)) = rtcp.recv_from(&mut rtcp_buffer) => (1, &rtcp, count, from),
            else => return,
        };
        let datagram = if index == 0 { &rtp_buffer[..count] } else { &rtcp_buffer[..count] };
        match components[index].receive(datagram, from) {
            UdpReceived::Check { response, to, nominated } => {
                let _ = socket.send_to(&response, to).await;
                if nominated && !nominated_logged[index] {
                    nominated_logged[index] = true;
                    info!(room = %label.room, caller_account = %label.caller, call_id = %label.call_id, ?kind, component = index + 1, remote = %to, "media ICE nominated");
                }
            }
            UdpReceived::Media => {
                let decrypted = if index == 0 {
                    srtp.unprotect_rtp(datagram)
                } else {
                    srtp.unprotect_rtcp(datagram)
                };
                match decrypted {
                    Ok(_) => {
                        received[index] += 1;
                        if received[index] == 1 {
                            info!(room = %label.room, caller_account = %label.caller, call_id = %label.call_id, ?kind, component = index + 1, "first media packet decrypted");
                        }
                    }
                    Err(error) => {
                        refused += 1;
                        debug!(call_id = %label.call_id, %error, refused, "SRTP packet refused");
                    }
                }
            }
            UdpReceived::Dropped => {}
        }
    }
}

/// A UDP socket on `ip`, any port, for the runtime.
fn bind(ip: IpAddr) -> std::io::Result<UdpSocket> {
    let socket = std::net::UdpSocket::bind(SocketAddr::new(ip, 0))?;
    socket.set_nonblocking(true)?;
    UdpSocket::from_std(socket)
}
