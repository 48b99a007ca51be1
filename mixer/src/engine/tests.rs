use std::f32::consts::TAU;

use super::*;
use crate::audio::SAMPLE_RATE;
use crate::audio::tests::amplitude_at;

const FREQUENCIES: [f32; 3] = [450.0, 1000.0, 1500.0];

fn frame(freq: f32, index: u64) -> Vec<f32> {
    let start = index as usize * FRAME_SAMPLES;
    (start..start + FRAME_SAMPLES)
        .map(|i| 0.2 * (TAU * freq * i as f32 / SAMPLE_RATE as f32).sin())
        .collect()
}

fn room() -> AudioMixer {
    let mut mixer = AudioMixer::new(VoiceActivityConfig::default(), 0);
    for id in 0..3 {
        mixer.add(ParticipantId(id));
    }
    mixer
}

/// Feeds `ticks` frames of every talking participant, mixing each tick; returns the last.
fn run(
    mixer: &mut AudioMixer,
    talking: &[u64],
    from: u64,
    ticks: u64,
) -> (Vec<MixOutput>, Vec<AudioEvent>) {
    let mut last = (Vec::new(), Vec::new());
    for index in from..from + ticks {
        for id in talking {
            mixer.push(ParticipantId(*id), index, frame(FREQUENCIES[*id as usize], index));
        }
        let (outputs, events) = mixer.mix();
        last.0 = outputs;
        last.1.extend(events);
    }
    last
}

fn heard_by(outputs: &[MixOutput], listener: u64) -> &MixOutput {
    outputs
        .iter()
        .find(|o| o.listeners.contains(&ParticipantId(listener)))
        .expect("every participant has an output")
}

#[test]
fn each_hears_the_others_once_they_talk() {
    let mut mixer = room();
    let (outputs, events) = run(&mut mixer, &[0, 1, 2], 0, 5);
    assert_eq!(
        events
            .iter()
            .filter(|e| matches!(e, AudioEvent::VoiceActivity { active: true, .. }))
            .count(),
        3
    );
    assert_eq!(outputs.len(), 3, "three speakers: three outputs");
    for listener in 0..3u64 {
        let output = heard_by(&outputs, listener);
        for speaker in 0..3u64 {
            let level = amplitude_at(&output.samples, FREQUENCIES[speaker as usize]);
            if speaker == listener {
                assert!(level < 1e-3, "{listener} hears itself");
            } else {
                assert!((level - 0.2).abs() < 0.02, "{listener} hears {speaker} at {level}");
            }
        }
    }
    assert!(
        (mixer.level(ParticipantId(0)).unwrap() + 16.99).abs() < 0.1,
        "0.2 amplitude is -17 dBFS"
    );
}

#[test]
fn a_stalled_sender_never_stalls_the_mix() {
    let mut mixer = room();
    run(&mut mixer, &[0, 1, 2], 0, 5);
    // Participant 2 stops sending: every tick still produces outputs without it.
    let (outputs, _) = run(&mut mixer, &[0, 1], 5, 3);
    let for_two = heard_by(&outputs, 2);
    assert!(
        amplitude_at(&for_two.samples, FREQUENCIES[0]) > 0.18
            && amplitude_at(&for_two.samples, FREQUENCIES[1]) > 0.18
    );
    assert!(amplitude_at(&heard_by(&outputs, 0).samples, FREQUENCIES[2]) < 1e-3);
    // After the release time it is reported silent.
    let (_, events) = run(&mut mixer, &[0, 1], 8, 25);
    assert!(
        events
            .contains(&AudioEvent::VoiceActivity { participant: ParticipantId(2), active: false })
    );
}

#[test]
fn moderator_mute_takes_a_voice_out() {
    let mut mixer = room();
    run(&mut mixer, &[0, 1, 2], 0, 5);
    mixer.set_muted(ParticipantId(1), true);
    let (outputs, events) = run(&mut mixer, &[0, 1, 2], 5, 1);
    assert!(
        events
            .contains(&AudioEvent::VoiceActivity { participant: ParticipantId(1), active: false })
    );
    for listener in [0, 2] {
        assert!(
            amplitude_at(&heard_by(&outputs, listener).samples, FREQUENCIES[1]) < 1e-3,
            "1 is muted"
        );
    }
    let muted_hears = heard_by(&outputs, 1);
    assert!(
        amplitude_at(&muted_hears.samples, FREQUENCIES[0]) > 0.18,
        "the muted participant still hears"
    );
    assert_eq!(
        outputs.len(),
        3,
        "two speakers + one shared output (the muted one hears the full mix)"
    );
}

#[test]
fn late_duplicate_and_flooded_frames_are_bounded() {
    let mut mixer = room();
    run(&mut mixer, &[0], 0, 3);
    mixer.push(ParticipantId(0), 1, frame(450.0, 1)); // late: dropped
    mixer.push(ParticipantId(0), 3, frame(450.0, 3));
    mixer.push(ParticipantId(0), 3, frame(450.0, 3)); // duplicate: dropped
    mixer.push(ParticipantId(9), 3, frame(450.0, 3)); // unknown: dropped
    mixer.push(ParticipantId(0), 4, vec![0.0; 10]); // wrong size: dropped
    for index in 4..10_000 {
        mixer.push(ParticipantId(1), index, frame(1000.0, index));
    }
    assert!(mixer.participants[&ParticipantId(1)].queue.len() <= MAX_QUEUED_FRAMES);
    assert_eq!(mixer.participants[&ParticipantId(0)].queue.len(), 1);
}

#[test]
fn joining_and_leaving_do_not_disturb_the_others() {
    let mut mixer = room();
    run(&mut mixer, &[0, 1, 2], 0, 5);
    assert!(mixer.remove(ParticipantId(2)));
    mixer.add(ParticipantId(3));
    let (outputs, _) = run(&mut mixer, &[0, 1], 5, 1);
    let for_zero = heard_by(&outputs, 0);
    assert!(
        (amplitude_at(&for_zero.samples, FREQUENCIES[1]) - 0.2).abs() < 0.02,
        "0 still hears 1 at once"
    );
    assert!(
        heard_by(&outputs, 3).samples.iter().any(|s| *s != 0.0),
        "the newcomer hears the room at once"
    );
}

#[test]
fn quiet_listeners_share_one_output() {
    let mut mixer = AudioMixer::new(VoiceActivityConfig::default(), 0);
    for id in 0..64 {
        mixer.add(ParticipantId(id));
    }
    mixer.set_gain(ParticipantId(10), -6.0);
    let mut outputs = Vec::new();
    for index in 0..5 {
        mixer.push(ParticipantId(0), index, frame(450.0, index));
        outputs = mixer.mix().0;
    }
    // One speaker among 64: its own output, one shared by the 62 others at 0 dB, and one for
    // the listener with its own gain.
    assert_eq!(outputs.len(), 3);
    assert_eq!(outputs.iter().map(|o| o.listeners.len()).max(), Some(62));
    // Nobody sends this tick: the speaker's frame is missing, so two outputs remain.
    let (outputs, _) = mixer.mix();
    assert_eq!(outputs.len(), 2);
}

#[test]
fn levels_are_reported_every_interval_and_follow_the_input() {
    let mut mixer = room();
    let (_, events) = run(&mut mixer, &[1], 0, LEVEL_INTERVAL * 2);
    let reports: Vec<&Vec<(ParticipantId, f32)>> = events
        .iter()
        .filter_map(|e| match e {
            AudioEvent::Levels(levels) => Some(levels),
            _ => None,
        })
        .collect();
    assert_eq!(reports.len(), 2);
    for levels in reports {
        assert_eq!(levels.len(), 3);
        for (id, dbfs) in levels {
            if id.0 == 1 {
                // A 0.2 sine: RMS 0.141, -17 dBFS.
                assert!((dbfs + 17.0).abs() < 0.5, "{dbfs}");
            } else {
                assert_eq!(*dbfs, crate::audio::SILENCE_DBFS);
            }
        }
    }
}

#[test]
fn a_tap_hears_only_its_source_even_before_voice_activity() {
    let mut mixer = room();
    mixer.add(ParticipantId(3));
    mixer.set_only(ParticipantId(3), Some(ParticipantId(1)));
    // The first tick: no voice activity yet, so the mix is silent, but the tap hears 1.
    let (outputs, _) = run(&mut mixer, &[0, 1, 2], 0, 1);
    let tap = heard_by(&outputs, 3);
    assert_eq!(tap.listeners, vec![ParticipantId(3)], "a tap's output is its own");
    assert!((amplitude_at(&tap.samples, FREQUENCIES[1]) - 0.2).abs() < 0.02);
    let (outputs, _) = run(&mut mixer, &[0, 1, 2], 1, 5);
    let tap = heard_by(&outputs, 3);
    assert!((amplitude_at(&tap.samples, FREQUENCIES[1]) - 0.2).abs() < 0.02, "hears 1");
    for other in [0, 2] {
        assert!(amplitude_at(&tap.samples, FREQUENCIES[other]) < 1e-3, "does not hear {other}");
    }
    assert!(
        (amplitude_at(&heard_by(&outputs, 0).samples, FREQUENCIES[1]) - 0.2).abs() < 0.02,
        "the others still hear the mix"
    );
    mixer.set_muted(ParticipantId(1), true);
    let (outputs, _) = run(&mut mixer, &[0, 1, 2], 6, 1);
    assert!(amplitude_at(&heard_by(&outputs, 3).samples, FREQUENCIES[1]) < 1e-3, "muted: silent");
    mixer.set_only(ParticipantId(3), None);
    let (outputs, _) = run(&mut mixer, &[0, 2], 7, 1);
    assert!(amplitude_at(&heard_by(&outputs, 3).samples, FREQUENCIES[0]) > 0.18, "the mix again");
}
