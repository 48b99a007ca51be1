use super::*;

const ALICE: &str = "0f106bf56b3b56c4f345514d2cebdd5774758dfd";
const BOB: &str = "5942a65f5d12c0944733f7227bec89d872f5e491";

fn target(account: &str, device: Option<&str>) -> Target {
    Target { account: account.parse().unwrap(), device: device.map(str::to_owned) }
}

#[test]
fn v0_orders() {
    let body = format!(r#"{{"muteParticipant":"{BOB}@ring.dht","muteState":"true"}}"#);
    assert_eq!(
        parse(body.as_bytes()),
        Ok(vec![Order::MuteAudio { target: target(BOB, None), muted: true }])
    );
    assert_eq!(parse(br#"{"layout":2}"#), Ok(vec![Order::Layout(2)]));
    let body = format!(r#"{{"hangupParticipant":"{BOB}"}}"#);
    assert_eq!(parse(body.as_bytes()), Ok(vec![Order::Hangup(target(BOB, None))]));
    let body = format!(r#"{{"handRaised":"{ALICE}@ring.dht","handState":"false"}}"#);
    assert_eq!(
        parse(body.as_bytes()),
        Ok(vec![Order::RaiseHand { target: target(ALICE, None), raised: false }])
    );
    let body = format!(r#"{{"activeParticipant":"{BOB}"}}"#);
    assert_eq!(parse(body.as_bytes()), Ok(vec![Order::Active(Some(target(BOB, None)))]));
}

#[test]
fn v1_mute_as_jami_13_writes_it_with_the_copy_at_the_account_level() {
    let body = format!(
        r#"{{"{BOB}":{{"medias":{{"call_audio_0":{{"muteAudio":true}}}},"devices":{{"dev1":{{"medias":{{"call_audio_0":{{"muteAudio":true}}}}}}}}}},"version":1}}"#
    );
    assert_eq!(
        parse(body.as_bytes()),
        Ok(vec![Order::MuteAudio { target: target(BOB, Some("dev1")), muted: true }])
    );
}

#[test]
fn v1_hand_hangup_layout_and_active() {
    let body = format!(
        r#"{{"version":1,"layout":1,"{ALICE}":{{"devices":{{"d":{{"raiseHand":true}}}}}},"{BOB}":{{"devices":{{"e":{{"hangup":"true","medias":{{"s":{{"active":true}}}}}}}}}}}}"#
    );
    let orders = parse(body.as_bytes()).unwrap();
    assert!(orders.contains(&Order::Layout(1)));
    assert!(orders.contains(&Order::RaiseHand { target: target(ALICE, Some("d")), raised: true }));
    assert!(orders.contains(&Order::Hangup(target(BOB, Some("e")))));
    assert!(orders.contains(&Order::Active(Some(target(BOB, Some("e"))))));
    assert_eq!(orders.len(), 4);
}

#[test]
fn hostile_or_odd_bodies_are_refused_or_ignored() {
    assert!(matches!(parse(b"not json"), Err(OrderError::Syntax(_))));
    assert!(matches!(parse(b"[1,2]"), Err(OrderError::Syntax(_))));
    assert!(matches!(parse(&vec![b' '; 20_000]), Err(OrderError::TooLarge(_))));
    assert_eq!(parse(br#"{"layout":7}"#), Ok(vec![]));
    assert_eq!(parse(br#"{"muteParticipant":"not-an-account","muteState":"true"}"#), Ok(vec![]));
    assert_eq!(parse(br#"{"version":1,"zz":{"devices":{"d":{"raiseHand":true}}}}"#), Ok(vec![]));
    assert_eq!(parse(br#"{"version":1,"0f106bf56b3b56c4f345514d2cebdd5774758dfd":7}"#), Ok(vec![]));
}

#[test]
fn random_json_shapes_never_panic() {
    let pieces = [
        "{",
        "}",
        "[",
        "]",
        ",",
        ":",
        "\"version\"",
        "1",
        "\"devices\"",
        "\"medias\"",
        "\"muteAudio\"",
        "true",
        "\"hangup\"",
        "\"raiseHand\"",
        "\"layout\"",
        "null",
        "\"0f106bf56b3b56c4f345514d2cebdd5774758dfd\"",
        "\"x\"",
        "-1",
        "1e99",
    ];
    for _ in 0..5000 {
        let count = 1 + rand::random::<u32>() as usize % 30;
        let body: String =
            (0..count).map(|_| pieces[rand::random::<u32>() as usize % pieces.len()]).collect();
        let _ = parse(body.as_bytes());
    }
}
