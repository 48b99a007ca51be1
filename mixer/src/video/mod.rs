//! The video side of a room: every participant's H.264 or VP8 stream decoded once, composed
//! into one picture in Jami's layouts, and that picture encoded once per negotiated codec
//! for every receiver.
//!
//! [`VideoMixer`] is driven by ticks, one per output frame: the caller (the room's media
//! thread) pushes access units as they arrive, calls [`VideoMixer::tick`] at the frame rate
//! and pulls encoded frames. Time is an input: nothing here reads a clock, and every call
//! blocks for a bounded time, so run it on a thread of its own, never on the async executor.

mod compositor;
mod decoder;

use std::time::Duration;

use compositor::Compositor;
use decoder::{Picture, VideoDecoder};

use crate::audio::ParticipantId;
use crate::layout::{Frame, Layout, Rect, Size, Source, tiles};
pub use crate::pipeline::MediaError;

/// Longest wait for the previous picture before the geometry changes.
const GEOMETRY_WAIT: Duration = Duration::from_millis(200);

/// A video codec Jami negotiates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum VideoCodec {
    /// H.264 (constrained baseline out; any profile FFmpeg decodes in).
    H264,
    /// VP8.
    Vp8,
}

impl VideoCodec {
    /// The codec's lower-case name, as in SDP.
    pub fn name(self) -> &'static str {
        match self {
            Self::H264 => "h264",
            Self::Vp8 => "vp8",
        }
    }
}

/// How the composite is made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VideoConfig {
    /// Size of the composite.
    pub size: Size,
    /// Frames per second.
    pub framerate: u32,
    /// Encoder bitrate, kbit/s.
    pub bitrate_kbps: u32,
    /// Longest distance between keyframes, in frames.
    pub keyframe_interval: u32,
    /// The codecs the composite is encoded in, each once.
    pub codecs: Vec<VideoCodec>,
}

impl Default for VideoConfig {
    fn default() -> Self {
        Self {
            size: Size { width: 1280, height: 720 },
            framerate: 30,
            bitrate_kbps: 2000,
            keyframe_interval: 60,
            codecs: vec![VideoCodec::H264, VideoCodec::Vp8],
        }
    }
}

/// One encoded frame of the composite.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EncodedVideo {
    /// Its codec.
    pub codec: VideoCodec,
    /// The tick it was composed at.
    pub tick: u64,
    /// A keyframe (decodable on its own).
    pub keyframe: bool,
    /// An H.264 access unit (Annex B) or a VP8 frame.
    pub data: Vec<u8>,
}

/// Where a participant is in the composite: what confInfo reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ParticipantTile {
    /// Who.
    pub participant: ParticipantId,
    /// Its rectangle (10 × 10 at the origin for audio-only, zero when not shown).
    pub rect: Rect,
    /// A picture of it is drawn there.
    pub has_video: bool,
}

/// Something the room should act on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VideoEvent {
    /// The tiles changed; they apply from this tick on.
    TilesChanged(Vec<ParticipantTile>),
    /// A participant's decoder failed and was restarted; its picture resumes at its next
    /// keyframe.
    InputFailed {
        /// Whose.
        participant: ParticipantId,
        /// What failed.
        error: String,
    },
    /// Ask this participant for a keyframe (its decoder is new).
    KeyframeNeeded(ParticipantId),
}

/// A decoded picture handed to the mixer as is (a played video file), tightly packed I420.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawPicture {
    /// Width in pixels (even).
    pub width: u32,
    /// Height in pixels (even).
    pub height: u32,
    /// Y (width × height), then U, then V (width/2 × height/2 each), rows without padding.
    pub i420: Vec<u8>,
}

struct Participant {
    id: ParticipantId,
    input: Option<VideoCodec>,
    /// Its pictures come ready-made ([`VideoMixer::show`]), not from a stream.
    raw: bool,
    decoder: Option<VideoDecoder>,
    picture: Option<Picture>,
    /// A picture was decoded since the last tick.
    fresh: bool,
}

/// One room's video mix.
pub struct VideoMixer {
    config: VideoConfig,
    compositor: Compositor,
    participants: Vec<Participant>,
    layout: Layout,
    active: Option<ParticipantId>,
    tiles: Vec<ParticipantTile>,
    next_tick: u64,
    events: Vec<VideoEvent>,
}

impl VideoMixer {
    /// A mixer with no participants; its pipeline is playing.
    pub fn new(config: VideoConfig) -> Result<Self, MediaError> {
        if config.size.width < 16 || config.size.height < 16 || config.framerate == 0 {
            return Err(MediaError::Setup(format!(
                "a composite of {}x{} at {} fps",
                config.size.width, config.size.height, config.framerate
            )));
        }
        Ok(Self {
            compositor: Compositor::new(&config)?,
            config,
            participants: Vec::new(),
            layout: Layout::Grid,
            active: None,
            tiles: Vec::new(),
            next_tick: 0,
            events: Vec::new(),
        })
    }

    /// The composite's configuration.
    pub fn config(&self) -> &VideoConfig {
        &self.config
    }

    /// Adds a participant sending `input` (`None`: audio-only). No effect if present.
    pub fn add(&mut self, id: ParticipantId, input: Option<VideoCodec>) -> Result<(), MediaError> {
        if self.participants.iter().any(|p| p.id == id) {
            return Ok(());
        }
        self.participants.push(Participant {
            id,
            input: None,
            raw: false,
            decoder: None,
            picture: None,
            fresh: false,
        });
        self.set_input(id, input)
    }

    /// Changes what a participant sends: a codec, or `None` for no video (muted or
    /// audio-only). Its picture is dropped when the codec changes.
    pub fn set_input(
        &mut self,
        id: ParticipantId,
        input: Option<VideoCodec>,
    ) -> Result<(), MediaError> {
        let Some(participant) = self.participants.iter_mut().find(|p| p.id == id) else {
            return Ok(());
        };
        if std::mem::take(&mut participant.raw) {
            participant.picture = None;
        }
        if participant.input == input && (input.is_none() || participant.decoder.is_some()) {
            return Ok(());
        }
        participant.input = input;
        participant.picture = None;
        participant.decoder = None;
        if let Some(codec) = input {
            participant.decoder = Some(VideoDecoder::new(codec)?);
            self.events.push(VideoEvent::KeyframeNeeded(id));
        }
        Ok(())
    }

    /// Shows `picture` as `id`'s video from the next tick on (a participant whose pictures are
    /// decoded elsewhere, such as a played file). A picture of the wrong size is refused.
    pub fn show(&mut self, id: ParticipantId, picture: RawPicture) -> Result<(), MediaError> {
        let Some(participant) = self.participants.iter_mut().find(|p| p.id == id) else {
            return Ok(());
        };
        let sample = raw_sample(&picture)?;
        participant.input = None;
        participant.decoder = None;
        participant.raw = true;
        let size = Size { width: picture.width as i32, height: picture.height as i32 };
        participant.picture = Some(Picture { sample, size });
        participant.fresh = true;
        Ok(())
    }

    /// Removes a participant; the others are not affected.
    pub fn remove(&mut self, id: ParticipantId) -> bool {
        let before = self.participants.len();
        self.participants.retain(|p| p.id != id);
        if self.active == Some(id) {
            self.active = None;
        }
        before != self.participants.len()
    }

    /// The layout (applied from the next tick).
    pub fn set_layout(&mut self, layout: Layout) {
        self.layout = layout;
    }

    /// The active participant, shown big in the layouts that have a big tile.
    pub fn set_active(&mut self, id: Option<ParticipantId>) {
        self.active = id.filter(|id| self.participants.iter().any(|p| p.id == *id));
    }

    /// The layout asked for (the grid is used while no participant is active).
    pub fn layout(&self) -> Layout {
        self.layout
    }

    /// The active participant.
    pub fn active(&self) -> Option<ParticipantId> {
        self.active
    }

    /// Whether any participant sends video.
    pub fn has_video_inputs(&self) -> bool {
        self.participants.iter().any(|p| p.input.is_some() || p.raw)
    }

    /// Whether a picture of `id` has been decoded.
    pub fn has_picture(&self, id: ParticipantId) -> bool {
        self.participants.iter().any(|p| p.id == id && p.picture.is_some())
    }

    /// Waits, at most `timeout` in all, until every participant sending video has a picture
    /// decoded since the last tick; returns whether they all do. For tools, benchmarks and
    /// tests that feed recorded media frame by frame; a live room simply ticks.
    pub fn wait_for_pictures(&mut self, timeout: Duration) -> bool {
        let deadline = std::time::Instant::now() + timeout;
        let ids: Vec<ParticipantId> = self.participants.iter().map(|p| p.id).collect();
        ids.into_iter().all(|id| {
            self.wait_for_picture(id, deadline.saturating_duration_since(std::time::Instant::now()))
        })
    }

    /// Waits, at most `timeout`, until `id` has a picture decoded since the last tick (true
    /// at once for a participant without video).
    pub fn wait_for_picture(&mut self, id: ParticipantId, timeout: Duration) -> bool {
        let deadline = std::time::Instant::now() + timeout;
        let Some(participant) = self.participants.iter_mut().find(|p| p.id == id) else {
            return false;
        };
        while !participant.fresh
            && let Some(decoder) = &participant.decoder
        {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            match decoder.latest(left) {
                Ok(Some(picture)) => {
                    participant.picture = Some(picture);
                    participant.fresh = true;
                }
                Ok(None) | Err(_) => return false,
            }
        }
        true
    }

    /// The tiles in effect, in Jami's order (audio-only participants first).
    pub fn tiles(&self) -> &[ParticipantTile] {
        &self.tiles
    }

    /// The next tick's index.
    pub fn next_tick(&self) -> u64 {
        self.next_tick
    }

    /// Queues one access unit from `id`. A participant without video input, or unknown, is
    /// ignored; a decoder that fails is restarted and reported at the next tick.
    pub fn push(&mut self, id: ParticipantId, access_unit: &[u8]) {
        let Some(participant) = self.participants.iter_mut().find(|p| p.id == id) else { return };
        let Some(decoder) = &participant.decoder else { return };
        if let Err(error) = decoder.push(access_unit) {
            restart_decoder(participant, &error, &mut self.events);
        }
    }

    /// Composes the next picture: takes each participant's latest decoded picture (the
    /// previous one again when nothing new came), applies layout changes, and hands the
    /// picture to the encoders. Returns what changed.
    pub fn tick(&mut self) -> Result<Vec<VideoEvent>, MediaError> {
        for participant in &mut self.participants {
            let Some(decoder) = &participant.decoder else { continue };
            participant.fresh = false;
            match decoder.latest(Duration::ZERO) {
                Ok(Some(picture)) => participant.picture = Some(picture),
                Ok(None) => {}
                Err(error) => restart_decoder(participant, &error, &mut self.events),
            }
        }
        let tiles = self.compute_tiles();
        if tiles != self.tiles {
            self.apply_tiles(&tiles)?;
            self.tiles = tiles.clone();
            self.events.push(VideoEvent::TilesChanged(tiles));
        }
        let pictures: Vec<_> = self
            .participants
            .iter()
            .filter_map(|p| p.picture.as_ref().map(|picture| (p.id, picture.sample.clone())))
            .collect();
        self.compositor.push_tick(self.next_tick, &pictures)?;
        self.next_tick += 1;
        Ok(std::mem::take(&mut self.events))
    }

    /// Recomputes the tiles without composing a picture (no one sends video, so there is
    /// nothing to draw, but confInfo still lists everyone); returns what changed.
    pub fn refresh_tiles(&mut self) -> Vec<VideoEvent> {
        let tiles = self.compute_tiles();
        if tiles != self.tiles && !self.has_video_inputs() {
            self.tiles = tiles.clone();
            self.events.push(VideoEvent::TilesChanged(tiles));
        }
        std::mem::take(&mut self.events)
    }

    /// The next encoded frame of `codec`, waiting at most `timeout`.
    pub fn pull(
        &mut self,
        codec: VideoCodec,
        timeout: Duration,
    ) -> Result<Option<EncodedVideo>, MediaError> {
        self.compositor.pull(codec, timeout)
    }

    /// Makes the next `codec` frame a keyframe (a receiver lost packets or just joined).
    pub fn request_keyframe(&self, codec: VideoCodec) {
        self.compositor.request_keyframe(codec);
    }

    fn compute_tiles(&self) -> Vec<ParticipantTile> {
        let sources: Vec<Source> = self
            .participants
            .iter()
            .map(|p| {
                let active = self.active == Some(p.id);
                if p.input.is_some() || p.raw {
                    Source::Video {
                        frame: p.picture.as_ref().map(|pic| Frame { size: pic.size, rotation: 0 }),
                        active,
                    }
                } else {
                    Source::AudioOnly { active }
                }
            })
            .collect();
        tiles(self.config.size, self.layout, &sources)
            .into_iter()
            .map(|tile| ParticipantTile {
                participant: self.participants[tile.source].id,
                rect: tile.rect,
                has_video: tile.has_video,
            })
            .collect()
    }

    /// Moves the compositor's inputs to `tiles`, once the previous picture is composed.
    fn apply_tiles(&mut self, tiles: &[ParticipantTile]) -> Result<(), MediaError> {
        if let Some(previous) = self.next_tick.checked_sub(1) {
            self.compositor.wait_composed(previous, GEOMETRY_WAIT);
        }
        let gone: Vec<ParticipantId> = self
            .compositor
            .input_ids()
            .into_iter()
            .filter(|id| !self.participants.iter().any(|p| p.id == *id && p.picture.is_some()))
            .collect();
        for id in gone {
            self.compositor.remove_input(id);
        }
        for participant in self.participants.iter().filter(|p| p.picture.is_some()) {
            self.compositor.add_input(participant.id)?;
            let tile = tiles.iter().find(|t| t.participant == participant.id && t.has_video);
            self.compositor.place(participant.id, tile.map(|t| t.rect));
        }
        Ok(())
    }
}

/// A raw picture as a GStreamer sample, its planes laid out with GStreamer's default strides.
fn raw_sample(picture: &RawPicture) -> Result<gstreamer::Sample, MediaError> {
    use gstreamer_video::{VideoFormat, VideoInfo};
    let refuse = |message: String| MediaError::Codec { what: "picture", message };
    let (width, height) = (picture.width, picture.height);
    let packed = |w: u32, h: u32| (w as usize) * (h as usize);
    let (chroma_width, chroma_height) = (width / 2, height / 2);
    if width == 0
        || height == 0
        || width % 2 == 1
        || height % 2 == 1
        || width > 4096
        || height > 4096
    {
        return Err(refuse(format!("{width}×{height} is not an even size up to 4096")));
    }
    let expected = packed(width, height) + 2 * packed(chroma_width, chroma_height);
    if picture.i420.len() != expected {
        return Err(refuse(format!("{} bytes for {width}×{height} I420", picture.i420.len())));
    }
    let info = VideoInfo::builder(VideoFormat::I420, width, height)
        .build()
        .map_err(|error| refuse(error.to_string()))?;
    let mut data = vec![0u8; info.size()];
    let planes = [(width, height), (chroma_width, chroma_height), (chroma_width, chroma_height)];
    let mut from = 0;
    for (plane, (plane_width, plane_height)) in planes.into_iter().enumerate() {
        let stride = info.stride()[plane] as usize;
        let offset = info.offset()[plane];
        let row = plane_width as usize;
        for line in 0..plane_height as usize {
            let to = offset + line * stride;
            data[to..to + row].copy_from_slice(&picture.i420[from..from + row]);
            from += row;
        }
    }
    let caps = info.to_caps().map_err(|error| refuse(error.to_string()))?;
    let buffer = gstreamer::Buffer::from_mut_slice(data);
    Ok(gstreamer::Sample::builder().buffer(&buffer).caps(&caps).build())
}

/// Replaces a failed decoder with a new one and reports it.
fn restart_decoder(
    participant: &mut Participant,
    error: &MediaError,
    events: &mut Vec<VideoEvent>,
) {
    events.push(VideoEvent::InputFailed { participant: participant.id, error: error.to_string() });
    participant.decoder = participant.input.and_then(|codec| VideoDecoder::new(codec).ok());
    if participant.decoder.is_some() {
        events.push(VideoEvent::KeyframeNeeded(participant.id));
    }
}
