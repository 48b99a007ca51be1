//! A call's media: per accepted stream of the offer, two UDP sockets (RTP and RTCP) with a
//! controlled ICE component each and an SRTP session. The call joins the room's mix (with
//! video when it negotiated H.264 or VP8): its audio and video go in, its mix-minus and the
//! composite come out. Keyframe requests go both ways: the caller's INFO asks the mixer for
//! one, and the mixer's needs (a new decoder, a lost frame) become INFOs to the caller.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use rdv_mixer::audio::ParticipantId;
use rdv_mixer::media_room::{Command, MediaRoom};
use rdv_mixer::video::{EncodedVideo, VideoCodec};
use tokio::net::UdpSocket;
use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tokio::time::Instant;
use tracing::{debug, info};

use super::mix_routes::{Outgoing, video_config};
use super::room_owner::CallRoutes;
use crate::conference::core::MediaShape;
use crate::identity::AccountId;
use crate::media::rtcp::{RtcpEvent, RtcpSession};
use crate::media::rtp::{Depacketizer, Packetizer, PayloadFormat, Received};
use crate::media::srtp::SrtpSession;
use crate::net::ice::tcp::Credentials;
use crate::net::ice::udp::{IceUdpComponent, UdpReceived};
use crate::room::RoomName;
use crate::sip::CallId;
use crate::sip::sdp::{Direction, LocalStream, MediaKind, Offer, OfferedStream, SrtpKey};
use crate::telemetry::metrics::Metrics;

/// A stream that receives nothing at all (no RTP, no RTCP, no ICE keep-alive) for this long
/// is given up: its caller has vanished (Jami sends RTCP and ICE keep-alives even when muted).
const MEDIA_TIMEOUT: Duration = Duration::from_secs(30);
/// Fewest time between two keyframe requests to the caller (Jami's own spacing).
const KEYFRAME_REQUEST_SPACING: Duration = Duration::from_millis(500);

/// What a call's media tells the link that carries its SIP dialog.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum CallEvent {
    /// Ask the caller for a video keyframe (SIP INFO).
    KeyframeWanted(CallId),
    /// Nothing came from the caller for [`MEDIA_TIMEOUT`]: the call is over.
    Vanished(CallId),
    /// A moderator hung this call up, or its caller was banned: end it (BYE).
    Hangup(CallId),
    /// Send the caller a text message, shown in its call (SIP MESSAGE, text/plain).
    Chat {
        /// The call.
        call_id: CallId,
        /// The text.
        text: String,
    },
    /// Send the conference's state to the caller (SIP MESSAGE, confInfo).
    ConfInfo {
        /// The call.
        call_id: CallId,
        /// The confInfo JSON.
        body: String,
    },
}

/// A call's media, running until dropped.
pub(super) struct CallMedia {
    /// Our side of each offered stream (`None`: refused).
    pub(super) streams: Vec<Option<LocalStream>>,
    /// Our media ICE credentials.
    pub(super) ice: Credentials,
    /// The caller asked for a keyframe of the composite.
    keyframe_requests: mpsc::Sender<()>,
    task: tokio::task::JoinHandle<()>,
}

/// Which call a stream belongs to, for its logs and its events.
#[derive(Debug, Clone)]
pub(super) struct CallLabel {
    pub(super) room: RoomName,
    pub(super) caller: AccountId,
    pub(super) call_id: CallId,
}

/// One accepted stream, bound and keyed, not yet running.
struct StreamParts {
    kind: MediaKind,
    sockets: [UdpSocket; 2],
    components: [IceUdpComponent; 2],
    srtp: SrtpSession,
    format: PayloadFormat,
    payload_type: u8,
}

impl CallMedia {
    /// What an offer asks of the room: video both ways or not, and whether it holds the
    /// call.
    pub(super) fn shape(offer: &Offer) -> MediaShape {
        let accepted: Vec<_> = offer.streams.iter().filter(|s| s.accepted()).collect();
        let video = accepted.iter().find(|s| s.kind == MediaKind::Video);
        let wants_nothing =
            |s: &OfferedStream| matches!(s.direction, Direction::SendOnly | Direction::Inactive);
        // Jami keeps audio `sendrecv` on hold and puts its video `sendonly`/`inactive`;
        // other user agents put every stream so.
        let held = match video {
            Some(_) => {
                accepted.iter().filter(|s| s.kind == MediaKind::Video).all(|s| wants_nothing(s))
            }
            None => !accepted.is_empty() && accepted.iter().all(|s| wants_nothing(s)),
        };
        MediaShape {
            video: video
                .and_then(|s| s.codec.as_ref())
                .and_then(|codec| video_codec(payload_format(MediaKind::Video, &codec.name))),
            sends_video: video
                .is_some_and(|s| matches!(s.direction, Direction::SendRecv | Direction::SendOnly)),
            held,
        }
    }

    /// Binds the sockets for `offer` on `ip`, then runs the streams on the call's `routes`
    /// in the mix; `events` reaches the link that carries the call's dialog. `previous` is
    /// the media this call had before a re-INVITE: it stops now.
    pub(super) fn start(
        ip: IpAddr,
        offer: &Offer,
        label: CallLabel,
        routes: CallRoutes,
        events: mpsc::Sender<CallEvent>,
        metrics: Arc<Metrics>,
    ) -> std::io::Result<Self> {
        let ice = Credentials::random();
        let mut streams = Vec::new();
        let mut parts = Vec::new();
        for offered in &offer.streams {
            let (Some(remote_key), Some(codec)) =
                (offered.key.clone().filter(|_| offered.accepted()), offered.codec.as_ref())
            else {
                streams.push(None);
                continue;
            };
            let format = payload_format(offered.kind, &codec.name);
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
            parts.push(StreamParts {
                kind: offered.kind,
                sockets: [rtp, rtcp],
                components: [
                    IceUdpComponent::new(ice.clone(), offer.ice_ufrag.clone()),
                    IceUdpComponent::new(ice.clone(), offer.ice_ufrag.clone()),
                ],
                srtp,
                format,
                payload_type: codec.payload_type,
            });
            streams.push(Some(local));
        }
        let (keyframe_requests, keyframes_asked) = mpsc::channel(1);
        let video = CallMedia::shape(offer).video;
        let task =
            tokio::spawn(run_call(parts, label, routes, video, keyframes_asked, events, metrics));
        Ok(Self { streams, ice, keyframe_requests, task })
    }

    /// The caller asked for a keyframe of the composite.
    pub(super) fn request_keyframe(&self) {
        let _ = self.keyframe_requests.try_send(());
    }
}

impl Drop for CallMedia {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Runs every stream on the call's routes in the mix, and forwards the caller's keyframe
/// requests, until a stream gives up (the caller vanished) or the call's media is dropped.
async fn run_call(
    parts: Vec<StreamParts>,
    label: CallLabel,
    routes: CallRoutes,
    video_codec: Option<VideoCodec>,
    mut keyframes_asked: mpsc::Receiver<()>,
    events: mpsc::Sender<CallEvent>,
    metrics: Arc<Metrics>,
) {
    let CallRoutes { id, mixer, receivers } = routes;
    let mut outgoing = Some(receivers.outgoing);
    let (mut frames, mut keyframes) = (receivers.video, receivers.keyframes);
    let mut streams = JoinSet::new();
    for part in parts {
        let mix = StreamMix {
            participant: id,
            mixer: Arc::clone(&mixer),
            output: match part.kind {
                MediaKind::Audio => StreamOutput::Audio(outgoing.take()),
                MediaKind::Video => {
                    StreamOutput::Video { frames: frames.take(), keyframes: keyframes.take() }
                }
            },
        };
        let metrics = Arc::clone(&metrics);
        streams.spawn(serve_stream(part, label.clone(), Some(mix), events.clone(), metrics));
    }
    loop {
        tokio::select! {
            Some(()) = keyframes_asked.recv() => {
                if let Some(codec) = video_codec {
                    let _ = mixer.send(Command::RequestKeyframe(codec));
                }
            }
            ended = streams.join_next() => {
                if ended.is_some() {
                    let _ = events.send(CallEvent::Vanished(label.call_id.clone())).await;
                }
                return;
            }
        }
    }
}

/// A stream's place in the mix.
struct StreamMix {
    participant: ParticipantId,
    mixer: Arc<MediaRoom>,
    output: StreamOutput,
}

/// What the mix sends a stream.
enum StreamOutput {
    Audio(Option<mpsc::Receiver<Outgoing>>),
    Video {
        frames: Option<mpsc::Receiver<Arc<EncodedVideo>>>,
        /// The mixer needs a keyframe of this caller's video.
        keyframes: Option<mpsc::Receiver<()>>,
    },
}

/// The next thing the mix has for a stream.
enum FromMix {
    Audio { index: u64, payload: Vec<u8> },
    Video(Arc<EncodedVideo>),
    KeyframeWanted,
}

impl StreamOutput {
    async fn next(&mut self) -> Option<FromMix> {
        match self {
            Self::Audio(Some(outgoing)) => {
                let Outgoing::Audio { index, payload } = outgoing.recv().await?;
                Some(FromMix::Audio { index, payload })
            }
            Self::Video { frames, keyframes } => {
                let frame = async {
                    match frames {
                        Some(frames) => frames.recv().await,
                        None => std::future::pending().await,
                    }
                };
                let keyframe = async {
                    match keyframes {
                        Some(keyframes) => keyframes.recv().await,
                        None => std::future::pending().await,
                    }
                };
                tokio::select! {
                    Some(frame) = frame => Some(FromMix::Video(frame)),
                    Some(()) = keyframe => Some(FromMix::KeyframeWanted),
                    else => None,
                }
            }
            Self::Audio(None) => std::future::pending().await,
        }
    }
}

/// One stream: answers checks on both sockets, decrypts what arrives and feeds the mix;
/// sends what the mix has for it.
async fn serve_stream(
    parts: StreamParts,
    label: CallLabel,
    mut mix: Option<StreamMix>,
    events: mpsc::Sender<CallEvent>,
    metrics: Arc<Metrics>,
) {
    let StreamParts { kind, sockets, mut components, mut srtp, format, payload_type } = parts;
    let [rtp, rtcp] = sockets;
    let mut packetizer = Packetizer::new(format, payload_type);
    let mut depacketizer = Depacketizer::new(format);
    let clock_rate = if kind == MediaKind::Audio { 48_000 } else { 90_000 };
    let cname = format!("{}@rdv", label.room);
    let mut reports =
        RtcpSession::new(packetizer.ssrc(), clock_rate, cname, std::time::Instant::now());
    let video_codec = video_codec(format);
    let video_step = 90_000 / u64::from(video_config().framerate.max(1));
    let mut sent = 0u64;
    let mut last_heard = Instant::now();
    let mut last_keyframe_request: Option<Instant> = None;
    let (mut rtp_buffer, mut rtcp_buffer) = (vec![0u8; 2048], vec![0u8; 2048]);
    let mut received = [0u64; 2];
    let mut nominated_logged = [false; 2];
    let mut refused = 0u64;
    loop {
        let from_mix = async {
            match mix.as_mut() {
                Some(mix) => mix.output.next().await,
                None => std::future::pending().await,
            }
        };
        let (index, socket, count, from) = tokio::select! {
            Ok((count, from)) = rtp.recv_from(&mut rtp_buffer) => (0, &rtp, count, from),
            Ok((count, from)) = rtcp.recv_from(&mut rtcp_buffer) => (1, &rtcp, count, from),
            Some(out) = from_mix => {
                let (frame, timestamp) = match &out {
                    FromMix::Audio { index, payload } => (payload.as_slice(), index.wrapping_mul(960)),
                    FromMix::Video(frame) => (frame.data.as_slice(), frame.tick.wrapping_mul(video_step)),
                    FromMix::KeyframeWanted => {
                        ask_keyframe(&events, &label, &mut last_keyframe_request);
                        continue;
                    }
                };
                let Some(to) = components[0].selected() else { continue };
                let timestamp = (timestamp & u64::from(u32::MAX)) as u32;
                for packet in packetizer.packetize(frame, timestamp) {
                    if let Ok(protected) = srtp.protect_rtp(&packet) {
                        let _ = rtp.send_to(&protected, to).await;
                        reports.on_rtp_sent(timestamp, packet.len().saturating_sub(12), std::time::Instant::now());
                        sent += 1;
                        if sent == 1 {
                            info!(room = %label.room, caller_account = %label.caller, call_id = %label.call_id, ?kind, "first mixed media sent");
                        }
                    }
                }
                continue;
            }
            () = tokio::time::sleep_until(Instant::from_std(reports.poll_timeout())) => {
                let report = reports.poll_report(std::time::Instant::now(), std::time::SystemTime::now());
                if let Some(reception) = reports.take_reception() {
                    metrics.reception(reception.lost, reception.jitter);
                }
                // In the clear: jamid hands whatever reaches its RTCP socket to FFmpeg's RTP
                // demuxer undecrypted, and SRTCP's ciphertext read as RTCP headers now and
                // then says BYE, which ends the caller's audio for the rest of the call.
                if let (Some(report), Some(to)) = (report, components[1].selected()) {
                    let _ = rtcp.send_to(&report, to).await;
                }
                continue;
            }
            () = tokio::time::sleep_until(last_heard + MEDIA_TIMEOUT) => {
                info!(room = %label.room, caller_account = %label.caller, call_id = %label.call_id, ?kind, "caller vanished: nothing received for {}s", MEDIA_TIMEOUT.as_secs());
                return;
            }
            else => return,
        };
        last_heard = Instant::now();
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
                        count_received(&mut received, index, true, &label, kind);
                        if index != 0 {
                            match reports.on_rtcp_received(&plain, std::time::Instant::now()) {
                                Ok(events) => {
                                    if events.contains(&RtcpEvent::KeyframeRequested)
                                        && let (Some(mix), Some(codec)) = (&mix, video_codec)
                                    {
                                        let _ = mix.mixer.send(Command::RequestKeyframe(codec));
                                    }
                                }
                                Err(error) => {
                                    let head = hex::encode(&plain[..plain.len().min(16)]);
                                    debug!(call_id = %label.call_id, %error, len = plain.len(), %head, "RTCP packet dropped");
                                }
                            }
                            continue;
                        }
                        reports.on_rtp_received(&plain, std::time::Instant::now());
                        let Some(mix) = &mix else { continue };
                        match depacketizer.push(&plain) {
                            Ok(Received::Frame(frame)) => {
                                let command = match kind {
                                    MediaKind::Audio => Command::Audio {
                                        participant: mix.participant,
                                        timestamp: frame.timestamp,
                                        payload: frame.data,
                                    },
                                    MediaKind::Video => Command::Video {
                                        participant: mix.participant,
                                        data: frame.data,
                                    },
                                };
                                let _ = mix.mixer.send(command);
                            }
                            Ok(Received::Lost) if kind == MediaKind::Video => {
                                ask_keyframe(&events, &label, &mut last_keyframe_request);
                            }
                            Ok(_) => {}
                            Err(error) => {
                                debug!(call_id = %label.call_id, ?kind, %error, "RTP packet dropped");
                            }
                        }
                    }
                    // jamid sends its RTCP in the clear.
                    Err(_)
                        if index == 1
                            && components[1].selected() == Some(from)
                            && reports
                                .on_plain_rtcp_received(datagram, std::time::Instant::now()) =>
                    {
                        count_received(&mut received, index, false, &label, kind);
                    }
                    Err(error) => {
                        refused += 1;
                        let head = hex::encode(&datagram[..datagram.len().min(8)]);
                        debug!(call_id = %label.call_id, ?kind, component = index + 1, %error, refused, len = datagram.len(), %head, "SRTP packet refused");
                    }
                }
            }
            UdpReceived::Dropped => {}
        }
    }
}

/// Counts a packet taken on component `index` (`protected`: SRTP or SRTCP, else plain RTCP);
/// the first one of each component is logged.
fn count_received(
    received: &mut [u64; 2],
    index: usize,
    protected: bool,
    label: &CallLabel,
    kind: MediaKind,
) {
    received[index] += 1;
    if received[index] == 1 {
        info!(room = %label.room, caller_account = %label.caller, call_id = %label.call_id, ?kind, component = index + 1, protected, "first media packet received");
    }
}

/// How a stream of `kind` with codec `name` is packetized.
fn payload_format(kind: MediaKind, name: &str) -> PayloadFormat {
    match (kind, name) {
        (MediaKind::Audio, _) => PayloadFormat::Opus,
        (MediaKind::Video, "H264") => PayloadFormat::H264,
        (MediaKind::Video, _) => PayloadFormat::Vp8,
    }
}

/// The mixer's codec for a video payload format.
fn video_codec(format: PayloadFormat) -> Option<VideoCodec> {
    match format {
        PayloadFormat::H264 => Some(VideoCodec::H264),
        PayloadFormat::Vp8 => Some(VideoCodec::Vp8),
        PayloadFormat::Opus => None,
    }
}

/// Asks the caller for a keyframe, at most once per [`KEYFRAME_REQUEST_SPACING`].
fn ask_keyframe(events: &mpsc::Sender<CallEvent>, label: &CallLabel, last: &mut Option<Instant>) {
    let now = Instant::now();
    if last.is_some_and(|last| now < last + KEYFRAME_REQUEST_SPACING) {
        return;
    }
    *last = Some(now);
    let _ = events.try_send(CallEvent::KeyframeWanted(label.call_id.clone()));
}

/// A UDP socket on `ip`, any port, for the runtime.
fn bind(ip: IpAddr) -> std::io::Result<UdpSocket> {
    let socket = std::net::UdpSocket::bind(SocketAddr::new(ip, 0))?;
    socket.set_nonblocking(true)?;
    UdpSocket::from_std(socket)
}
