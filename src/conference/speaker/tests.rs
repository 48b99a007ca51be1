use super::*;

const A: ParticipantId = ParticipantId(1);
const B: ParticipantId = ParticipantId(2);

fn at(start: Instant, ms: u64) -> Instant {
    start + Duration::from_millis(ms)
}

#[test]
fn a_speaker_takes_the_tile_after_speaking_long_enough() {
    let start = Instant::now();
    let mut picker = SpeakerPicker::new(Hysteresis::default());
    picker.voice(A, true, start);
    assert_eq!(picker.poll(at(start, 1000)), None, "too short");
    assert_eq!(picker.poll_timeout(), Some(at(start, 1500)));
    assert_eq!(picker.poll(at(start, 1500)), Some(A));
    assert_eq!(picker.poll(at(start, 1600)), None, "no change");
}

#[test]
fn flapping_voice_activity_does_not_flap_the_tile() {
    let start = Instant::now();
    let mut picker = SpeakerPicker::new(Hysteresis::default());
    picker.voice(A, true, start);
    assert_eq!(picker.poll(at(start, 1500)), Some(A));
    // B and A alternate every 100 ms for 10 s: short bursts never take the tile.
    let mut changes = 0;
    for step in 0..100u64 {
        let now = at(start, 1600 + step * 100);
        picker.voice(B, step % 2 == 0, now);
        picker.voice(A, step % 2 == 1, now);
        if picker.poll(now).is_some() {
            changes += 1;
        }
    }
    assert_eq!(changes, 0);
}

#[test]
fn the_tile_moves_to_a_new_speaker_after_the_hold_and_stays_in_silence() {
    let start = Instant::now();
    let mut picker = SpeakerPicker::new(Hysteresis::default());
    picker.voice(A, true, start);
    assert_eq!(picker.poll(at(start, 1500)), Some(A));
    picker.voice(A, false, at(start, 2000));
    picker.voice(B, true, at(start, 2000));
    assert_eq!(picker.poll(at(start, 3600)), None, "A's hold lasts 3 s");
    assert_eq!(picker.poll(at(start, 4500)), Some(B));
    picker.voice(B, false, at(start, 5000));
    assert_eq!(picker.poll(at(start, 20_000)), None, "in silence B stays");
    picker.remove(B);
    picker.voice(A, true, at(start, 21_000));
    assert_eq!(picker.poll(at(start, 22_500)), Some(A));
}

#[test]
fn after_a_poll_the_next_wake_up_is_never_due_already() {
    // A loop that sleeps until poll_timeout and then polls must not spin: a caller who
    // talks on (the one shown, or one who cannot take the tile yet) is no reason to wake.
    let start = Instant::now();
    let mut picker = SpeakerPicker::new(Hysteresis::default());
    let mut now = start;
    let check = |picker: &mut SpeakerPicker, now: Instant| {
        picker.poll(now);
        let wake = picker.poll_timeout();
        assert!(wake.is_none_or(|wake| wake > now), "{wake:?} is due at {now:?}");
    };
    picker.voice(A, true, now);
    check(&mut picker, now);
    now = at(start, 1500);
    check(&mut picker, now); // A takes the tile
    picker.voice(B, true, at(start, 1600));
    for step in 0..100u64 {
        now = at(start, 1600 + step * 50); // both talk on: A keeps the tile
        check(&mut picker, now);
    }
    picker.voice(A, false, now);
    now += Duration::from_millis(10);
    check(&mut picker, now); // B takes it
    assert_eq!(picker.poll_timeout(), None, "B talks on, nobody else does");
}
