//! Tile geometry of the composite, as Jami 13.7's `VideoMixer` computes it
//! (`src/media/video/video_mixer.cpp`: `process`, `calc_position`; jami-conference.md §1.5, §2.2).
//!
//! - **Grid**: with `n` video sources, `z = ⌈√n⌉` and cells of `W/z × H/z`, filled row by row
//!   from the top in attach order; an incomplete last row is centred horizontally.
//! - **One big with small**: `z = max(6, n)`; a strip of `H/z` at the top holds the other
//!   sources, `W/z × H/z` each, centred; the active source fills the `W × (H − H/z)` below.
//! - **One big**: only the active source, in one full-frame cell; every other video source is
//!   reported with a zero rectangle.
//! - Within its cell a picture is scaled preserving its aspect ratio and centred; the reported
//!   rectangle is that of the fitted picture. A source without a frame yet is fitted as if its
//!   frame had the output's size, and reported without video.
//! - Audio-only participants have no cell; Jami reports them as `10 × 10` at `(0, 0)`, in one
//!   big only when active. Without an active participant, every layout is a grid.
//!
//! The arithmetic is Jami's: integer division on `i32`, and the fit computed in `f32` with
//! rounding half away from zero, so the rectangles match Jami's to the pixel.

/// Layout of the composite, with Jami's numbering (0, 1, 2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Layout {
    /// 0: everyone in equal cells.
    #[default]
    Grid,
    /// 1: the active participant big, the others in a strip at the top.
    OneBigWithSmall,
    /// 2: only the active participant.
    OneBig,
}

impl Layout {
    /// Jami's number for the layout.
    pub fn number(self) -> u8 {
        match self {
            Self::Grid => 0,
            Self::OneBigWithSmall => 1,
            Self::OneBig => 2,
        }
    }

    /// The layout for Jami's number; `None` outside 0–2 (Jami rejects those).
    pub fn from_number(number: u8) -> Option<Self> {
        [Self::Grid, Self::OneBigWithSmall, Self::OneBig].into_iter().find(|l| l.number() == number)
    }
}

/// Width and height in pixels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Size {
    /// Width.
    pub width: i32,
    /// Height.
    pub height: i32,
}

/// A rectangle of the composite, in pixels: what confInfo reports as `x`, `y`, `w`, `h`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Rect {
    /// Left edge.
    pub x: i32,
    /// Top edge.
    pub y: i32,
    /// Width.
    pub w: i32,
    /// Height.
    pub h: i32,
}

impl Rect {
    /// The centre pixel.
    pub fn centre(&self) -> (i32, i32) {
        (self.x + self.w / 2, self.y + self.h / 2)
    }

    /// Whether the two rectangles share any pixel.
    pub fn overlaps(&self, other: &Rect) -> bool {
        self.x < other.x + other.w
            && other.x < self.x + self.w
            && self.y < other.y + other.h
            && other.y < self.y + self.h
    }
}

/// A participant's latest picture: its size and rotation metadata.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Frame {
    /// Decoded size.
    pub size: Size,
    /// Rotation to apply, in degrees (0, 90, 180, 270).
    pub rotation: u16,
}

/// A participant as the layout sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// Sends video; `frame` is `None` until its first picture is decoded.
    Video {
        /// Its latest picture, if any.
        frame: Option<Frame>,
        /// It is the active participant.
        active: bool,
    },
    /// Sends no video (audio-only, or video muted).
    AudioOnly {
        /// It is the active participant.
        active: bool,
    },
}

impl Source {
    fn is_active(&self) -> bool {
        match self {
            Self::Video { active, .. } | Self::AudioOnly { active } => *active,
        }
    }
}

/// Where a participant appears in the composite.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tile {
    /// Position of the participant in the input slice.
    pub source: usize,
    /// Its rectangle (zero when not shown).
    pub rect: Rect,
    /// A picture of it is drawn there.
    pub has_video: bool,
}

/// Minimum strip division in one big with small (`MIN_LINE_ZOOM`).
const MIN_LINE_ZOOM: i32 = 6;

/// Rectangle Jami reports for audio-only participants.
const AUDIO_ONLY_RECT: Rect = Rect { x: 0, y: 0, w: 10, h: 10 };

/// The layout in effect: without an active participant, Jami falls back to the grid.
pub fn effective_layout(layout: Layout, sources: &[Source]) -> Layout {
    if sources.iter().any(Source::is_active) { layout } else { Layout::Grid }
}

/// The tiles of `sources` (in attach order) in a composite of size `output`, in the order
/// Jami reports them: audio-only participants first, then video sources.
pub fn tiles(output: Size, layout: Layout, sources: &[Source]) -> Vec<Tile> {
    let layout = effective_layout(layout, sources);
    let mut tiles = Vec::with_capacity(sources.len());
    for (index, source) in sources.iter().enumerate() {
        if let Source::AudioOnly { active } = source
            && (layout != Layout::OneBig || *active)
        {
            tiles.push(Tile { source: index, rect: AUDIO_ONLY_RECT, has_video: false });
        }
    }
    let video_count = sources.iter().filter(|s| matches!(s, Source::Video { .. })).count() as i32;
    let mut active_found = false;
    let video = sources.iter().enumerate().filter_map(|(index, s)| match s {
        Source::Video { frame, active } => Some((index, *frame, *active)),
        Source::AudioOnly { .. } => None,
    });
    for (position, (index, frame, active)) in video.enumerate() {
        let position = position as i32;
        if layout == Layout::OneBig && !active {
            tiles.push(Tile { source: index, rect: Rect::default(), has_video: false });
            continue;
        }
        let wanted = match layout {
            Layout::Grid => position,
            Layout::OneBig => {
                active_found = true;
                0
            }
            Layout::OneBigWithSmall if active => {
                active_found = true;
                0
            }
            Layout::OneBigWithSmall if !active_found => position + 1,
            Layout::OneBigWithSmall => position,
        };
        let n = if layout == Layout::OneBig { 1 } else { video_count };
        // A source without a picture yet is drawn black, fitted as a frame of the output's size.
        let fitted = frame.unwrap_or(Frame { size: output, rotation: 0 });
        let rect = position_in(output, layout, n, wanted, fitted);
        tiles.push(Tile { source: index, rect, has_video: frame.is_some() });
    }
    tiles
}

/// `VideoMixer::calc_position`: the fitted rectangle of a frame in cell `index`.
fn position_in(output: Size, layout: Layout, n: i32, index: i32, frame: Frame) -> Rect {
    let Size { width, height } = output;
    if width <= 0 || height <= 0 || n <= 0 {
        return Rect::default();
    }
    let zoom = if layout == Layout::OneBigWithSmall { MIN_LINE_ZOOM.max(n) } else { ceil_sqrt(n) };
    let (cell_width, cell_height) = if layout == Layout::OneBigWithSmall && index == 0 {
        (width, height - height / zoom)
    } else {
        (width / zoom, height / zoom)
    };
    let (cell_x, cell_y) = if layout == Layout::OneBigWithSmall {
        if index == 0 {
            (0, height / zoom)
        } else {
            ((index - 1) * cell_width + (width - (n - 1) * cell_width) / 2, 0)
        }
    } else {
        let mut x = (index % zoom) * cell_width;
        if layout == Layout::Grid && n % zoom != 0 && index >= zoom * ((n - 1) / zoom) {
            x += (width - (n % zoom) * cell_width) / 2;
        }
        (x, (index / zoom) * cell_height)
    };
    let (frame_width, frame_height) = if !frame.rotation.is_multiple_of(180) {
        (frame.size.height, frame.size.width)
    } else {
        (frame.size.width, frame.size.height)
    };
    if cell_width <= 0 || cell_height <= 0 || frame_width <= 0 || frame_height <= 0 {
        return Rect { x: cell_x, y: cell_y, w: 0, h: 0 };
    }
    let zoom_w = frame_width as f32 / cell_width as f32;
    let zoom_h = frame_height as f32 / cell_height as f32;
    let scale = zoom_w.max(zoom_h);
    let w = (frame_width as f32 / scale).round() as i32;
    let h = (frame_height as f32 / scale).round() as i32;
    Rect { x: cell_x + (cell_width - w) / 2, y: cell_y + (cell_height - h) / 2, w, h }
}

/// `ceil(sqrt(n))` for positive `n`, exactly.
fn ceil_sqrt(n: i32) -> i32 {
    let mut root = (n as f64).sqrt() as i32;
    while root * root < n {
        root += 1;
    }
    while root > 1 && (root - 1) * (root - 1) >= n {
        root -= 1;
    }
    root
}

#[cfg(test)]
mod tests;
