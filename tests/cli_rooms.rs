//! `rdv room ...` as an operator uses it: the real binary on a real data directory.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

mod common;

use std::os::unix::fs::PermissionsExt;
use std::process::Stdio;

use common::Rdv;
use serde_json::Value;

fn is_hex(text: &Value, len: usize) -> bool {
    text.as_str().is_some_and(|t| {
        t.len() == len && t.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    })
}

#[test]
fn create_list_show_delete() {
    let rdv = Rdv::new();
    let created = rdv.run(&["room", "create", "weekly", "--json"]).json();
    assert_eq!(created["name"], "weekly");
    assert!(is_hex(&created["jami_id"], 40), "{created}");
    assert!(is_hex(&created["device_id"], 40));
    assert!(is_hex(&created["device_long_id"], 64));
    let chain = created["certificate_chain_pem"].as_str().unwrap();
    assert_eq!(chain.matches("-----BEGIN CERTIFICATE-----").count(), 3);
    assert_eq!(created["policy"]["admission"], "open");

    let shown = rdv.run(&["room", "show", "WEEKLY", "--json"]).json();
    assert_eq!(shown, created, "show returns what create stored");

    let second = rdv.run(&["room", "create", "all-hands", "--json"]).json();
    assert_ne!(second["jami_id"], created["jami_id"]);
    let listed = rdv.run(&["room", "list", "--json"]).json();
    assert_eq!(listed.as_array().unwrap().len(), 2);
    assert_eq!(listed[0], second, "listed by name");
    assert_eq!(listed[1], created);

    let table = rdv.run(&["room", "list"]).ok();
    assert!(
        table.contains("weekly") && table.contains(created["jami_id"].as_str().unwrap()),
        "{table}"
    );
    let text = rdv.run(&["room", "show", "weekly"]).ok();
    assert!(text.contains(created["device_long_id"].as_str().unwrap()), "{text}");

    let deleted = rdv.run(&["room", "delete", "weekly", "--json"]).json();
    assert_eq!(deleted["name"], "weekly");
    assert_eq!(deleted["jami_id"], created["jami_id"]);
    let listed = rdv.run(&["room", "list", "--json"]).json();
    assert_eq!(listed.as_array().unwrap(), &[second]);
    assert!(rdv.run(&["room", "show", "weekly"]).error().contains("no room named \"weekly\""));
}

#[test]
fn secrets_stay_in_a_private_database() {
    let rdv = Rdv::new();
    let create = rdv.run(&["room", "create", "private", "--json", "--log-filter", "trace"]);
    assert!(!create.stdout.contains("PRIVATE KEY") && !create.stderr.contains("PRIVATE KEY"));
    create.ok();
    let show = rdv.run(&["room", "show", "private", "--json", "--log-filter", "trace"]);
    assert!(!show.stdout.contains("PRIVATE KEY") && !show.stderr.contains("PRIVATE KEY"));
    let mode = |name: &str| {
        std::fs::metadata(rdv.data_dir().join(name)).unwrap().permissions().mode() & 0o777
    };
    assert_eq!(mode(""), 0o700);
    assert_eq!(mode("rdv.sqlite3"), 0o600);
    for entry in std::fs::read_dir(rdv.data_dir()).unwrap() {
        let entry = entry.unwrap();
        let mode = entry.metadata().unwrap().permissions().mode();
        assert_eq!(mode & 0o077, 0, "{:?} is readable by others", entry.file_name());
    }
}

#[test]
fn bad_input_is_refused_on_one_line_and_loses_nothing() {
    let rdv = Rdv::new();
    let kept = rdv.run(&["room", "create", "kept", "--json"]).json();
    let database = std::fs::read(rdv.data_dir().join("rdv.sqlite3")).unwrap();
    assert!(!database.is_empty());

    let cases: &[(&[&str], &str)] = &[
        (&["room", "create", "bad name"], "invalid room name"),
        (&["room", "create", "-x-"], "unexpected argument"),
        (&["room", "create", ""], "invalid room name"),
        (&["room", "create", "KEPT"], "a room named \"KEPT\" already exists"),
        (&["room", "show", "nope"], "no room named \"nope\""),
        (&["room", "delete", "nope"], "no room named \"nope\""),
        (&["room", "show", "../etc"], "invalid room name"),
    ];
    for (args, expected) in cases {
        let run = rdv.run(args);
        if *expected == "unexpected argument" {
            assert_eq!(run.code, 2, "clap usage error for {args:?}");
            continue;
        }
        let line = run.error();
        assert!(line.contains(expected), "{args:?}: {line}");
    }

    std::fs::write(rdv.path().join("rdv.toml"), "data_dir = \"./data\"\ncolour = \"blue\"\n")
        .unwrap();
    assert!(rdv.run(&["room", "list"]).error().contains("unknown field `colour`"));
    std::fs::write(rdv.path().join("rdv.toml"), "[log]\nformat = [1]\n").unwrap();
    assert!(rdv.run(&["room", "list"]).error().contains("log.format"));
    std::fs::write(rdv.path().join("rdv.toml"), "data_dir = \n").unwrap();
    assert!(rdv.run(&["room", "list"]).error().contains("TOML parse error"));
    std::fs::remove_file(rdv.path().join("rdv.toml")).unwrap();
    assert!(
        rdv.run(&["room", "list", "--config", "missing.toml"])
            .error()
            .contains("missing.toml does not exist")
    );

    let mut command = rdv.command(&["room", "list"]);
    command.env("RDV_DATA_DIRECTORY", "elsewhere");
    assert!(rdv.run_command(command).error().contains("unknown field `data_directory`"));
    let mut command = rdv.command(&["room", "list"]);
    command.env("RDV_LOG__FORMAT", "yaml");
    assert!(rdv.run_command(command).error().contains("\"yaml\" is not a log format"));

    std::fs::write(rdv.path().join("a-file"), "").unwrap();
    assert!(
        rdv.run(&["room", "list", "--data-dir", "a-file"]).error().contains("is not a directory")
    );
    assert!(
        rdv.run(&["room", "create", "x", "--data-dir", "a-file"])
            .error()
            .contains("is not a directory")
    );
    assert!(
        rdv.run(&["room", "list", "--data-dir", "absent"])
            .error()
            .contains("absent does not exist")
    );
    assert!(
        !rdv.path().join("absent").exists(),
        "read-only commands do not create data directories"
    );

    // Nothing above touched the stored room.
    let listed = rdv.run(&["room", "list", "--json"]).json();
    assert_eq!(listed.as_array().unwrap(), &[kept]);
}

#[test]
fn a_damaged_database_is_reported_and_left_untouched() {
    let rdv = Rdv::new();
    std::fs::create_dir(rdv.data_dir()).unwrap();
    let garbage = b"SQLite format 2\0 but really a shopping list\n".repeat(200);
    let database = rdv.data_dir().join("rdv.sqlite3");
    std::fs::write(&database, &garbage).unwrap();
    for args in [&["room", "list"][..], &["room", "create", "x"], &["run"]] {
        let line = rdv.run(args).error();
        assert!(line.contains("damaged or not an rdv database"), "{args:?}: {line}");
    }
    assert_eq!(std::fs::read(&database).unwrap(), garbage);
}

#[test]
fn configuration_layers_choose_the_data_directory() {
    let rdv = Rdv::new();
    std::fs::write(rdv.path().join("rdv.toml"), "data_dir = \"from-file\"\n").unwrap();
    rdv.run(&["room", "create", "one"]).ok();
    assert!(rdv.path().join("from-file/rdv.sqlite3").exists());

    let mut command = rdv.command(&["room", "create", "two"]);
    command.env("RDV_DATA_DIR", "from-env");
    rdv.run_command(command).ok();
    assert!(rdv.path().join("from-env/rdv.sqlite3").exists());

    let mut command = rdv.command(&["room", "create", "three", "--data-dir", "from-flag"]);
    command.env("RDV_DATA_DIR", "from-env");
    rdv.run_command(command).ok();
    let listed = rdv.run(&["room", "list", "--json", "--data-dir", "from-flag"]).json();
    assert_eq!(listed[0]["name"], "three");

    std::fs::write(rdv.path().join("other.toml"), "data_dir = \"from-env\"\n").unwrap();
    let mut command = rdv.command(&["room", "list", "--json"]);
    command.env("RDV_CONFIG", "other.toml");
    let listed = rdv.run_command(command).json();
    assert_eq!(listed[0]["name"], "two", "RDV_CONFIG names the file");
}

#[test]
fn logs_are_json_on_request() {
    let rdv = Rdv::new();
    let run = rdv.run(&["room", "create", "logged", "--log-format", "json"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let events: Vec<Value> =
        run.stderr.lines().map(|line| serde_json::from_str(line).unwrap()).collect();
    assert!(
        events.iter().any(|e| e["fields"]["message"] == "room created" && e["level"] == "INFO"),
        "{events:?}"
    );
}

#[test]
fn concurrent_commands_share_the_data_directory() {
    let rdv = Rdv::new();
    let creators: Vec<_> = ["north", "south", "east", "west"]
        .into_iter()
        .map(|name| {
            let mut command = rdv.command(&["room", "create", name, "--json"]);
            command.stdout(Stdio::piped()).stderr(Stdio::piped());
            command.spawn().unwrap()
        })
        .collect();
    // Readers run while the writers migrate and insert.
    let mut readers_ok = 0;
    for _ in 0..5 {
        let run = rdv.run(&["room", "list", "--json"]);
        if run.code == 0 {
            readers_ok += 1;
        } else {
            assert!(run.stderr.contains("does not exist"), "a reader failed: {}", run.stderr);
        }
    }
    for creator in creators {
        let output = creator.wait_with_output().unwrap();
        assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    }
    let listed = rdv.run(&["room", "list", "--json"]).json();
    let names: Vec<&str> =
        listed.as_array().unwrap().iter().map(|r| r["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["east", "north", "south", "west"]);
    eprintln!("{readers_ok} of 5 concurrent listings found the data directory");
}

#[test]
fn admission_bans_allow_lists_and_moderators_are_set_from_the_cli() {
    let rdv = Rdv::new();
    rdv.run(&["room", "create", "standup"]).ok();
    let caller = "0f106bf56b3b56c4f345514d2cebdd5774758dfd";

    assert!(rdv.run(&["room", "admission", "standup", "allow-list"]).ok().contains("allow-list"));
    let shown = rdv.run(&["room", "show", "standup", "--json"]).json();
    assert_eq!(shown["policy"]["admission"], "allow_list");
    assert!(rdv.run(&["room", "allow", "standup", caller]).ok().contains("allowed"));
    assert!(rdv.run(&["room", "ban", "standup", &caller.to_uppercase()]).ok().contains("banned"));
    // Granting twice is harmless; revoking what is not there is an error.
    rdv.run(&["room", "ban", "standup", caller]).ok();
    rdv.run(&["room", "unban", "standup", caller]).ok();
    let error = rdv.run(&["room", "unban", "standup", caller]).error();
    assert!(error.contains("is not banned"), "{error}");
    rdv.run(&["room", "disallow", "standup", caller]).ok();
    let added = rdv.run(&["room", "moderator", "add", "standup", caller]).ok();
    assert!(added.contains("moderator"), "{added}");
    rdv.run(&["room", "moderator", "remove", "standup", caller]).ok();
    let error = rdv.run(&["room", "moderator", "remove", "standup", caller]).error();
    assert!(error.contains("is not"), "{error}");

    let policy = rdv
        .run(&["room", "policy", "standup", "--lock", "on", "--max-participants", "5", "--json"])
        .json();
    assert_eq!(
        (policy["locked"].as_bool(), policy["max_participants"].as_u64()),
        (Some(true), Some(5))
    );
    let shown = rdv.run(&["room", "show", "standup", "--json"]).json();
    assert_eq!(shown["policy"]["locked"], true, "the policy is stored");
    let text =
        rdv.run(&["room", "policy", "standup", "--lock", "off", "--max-participants", "0"]).ok();
    assert!(text.contains("unlocked") && text.contains("at most none"), "{text}");
    let usage = rdv.run(&["room", "policy", "standup", "--lock", "maybe"]);
    assert!(
        usage.code == 2 && usage.stderr.contains("possible values: on, off"),
        "{}",
        usage.stderr
    );

    let error = rdv.run(&["room", "ban", "nosuchroom", caller]).error();
    assert!(error.contains("no room named"), "{error}");
    let error = rdv.run(&["room", "ban", "standup", "not-a-jami-id"]).error();
    assert!(error.contains("not a Jami ID"), "{error}");
    rdv.run(&["room", "admission", "standup", "open"]).ok();
    let shown = rdv.run(&["room", "show", "standup", "--json"]).json();
    assert_eq!(shown["policy"]["admission"], "open");
}
