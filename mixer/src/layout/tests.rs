use super::*;

const HD: Size = Size { width: 1280, height: 720 };
const LANDSCAPE: Frame = Frame { size: HD, rotation: 0 };

fn video(active: bool) -> Source {
    Source::Video { frame: Some(LANDSCAPE), active }
}

fn rects(tiles: &[Tile]) -> Vec<(i32, i32, i32, i32)> {
    tiles.iter().map(|t| (t.rect.x, t.rect.y, t.rect.w, t.rect.h)).collect()
}

#[test]
fn grid_matches_jami_worked_examples() {
    // One source: the whole frame.
    assert_eq!(rects(&tiles(HD, Layout::Grid, &[video(false)])), [(0, 0, 1280, 720)]);
    // Two: z = 2, one row of 640x360 cells; the bottom half stays black.
    assert_eq!(
        rects(&tiles(HD, Layout::Grid, &[video(false); 2])),
        [(0, 0, 640, 360), (640, 0, 640, 360)]
    );
    // Three: the last row holds one cell, centred.
    assert_eq!(
        rects(&tiles(HD, Layout::Grid, &[video(false); 3])),
        [(0, 0, 640, 360), (640, 0, 640, 360), (320, 360, 640, 360)]
    );
    // Five: z = 3, cells 426x240; the second row of two is centred ((1280 - 852) / 2 = 214),
    // and the bottom third stays black.
    assert_eq!(
        rects(&tiles(HD, Layout::Grid, &[video(false); 5])),
        [
            (0, 0, 426, 240),
            (426, 0, 426, 240),
            (852, 0, 426, 240),
            (214, 240, 426, 240),
            (640, 240, 426, 240)
        ]
    );
}

#[test]
fn one_big_with_small_matches_jami() {
    let sources = [video(false), video(true), video(false)];
    // z = max(6, 3) = 6: a 120-px strip of 213x120 cells at the top, centred; the active source
    // fills 1280x600 below, fitted to 1067x600.
    assert_eq!(
        rects(&tiles(HD, Layout::OneBigWithSmall, &sources)),
        [(427, 0, 213, 120), (106, 120, 1067, 600), (640, 0, 213, 120)]
    );
    // Eight sources: z = 8, 160x90 cells, the seven small ones centred in the strip.
    let mut sources = [video(false); 8];
    sources[0] = video(true);
    let tiles = tiles(HD, Layout::OneBigWithSmall, &sources);
    // The active cell is 1280x630: a 16:9 picture fits at 1120x630, centred at x = 80.
    assert_eq!(rects(&tiles[..1]), [(80, 90, 1120, 630)]);
    assert_eq!(rects(&tiles[1..2]), [(80, 0, 160, 90)]);
    assert_eq!(rects(&tiles[7..]), [(1040, 0, 160, 90)]);
}

#[test]
fn one_big_shows_only_the_active_source() {
    let sources = [video(false), video(true), video(false)];
    let tiles = tiles(HD, Layout::OneBig, &sources);
    assert_eq!(rects(&tiles), [(0, 0, 0, 0), (0, 0, 1280, 720), (0, 0, 0, 0)]);
    assert_eq!(tiles.iter().map(|t| t.has_video).collect::<Vec<_>>(), [false, true, false]);
}

#[test]
fn without_an_active_source_every_layout_is_a_grid() {
    let sources = [video(false); 4];
    for layout in [Layout::OneBigWithSmall, Layout::OneBig] {
        assert_eq!(effective_layout(layout, &sources), Layout::Grid);
        assert_eq!(tiles(HD, layout, &sources), tiles(HD, Layout::Grid, &sources));
    }
}

#[test]
fn audio_only_participants_are_reported_first_and_small() {
    let sources = [video(false), Source::AudioOnly { active: false }, video(false)];
    let tiles = tiles(HD, Layout::Grid, &sources);
    assert_eq!(tiles.iter().map(|t| t.source).collect::<Vec<_>>(), [1, 0, 2]);
    assert_eq!(
        rects(&tiles),
        [(0, 0, 10, 10), (0, 0, 640, 360), (640, 0, 640, 360)],
        "only video sources take cells"
    );
    assert!(!tiles[0].has_video);

    // In one big, an audio-only participant appears only if it is the active one.
    let sources = [Source::AudioOnly { active: false }, video(true)];
    assert_eq!(super::tiles(HD, Layout::OneBig, &sources).len(), 1);
    let sources = [Source::AudioOnly { active: true }, video(false)];
    assert_eq!(rects(&super::tiles(HD, Layout::OneBig, &sources)), [(0, 0, 10, 10), (0, 0, 0, 0)]);
}

#[test]
fn pictures_keep_their_aspect_ratio_and_rotation() {
    let portrait = Source::Video {
        frame: Some(Frame { size: Size { width: 720, height: 1280 }, rotation: 0 }),
        active: false,
    };
    assert_eq!(rects(&tiles(HD, Layout::Grid, &[portrait])), [(437, 0, 405, 720)]);
    let rotated = Source::Video { frame: Some(Frame { size: HD, rotation: 90 }), active: false };
    assert_eq!(
        rects(&tiles(HD, Layout::Grid, &[rotated])),
        [(437, 0, 405, 720)],
        "a 90° landscape frame is portrait"
    );
    let upside_down =
        Source::Video { frame: Some(Frame { size: HD, rotation: 180 }), active: false };
    assert_eq!(rects(&tiles(HD, Layout::Grid, &[upside_down])), [(0, 0, 1280, 720)]);
}

#[test]
fn a_source_without_a_frame_is_black_and_output_shaped() {
    let waiting = Source::Video { frame: None, active: false };
    let tiles = tiles(HD, Layout::Grid, &[waiting, video(false)]);
    assert_eq!(rects(&tiles), [(0, 0, 640, 360), (640, 0, 640, 360)]);
    assert_eq!(tiles.iter().map(|t| t.has_video).collect::<Vec<_>>(), [false, true]);
}

/// For every count from 1 to 25, in every layout: tiles stay inside the picture, do not
/// overlap, are not bigger than their cell and keep the 16:9 shape within a pixel.
#[test]
fn invariants_hold_for_every_room_size() {
    for n in 1..=25usize {
        for active in [None, Some(0), Some(n - 1)] {
            let sources: Vec<Source> = (0..n).map(|i| video(active == Some(i))).collect();
            for layout in [Layout::Grid, Layout::OneBigWithSmall, Layout::OneBig] {
                let tiles = tiles(HD, layout, &sources);
                assert_eq!(tiles.len(), n);
                let shown: Vec<&Tile> = tiles.iter().filter(|t| t.rect.w > 0).collect();
                for tile in &shown {
                    let r = tile.rect;
                    assert!(
                        r.x >= 0 && r.y >= 0 && r.x + r.w <= 1280 && r.y + r.h <= 720,
                        "{n} {layout:?}: {r:?}"
                    );
                    let ratio_error = (r.w as f32 * 9.0 - r.h as f32 * 16.0).abs();
                    assert!(ratio_error <= 16.0 + 9.0, "{n} {layout:?}: {r:?} is not 16:9");
                }
                for (i, a) in shown.iter().enumerate() {
                    for b in &shown[i + 1..] {
                        assert!(!a.rect.overlaps(&b.rect), "{n} {layout:?}: {a:?} overlaps {b:?}");
                    }
                }
                let expected_shown = match (effective_layout(layout, &sources), active) {
                    (Layout::OneBig, Some(_)) => 1,
                    _ => n,
                };
                assert_eq!(shown.len(), expected_shown, "{n} {layout:?}");
            }
        }
    }
}

#[test]
fn layout_numbers_are_jamis() {
    for layout in [Layout::Grid, Layout::OneBigWithSmall, Layout::OneBig] {
        assert_eq!(Layout::from_number(layout.number()), Some(layout));
    }
    assert_eq!(Layout::OneBig.number(), 2);
    assert_eq!(Layout::from_number(3), None);
}

#[test]
fn ceil_sqrt_is_exact() {
    for n in 1..10_000 {
        let root = ceil_sqrt(n);
        assert!(root * root >= n && (root - 1) * (root - 1) < n, "{n}");
    }
}
