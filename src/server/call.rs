//! A call's media transport: per accepted stream of the offer, two UDP sockets (RTP and
//! RTCP) with a controlled ICE component each and an SRTP session. The caller's checks are
//! answered and its nominations followed; SRTP is decrypted and counted. Mixing comes next.

use std::net::{IpAddr, SocketAddr};

use std::sync::Arc;

use rdv_mixer::media_room::Command;
use tokio::net::UdpSocket;
use tokio::task::JoinSet;
use tracing::{debug, info, warn};

use super::media::{Member, Outgoing, RoomMedia};
use crate::media::rtp::{Depacketizer, Packetizer, PayloadFormat, Received};

use crate::identity::AccountId;
use crate::media::srtp::SrtpSession;
use crate::net::ice::tcp::Credentials;
use crate::net::ice::udp::{IceUdpComponent, UdpReceived};
use crate::room::RoomName;
use crate::sip::sdp::{LocalStream, MediaKind, Offer, SrtpKey};

/// A stream that receives nothing at all (no RTP, no RTCP, no ICE keep-alive) for this long
/// is given up: its caller has vanished (Jami sends RTCP and ICE keep-alives even when muted).
const MEDIA_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

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
    /// The negotiated codecs, for the room's logs.
    pub(super) codecs: String,
}

impl CallMedia {
    /// Binds the sockets for `offer` on `ip` and starts answering ICE and receiving SRTP; the
    /// audio stream joins the room's mix.
    pub(super) fn start(
        ip: IpAddr,
        offer: &Offer,
        label: CallLabel,
        room_media: &Arc<RoomMedia>,
    ) -> std::io::Result<Self> {
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
            let mix = match (offered.kind, &offered.codec) {
                (MediaKind::Audio, Some(codec)) => {
                    Some((Arc::clone(room_media), codec.payload_type))
                }
                _ => None,
            };
            tasks.spawn(serve_stream(
                offered.kind,
                [rtp, rtcp],
                components,
                srtp,
                label.clone(),
                mix,
            ));
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

/// One stream: answers checks on both sockets, decrypts what arrives; an audio stream with
/// `mix` (the room's media and our Opus payload type) feeds the mix and sends its output.
async fn serve_stream(
    kind: MediaKind,
    sockets: [UdpSocket; 2],
    mut components: [IceUdpComponent; 2],
    mut srtp: SrtpSession,
    label: CallLabel,
    mix: Option<(Arc<RoomMedia>, u8)>,
) {
    let [rtp, rtcp] = sockets;
    let mut participant = None;
    let mut packetizer = None;
    if let Some((room_media, payload_type)) = mix {
        let member = Member {
            caller: label.caller,
            call_id: label.call_id.clone(),
            codecs: label.codecs.clone(),
        };
        match room_media.join(member).await {
            Ok(joined) => {
                participant = Some(joined);
                packetizer = Some(Packetizer::new(PayloadFormat::Opus, payload_type));
            }
            Err(error) => warn!(room = %label.room, %error, "cannot join the mix"),
        }
    }
    let mut depacketizer = Depacketizer::new(PayloadFormat::Opus);
    let mut sent = 0u64;
    let mut last_heard = tokio::time::Instant::now();
    let (mut rtp_buffer, mut rtcp_buffer) = (vec![0u8; 2048], vec![0u8; 2048]);
    let mut received = [0u64; 2];
    let mut nominated_logged = [false; 2];
    let mut refused = 0u64;
    loop {
        let outgoing = async {
            match participant.as_mut() {
                Some(participant) => participant.outgoing.recv().await,
                None => std::future::pending().await,
            }
        };
        let (index, socket, count, from) = tokio::select! {
            Ok((count, from)) = rtp.recv_from(&mut rtp_buffer) => (0, &rtp, count, from),
            Ok((count, from)) = rtcp.recv_from(&mut rtcp_buffer) => (1, &rtcp, count, from),
            Some(Outgoing::Audio { index, payload }) = outgoing => {
                let (Some(to), Some(packetizer)) = (components[0].selected(), packetizer.as_mut()) else { continue };
                let timestamp = u32::try_from(index.wrapping_mul(960) & u64::from(u32::MAX)).unwrap_or(0);
                for packet in packetizer.packetize(&payload, timestamp) {
                    if let Ok(protected) = srtp.protect_rtp(&packet) {
                        let _ = rtp.send_to(&protected, to).await;
                        sent += 1;
                        if sent == 1 {
                            info!(room = %label.room, caller_account = %label.caller, call_id = %label.call_id, "first mixed audio sent");
                        }
                    }
                }
                continue;
            }
            () = tokio::time::sleep_until(last_heard + MEDIA_TIMEOUT) => {
                info!(room = %label.room, caller_account = %label.caller, call_id = %label.call_id, ?kind, "caller vanished: nothing received for {}s", MEDIA_TIMEOUT.as_secs());
                return;
            }
            else => return,
        };
        last_heard = tokio::time::Instant::now();
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
                    Ok(plain) => {
                        if index == 0
                            && let Some(participant) = &participant
                            && let Ok(Received::Frame(frame)) = depacketizer.push(&plain)
                        {
                            let _ = participant.mixer.send(Command::Audio {
                                participant: participant.id,
                                timestamp: frame.timestamp,
                                payload: frame.data,
                            });
                        }
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
