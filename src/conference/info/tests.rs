use super::*;

fn participant(uri: &str) -> ConfInfoEntry {
    ConfInfoEntry {
        uri: format!("{uri}@ring.dht"),
        device: "dev".into(),
        sink_id: "call_video_0".into(),
        active: false,
        x: 0,
        y: 0,
        w: 640,
        h: 360,
        video_muted: false,
        audio_local_muted: false,
        audio_moderator_muted: false,
        is_moderator: false,
        hand_raised: false,
        voice_activity: true,
        recording: false,
    }
}

#[test]
fn conf_info_has_jamis_field_names_and_types() {
    let json: serde_json::Value =
        serde_json::from_str(&conf_info(&[participant("a"), participant("b")], 1280, 720, 0))
            .unwrap();
    assert_eq!((json["w"].as_u64(), json["h"].as_u64()), (Some(1280), Some(720)));
    assert_eq!((json["v"].as_u64(), json["layout"].as_u64()), (Some(1), Some(0)));
    let first = &json["p"][0];
    assert_eq!(first["uri"], "a@ring.dht");
    assert_eq!(first["sinkId"], "call_video_0");
    assert_eq!(first["w"], 640);
    for flag in [
        "active",
        "videoMuted",
        "audioLocalMuted",
        "audioModeratorMuted",
        "isModerator",
        "handRaised",
        "voiceActivity",
        "recording",
    ] {
        assert!(first[flag].is_boolean(), "{flag}");
    }
    assert_eq!(json["p"].as_array().unwrap().len(), 2);
}

#[test]
fn a_change_goes_out_at_once_then_at_most_once_per_interval() {
    let start = Instant::now();
    let interval = Duration::from_millis(250);
    let mut pacer = Pacer::new(interval);
    assert_eq!(pacer.poll_timeout(), None);
    assert!(!pacer.poll_due(start), "nothing changed");
    pacer.changed();
    assert!(pacer.poll_due(start));
    // Voice activity flips every 10 ms for a second: four more sends, not a hundred.
    let mut sent = 0;
    for step in 1..=100u32 {
        let now = start + Duration::from_millis(u64::from(step) * 10);
        pacer.changed();
        if pacer.poll_due(now) {
            sent += 1;
        }
    }
    assert_eq!(sent, 4);
    // A change right after a send waits for the end of the interval.
    pacer.changed();
    let due = pacer.poll_timeout().unwrap();
    assert_eq!(due, start + Duration::from_millis(1250));
    assert!(!pacer.poll_due(start + Duration::from_millis(1100)));
    assert!(pacer.poll_due(due));
    assert_eq!(pacer.poll_timeout(), None);
}

#[test]
fn a_resend_happens_even_without_a_change() {
    let start = Instant::now();
    let mut pacer = Pacer::new(Duration::from_millis(250));
    pacer.changed();
    assert!(pacer.poll_due(start));
    let at = start + Duration::from_millis(1500);
    pacer.resend_at(at);
    assert_eq!(pacer.poll_timeout(), Some(at));
    assert!(!pacer.poll_due(start + Duration::from_secs(1)));
    assert!(pacer.poll_due(at));
    assert_eq!(pacer.poll_timeout(), None);
}
