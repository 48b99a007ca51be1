use std::io::Write as _;

use super::*;

fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

fn file(contents: &str) -> tempfile::NamedTempFile {
    let mut file = tempfile::Builder::new().suffix(".toml").tempfile().unwrap();
    file.write_all(contents.as_bytes()).unwrap();
    file
}

fn load(
    contents: &str,
    environment: &[(&str, &str)],
    overrides: &Overrides,
) -> Result<Config, ConfigError> {
    let file = file(contents);
    Config::load(Some(file.path()), env(environment), overrides)
}

#[test]
fn defaults_apply_when_nothing_is_set() {
    let config = load("", &[], &Overrides::default()).unwrap();
    assert_eq!(config.data_dir, PathBuf::from("./data"));
    assert_eq!(config.log.format, LogFormat::Text);
    assert_eq!(config.log.filter, LogFilter::parse("info").unwrap());
}

#[test]
fn layers_override_in_order() {
    let contents = "data_dir = \"/from/file\"\n[log]\nformat = \"json\"\nfilter = \"debug\"\n";
    let config = load(contents, &[], &Overrides::default()).unwrap();
    assert_eq!(config.data_dir, PathBuf::from("/from/file"));
    assert_eq!(config.log.format, LogFormat::Json);

    let environment = [("RDV_DATA_DIR", "/from/env"), ("RDV_LOG__FORMAT", "text"), ("OTHER", "x")];
    let config = load(contents, &environment, &Overrides::default()).unwrap();
    assert_eq!(config.data_dir, PathBuf::from("/from/env"));
    assert_eq!(config.log.format, LogFormat::Text);
    assert_eq!(config.log.filter, LogFilter::parse("debug").unwrap(), "file value kept");

    let overrides = Overrides {
        data_dir: Some("/from/flag".into()),
        log_filter: Some("rdv=trace".into()),
        log_format: Some(LogFormat::Json),
        bootstrap: Vec::new(),
    };
    let config = load(contents, &environment, &overrides).unwrap();
    assert_eq!(config.data_dir, PathBuf::from("/from/flag"));
    assert_eq!(config.log.format, LogFormat::Json);
    assert_eq!(config.log.filter, LogFilter::parse("rdv=trace").unwrap());
}

#[test]
fn unknown_keys_are_rejected_by_name() {
    for (contents, environment, key) in [
        ("colour = true\n", &[][..], "colour"),
        ("[log]\nlevel = \"info\"\n", &[][..], "level"),
        ("[turn]\nport = 3478\n", &[][..], "turn"),
        ("", &[("RDV_DATADIR", "/x")][..], "datadir"),
    ] {
        let error = load(contents, environment, &Overrides::default()).unwrap_err().to_string();
        assert!(error.contains(key), "{error:?} does not name {key}");
    }
}

#[test]
fn config_file_variable_is_not_a_key() {
    let config = load("", &[("RDV_CONFIG", "/somewhere.toml")], &Overrides::default()).unwrap();
    assert_eq!(config.data_dir, PathBuf::from("./data"));
}

#[test]
fn wrong_types_and_values_are_rejected_by_key() {
    let error =
        load("[log]\nformat = \"xml\"\n", &[], &Overrides::default()).unwrap_err().to_string();
    assert!(
        error.contains("\"xml\"") && error.contains("log.format") && error.contains("\"json\""),
        "{error}"
    );
    let error = load("data_dir = [\"a\"]\n", &[], &Overrides::default()).unwrap_err().to_string();
    assert!(error.contains("data_dir"), "{error}");
    let error = load("log = 1\n", &[], &Overrides::default()).unwrap_err().to_string();
    assert!(error.contains("log"), "{error}");
    let error =
        load("[log]\nfilter = \"rdv=loud\"\n", &[], &Overrides::default()).unwrap_err().to_string();
    assert!(error.contains("log.filter"), "{error}");
    let error = load("data_dir = \"\"\n", &[], &Overrides::default()).unwrap_err().to_string();
    assert!(error.contains("data_dir"), "{error}");
    let error = load("data_dir = \n", &[], &Overrides::default()).unwrap_err().to_string();
    assert!(error.contains("TOML") || error.contains("parse"), "{error}");
}

#[test]
fn a_named_file_must_exist() {
    let error =
        Config::load(Some(Path::new("/nonexistent/rdv.toml")), env(&[]), &Overrides::default())
            .unwrap_err();
    assert!(matches!(error, ConfigError::FileNotFound(_)), "{error}");
}

#[test]
fn example_file_is_valid_and_states_the_defaults() {
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("rdv.example.toml");
    let from_example = Config::load(Some(&example), env(&[]), &Overrides::default()).unwrap();
    let defaults = load("", &[], &Overrides::default()).unwrap();
    assert_eq!(from_example, defaults);
}

#[test]
fn dht_settings_layer_too() {
    let config = load("", &[], &Overrides::default()).unwrap();
    assert_eq!(config.dht, DhtConfig::default());
    assert_eq!(config.dht.bootstrap, [JAMI_BOOTSTRAP]);

    let contents = "[dht]\nport = 0\nbootstrap = [\"10.0.0.1:4222\"]\nnetwork = 7\nipv6 = false\n";
    let config = load(contents, &[], &Overrides::default()).unwrap();
    assert_eq!(
        config.dht,
        DhtConfig { port: 0, bootstrap: vec!["10.0.0.1:4222".into()], network: 7, ipv6: false }
    );

    let environment = [
        ("RDV_DHT__BOOTSTRAP", "a.example:1,b.example:2"),
        ("RDV_DHT__PORT", "5000"),
        ("RDV_DATA_DIR", "123"),
    ];
    let config = load(contents, &environment, &Overrides::default()).unwrap();
    assert_eq!(config.dht.bootstrap, ["a.example:1", "b.example:2"]);
    assert_eq!(config.dht.port, 5000);
    assert_eq!(config.data_dir, PathBuf::from("123"), "numbers stay paths");

    let overrides = Overrides { bootstrap: vec!["127.0.0.1:14222".into()], ..Overrides::default() };
    let config = load(contents, &environment, &overrides).unwrap();
    assert_eq!(config.dht.bootstrap, ["127.0.0.1:14222"]);

    for bad in [
        "[dht]\nbootstrap = [\"nohost\"]\n",
        "[dht]\nbootstrap = [\"h:0\"]\n",
        "[dht]\nport = 70000\n",
        "[dht]\nlisten = 1\n",
    ] {
        let error = load(bad, &[], &Overrides::default()).unwrap_err().to_string();
        assert!(
            error.contains("dht") || error.contains("listen") || error.contains("port"),
            "{bad}: {error}"
        );
    }
}

#[test]
fn link_addresses_parse_and_are_checked() {
    let config = load("", &[], &Overrides::default()).unwrap();
    assert!(config.link.addresses.is_empty());
    let config =
        load("[link]\naddresses = [\"10.0.0.7\", \"2001:db8::1\"]\n", &[], &Overrides::default())
            .unwrap();
    assert_eq!(config.link.addresses.len(), 2);
    assert_eq!(config.link.beacon_interval, 30);
    let environment = [("RDV_LINK__ADDRESSES", "192.0.2.1,192.0.2.2")];
    let config = load("", &environment, &Overrides::default()).unwrap();
    assert_eq!(
        config.link.addresses,
        ["192.0.2.1".parse::<std::net::IpAddr>().unwrap(), "192.0.2.2".parse().unwrap()]
    );
    for bad in [
        "[link]\naddresses = [\"0.0.0.0\"]\n",
        "[link]\naddresses = [\"nope\"]\n",
        "[link]\nport = 1\n",
        "[link]\nbeacon_interval = 0\n",
    ] {
        let error = load(bad, &[], &Overrides::default()).unwrap_err().to_string();
        assert!(error.contains("link"), "{bad}: {error}");
    }
}

#[test]
fn the_api_listens_on_loopback_without_a_token_and_elsewhere_only_with_one() {
    let config = load("", &[], &Overrides::default()).unwrap();
    assert!(config.api.enabled);
    assert_eq!(config.api.listen, DEFAULT_API_LISTEN.parse().unwrap());
    assert_eq!(config.api.admin_token, None);

    let public = [("RDV_API__LISTEN", "0.0.0.0:8474")];
    let error = load("", &public, &Overrides::default()).unwrap_err().to_string();
    assert!(error.contains("api.admin_token"), "{error}");
    let short = [("RDV_API__LISTEN", "0.0.0.0:8474"), ("RDV_API__ADMIN_TOKEN", "short")];
    assert!(load("", &short, &Overrides::default()).is_err());
    let good =
        [("RDV_API__LISTEN", "0.0.0.0:8474"), ("RDV_API__ADMIN_TOKEN", "0123456789abcdef-x")];
    let config = load("", &good, &Overrides::default()).unwrap();
    assert_eq!(config.api.admin_token.as_ref().unwrap().expose(), "0123456789abcdef-x");
    assert!(!format!("{config:?}").contains("0123456789abcdef"), "the token is never shown");

    let disabled = [("RDV_API__LISTEN", "0.0.0.0:8474"), ("RDV_API__ENABLED", "false")];
    assert!(!load("", &disabled, &Overrides::default()).unwrap().api.enabled);
    for (key, value) in [("RDV_API__LISTEN", "localhost"), ("RDV_API__ADMIN_TOKEN", "a b c")] {
        let error = load("", &[(key, value)], &Overrides::default()).unwrap_err().to_string();
        assert!(error.contains("api."), "{error}");
    }
    let error = load("[api]\nport = 1\n", &[], &Overrides::default()).unwrap_err().to_string();
    assert!(error.contains("port"), "{error}");
}

#[test]
fn metrics_have_a_listener_of_their_own() {
    let config = load("", &[], &Overrides::default()).unwrap();
    assert!(config.metrics.enabled);
    assert_eq!(config.metrics.listen, DEFAULT_METRICS_LISTEN.parse().unwrap());
    let config =
        load("[metrics]\nlisten = \"0.0.0.0:9100\"\n", &[], &Overrides::default()).unwrap();
    assert_eq!(config.metrics.listen, "0.0.0.0:9100".parse().unwrap());
    let error = load("", &[("RDV_METRICS__LISTEN", "nowhere")], &Overrides::default())
        .unwrap_err()
        .to_string();
    assert!(error.contains("metrics.listen"), "{error}");
}

#[test]
fn webhooks_are_checked_at_load() {
    let good = "[[webhooks]]\nurl = \"https://hooks.example.net/rdv\"\nsecret = \"0123456789abcdef\"\nevents = [\"joined\", \"left\"]\n";
    let config = load(good, &[], &Overrides::default()).unwrap();
    assert_eq!(config.webhooks.len(), 1);
    assert_eq!(config.webhooks[0].events, ["joined", "left"]);
    for bad in [
        "[[webhooks]]\nurl = \"ftp://x\"\nsecret = \"0123456789abcdef\"\n",
        "[[webhooks]]\nurl = \"http://x\"\nsecret = \"short\"\n",
        "[[webhooks]]\nurl = \"http://x\"\nsecret = \"0123456789abcdef\"\nevents = [\"dance\"]\n",
        "[[webhooks]]\nurl = \"http://x\"\nsecret = \"0123456789abcdef\"\nretries = 3\n",
    ] {
        let error = load(bad, &[], &Overrides::default()).unwrap_err().to_string();
        assert!(error.contains("webhooks") || error.contains("retries"), "{error}");
    }
}

#[test]
fn the_database_is_sqlite_unless_a_postgres_url_is_given() {
    assert_eq!(load("", &[], &Overrides::default()).unwrap().database.url, None);
    let url = "postgres://rdv:s3cret@db.internal:5432/rdv";
    let config = load("", &[("RDV_DATABASE__URL", url)], &Overrides::default()).unwrap();
    let parsed = config.database.url.unwrap();
    assert_eq!(parsed.expose(), url);
    assert_eq!(parsed.redacted(), "postgres://rdv:***@db.internal:5432/rdv");
    assert!(!format!("{parsed:?}").contains("s3cret"));
    let error = load("[database]\nurl = \"mysql://x\"\n", &[], &Overrides::default())
        .unwrap_err()
        .to_string();
    assert!(error.contains("database.url"), "{error}");
}

#[test]
fn cluster_settings_are_checked() {
    let config = load("", &[], &Overrides::default()).unwrap();
    assert_eq!(config.cluster, ClusterConfig::default());
    let config = load(
        "[cluster]\nreplica = \"rdv-0\"\nlease_seconds = 10\ndrain_seconds = 60\n",
        &[],
        &Overrides::default(),
    )
    .unwrap();
    assert_eq!((config.cluster.replica.as_str(), config.cluster.lease_seconds), ("rdv-0", 10));
    for (key, value) in [
        ("RDV_CLUSTER__LEASE_SECONDS", "2"),
        ("RDV_CLUSTER__DRAIN_SECONDS", "99999"),
        ("RDV_CLUSTER__REPLICA", "has space"),
    ] {
        let error = load("", &[(key, value)], &Overrides::default()).unwrap_err().to_string();
        assert!(error.contains("cluster."), "{error}");
    }
}
