use super::*;

const STEP: u32 = FRAME_SAMPLES as u32;

fn buffer() -> JitterBuffer {
    JitterBuffer::new(JitterConfig { delay_frames: 3, max_concealed_frames: 5 })
}

#[test]
fn the_first_packet_plays_after_the_delay_and_the_rest_follow_their_timestamps() {
    let mut jitter = buffer();
    assert_eq!(jitter.insert(1000, vec![0], 10), Ok(13));
    assert_eq!(jitter.insert(1000 + STEP, vec![1], 11), Ok(14));
    assert_eq!(jitter.insert(1000 + 3 * STEP, vec![3], 12), Ok(16));
    assert_eq!(jitter.take(13), Slot::Packet(vec![0]));
    assert_eq!(jitter.take(14), Slot::Packet(vec![1]));
    assert_eq!(jitter.take(15), Slot::Lost);
    assert_eq!(jitter.take(16), Slot::Packet(vec![3]));
}

#[test]
fn reordered_packets_come_out_in_order() {
    let mut jitter = buffer();
    jitter.insert(0, vec![0], 0).unwrap();
    jitter.insert(2 * STEP, vec![2], 1).unwrap();
    jitter.insert(STEP, vec![1], 1).unwrap();
    assert!(jitter.has(4));
    let out: Vec<Slot> = (3..6).map(|i| jitter.take(i)).collect();
    assert_eq!(out, [Slot::Packet(vec![0]), Slot::Packet(vec![1]), Slot::Packet(vec![2])]);
}

#[test]
fn stragglers_and_duplicate_packets_are_rejected() {
    let mut jitter = buffer();
    jitter.insert(0, vec![0], 0).unwrap();
    assert_eq!(jitter.insert(0, vec![9], 0), Err(Rejected::Duplicate));
    jitter.insert(2 * STEP, vec![2], 2).unwrap();
    assert_eq!(jitter.take(3), Slot::Packet(vec![0]));
    assert_eq!(jitter.take(4), Slot::Lost);
    // Frame 4's packet, older than one already received, arrives while frame 5 is mixed.
    assert_eq!(jitter.insert(STEP, vec![1], 5), Err(Rejected::Late));
    assert_eq!(jitter.take(5), Slot::Packet(vec![2]));
}

#[test]
fn a_sender_falling_behind_is_played_after_the_delay_again() {
    let mut jitter = buffer();
    let mut slots = Vec::new();
    for now in 0..30u64 {
        // Packet `frame` arrives at `frame`, until the sender drops 100 ms of samples: from
        // then on its packets arrive 5 frames after their timestamps say.
        let frame = if now < 10 { Some(now) } else { now.checked_sub(5).filter(|f| *f >= 10) };
        if let Some(frame) = frame.filter(|f| *f < 20) {
            let index = jitter.insert(frame as u32 * STEP, vec![frame as u8], now);
            assert_eq!(index, Ok(now + 3), "frame {frame}");
        }
        slots.push(jitter.take(now));
    }
    let packet = |frame: u8| Slot::Packet(vec![frame]);
    assert_eq!(slots[3..13], (0..10).map(packet).collect::<Vec<_>>());
    // A short concealed gap, then the stream goes on after the delay.
    assert_eq!(slots[13..18], [Slot::Lost, Slot::Lost, Slot::Lost, Slot::Lost, Slot::Lost]);
    assert_eq!(slots[18..28], (10..20).map(packet).collect::<Vec<_>>());
}

#[test]
fn a_sender_running_ahead_is_moved_closer() {
    let mut jitter = buffer();
    // The sender's clock runs 2 % fast: without adapting, its packets would arrive ever
    // further ahead of their playout (20 frames after 1000); adapting, the lead stays within
    // the delay, the slack and what it grows in two one-second windows.
    for frame in 0..1000u64 {
        let now = frame * 49 / 50;
        let index = jitter.insert(frame as u32 * STEP, vec![1], now).unwrap();
        assert!(index - now <= 3 + 2 + 3, "lead {} at frame {frame}", index - now);
        let _ = jitter.take(now);
    }
}

#[test]
fn a_short_gap_is_a_loss_and_a_long_one_is_silence() {
    let mut jitter = buffer();
    jitter.insert(0, vec![0], 0).unwrap();
    assert_eq!(jitter.take(3), Slot::Packet(vec![0]));
    let slots: Vec<Slot> = (4..12).map(|i| jitter.take(i)).collect();
    assert_eq!(slots.iter().filter(|s| **s == Slot::Lost).count(), 5);
    assert_eq!(slots[5..], [Slot::Silent, Slot::Silent, Slot::Silent]);
    // Before any packet there is only silence.
    assert_eq!(buffer().take(0), Slot::Silent);
}

#[test]
fn dtx_gaps_keep_the_timeline_and_timestamps_wrap() {
    let mut jitter = buffer();
    let start = u32::MAX - STEP / 2;
    jitter.insert(start, vec![0], 0).unwrap();
    // 20 frames of DTX later, across the wrap of the 32-bit timestamp.
    assert_eq!(jitter.insert(start.wrapping_add(20 * STEP), vec![1], 20), Ok(23));
}

#[test]
fn a_jump_in_timestamps_re_anchors_the_stream() {
    let mut jitter = buffer();
    jitter.insert(0, vec![0], 0).unwrap();
    assert_eq!(jitter.insert(3_000_000, vec![1], 1), Ok(4));
    assert_eq!(jitter.insert(3_000_000 + STEP, vec![2], 2), Ok(5));
    assert_eq!(jitter.take(3), Slot::Silent, "the old stream's packets are gone");
}
