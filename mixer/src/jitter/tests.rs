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
fn late_and_duplicate_packets_are_rejected() {
    let mut jitter = buffer();
    jitter.insert(0, vec![0], 0).unwrap();
    assert_eq!(jitter.insert(0, vec![9], 0), Err(Rejected::Duplicate));
    assert_eq!(jitter.take(3), Slot::Packet(vec![0]));
    // Frame 4's packet arrives while frame 5 is mixed.
    assert_eq!(jitter.insert(STEP, vec![1], 5), Err(Rejected::Late));
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
