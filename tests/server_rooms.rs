//! A running server keeps its rooms in step with the store and the admin API, without a
//! restart: rooms created or deleted with the CLI start or stop being served, rooms created
//! and deleted through the API too, room tokens reach only their room, and the metrics and
//! probes tell what is served. No Jami client is needed: the server runs on loopback with no
//! DHT peer.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

#[path = "support/api.rs"]
mod api;
mod common;
#[path = "support/harness.rs"]
mod harness;
#[path = "support/postgres.rs"]
mod postgres;
#[path = "support/server.rs"]
mod server;

use api::Api;
use common::{Rdv, prerequisite, runs};
use postgres::Database;
use server::Server;

#[test]
fn rooms_come_and_go_while_the_server_runs_on_sqlite() {
    if !prerequisite("curl", runs("curl", &["--version"])) {
        return;
    }
    rooms_come_and_go(&Rdv::new(), "sqlite");
}

#[test]
fn rooms_come_and_go_while_the_server_runs_on_postgres() {
    if !prerequisite("curl", runs("curl", &["--version"])) {
        return;
    }
    let Some(database) = Database::create() else { return };
    let rdv = Rdv::new();
    let config = format!("[database]\nurl = \"{}\"\n", database.url);
    std::fs::write(rdv.path().join("rdv.toml"), config).unwrap();
    rooms_come_and_go(&rdv, "postgres");
    let started = rdv.run(&["room", "list"]).ok();
    assert!(started.contains("alpha"), "the CLI reads the same PostgreSQL: {started}");
}

/// The scenario, on whichever database `rdv`'s configuration names.
fn rooms_come_and_go(rdv: &Rdv, database: &str) {
    rdv.run(&["room", "create", "alpha"]).ok();
    // Nothing answers on the discard port: the DHT node stays alone.
    let mut server = Server::start(rdv, &[], "127.0.0.1:9");
    server.wait_for(&["starting", &format!("database={database}")]);
    server.wait_for(&["room listening for calls on the DHT", "room=alpha"]);
    let api = Api::on_host(&mut server);

    // A room made with the CLI is served within the next sync; its policy reaches the API.
    rdv.run(&["room", "create", "beta"]).ok();
    server.wait_for(&["room listening for calls on the DHT", "room=beta"]);
    rdv.run(&["room", "policy", "alpha", "--lock", "on"]).ok();
    let alpha = api.expect(200, "GET", "/api/v1/rooms/alpha", None);
    assert_eq!(alpha["policy"]["locked"], true, "{alpha}");

    // A room made through the API gets a Jami identity and is served at once.
    let gamma = api.expect(
        201,
        "POST",
        "/api/v1/rooms",
        Some(r#"{"name":"gamma","policy":{"lobby":true,"max_participants":5}}"#),
    );
    assert_eq!(gamma["jami_id"].as_str().unwrap().len(), 40, "{gamma}");
    assert_eq!(gamma["policy"]["lobby"], true);
    server.wait_for(&["room listening for calls on the DHT", "room=gamma"]);
    let (status, body) = api.request("POST", "/api/v1/rooms", Some(r#"{"name":"GAMMA"}"#));
    assert_eq!((status, body.contains("\"conflict\"")), (409, true), "{body}");
    let names: Vec<String> = api
        .expect(200, "GET", "/api/v1/rooms", None)
        .as_array()
        .unwrap()
        .iter()
        .map(|room| room["name"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(names, ["alpha", "beta", "gamma"]);

    // A room token opens its room's routes and nothing else.
    let created =
        api.expect(201, "POST", "/api/v1/rooms/gamma/tokens", Some(r#"{"label":"quiz bot"}"#));
    let token = created["token"].as_str().unwrap();
    assert_eq!(api.request_as(Some(token), "GET", "/api/v1/rooms/gamma", None).0, 200);
    assert_eq!(api.request_as(Some(token), "GET", "/api/v1/rooms/alpha", None).0, 403);
    assert_eq!(api.request_as(Some(token), "GET", "/api/v1/rooms", None).0, 403);
    let id = created["id"].as_i64().unwrap();
    api.expect(204, "DELETE", &format!("/api/v1/rooms/gamma/tokens/{id}"), None);
    assert_eq!(api.request_as(Some(token), "GET", "/api/v1/rooms/gamma", None).0, 401);

    // Deleted with the CLI, or through the API: the room stops being served.
    rdv.run(&["room", "delete", "beta"]).ok();
    server.wait_for(&["the room was deleted: it stops", "room=beta"]);
    api.expect(204, "DELETE", "/api/v1/rooms/gamma", None);
    server.wait_for(&["room stopped", "room=gamma"]);
    assert_eq!(api.request("GET", "/api/v1/rooms/gamma", None).0, 404);

    // The metrics count the one room left; without a DHT peer the server is not ready.
    assert_eq!(api.metric("rdv_rooms"), 1.0);
    assert_eq!(api.metric("rdv_dht_connected"), 0.0);
    assert_eq!(api.request_as(None, "GET", "/readyz", None).0, 503);
    assert_eq!(api.request_as(None, "GET", "/healthz", None).0, 200);
    assert_eq!(server.stop(), 0);
}
