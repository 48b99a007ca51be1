//! Bots are bounded per room: with 32 bots connected to a room's audio, the 33rd is refused
//! (409, the reason in the JSON body), and once one leaves another is let in. No Jami client
//! is needed: bots alone keep a room's mixer running.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

mod common;
#[path = "support/harness.rs"]
mod harness;
#[path = "support/server.rs"]
mod server;

use std::process::Command;

use common::{Rdv, prerequisite, runs};
use server::Server;

/// Opens 32 bot sockets and holds them, tries a 33rd, closes one, tries again; prints what
/// happened as JSON.
const CLIENT: &str = r#"
import asyncio, json, sys
import websockets

async def main():
    url, token = sys.argv[1], sys.argv[2]
    headers = {"Authorization": "Bearer " + token}
    held = [await websockets.connect(url, extra_headers=headers) for _ in range(32)]
    report = {"held": len(held)}
    try:
        extra = await websockets.connect(url, extra_headers=headers)
        report["33rd"] = "accepted"
        await extra.close()
    except websockets.exceptions.InvalidStatusCode as refused:
        report["33rd"] = refused.status_code
    await held.pop().close()
    await asyncio.sleep(0.5)
    again = await websockets.connect(url, extra_headers=headers)
    report["after one left"] = "accepted"
    await again.close()
    for socket in held:
        await socket.close()
    print(json.dumps(report), flush=True)

asyncio.run(main())
"#;

#[test]
fn a_room_takes_32_bots_at_most() {
    if !prerequisite("python3-websockets", runs(harness::PYTHON, &["-c", "import websockets"])) {
        return;
    }
    let rdv = Rdv::new();
    rdv.run(&["room", "create", "lobby"]).ok();
    // Nothing answers on the discard port: the DHT node stays alone.
    let mut server = Server::start(&rdv, &[], "127.0.0.1:9");
    server.wait_for(&["room listening for calls on the DHT", "room=lobby"]);
    let url = format!("ws://{}/api/v1/rooms/lobby/bot", server.api_address());
    let output = Command::new("timeout")
        .args(["60", harness::PYTHON, "-c", CLIENT, &url, server::ADMIN_TOKEN])
        .output()
        .unwrap();
    assert!(output.status.success(), "{output:?}");
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    eprintln!("{report}");
    assert_eq!(report["held"], 32, "{report}");
    assert_eq!(report["33rd"], 409, "{report}");
    assert_eq!(report["after one left"], "accepted", "{report}");
    server.wait_for(&["a bot joined the room's audio"]);
    assert_eq!(server.stop(), 0);
}
