use super::*;
use fleet_model::TopicKind;

fn parse(text: &str) -> Result<Config, ConfigError> {
    Config::parse(text, Path::new("/etc/fleet.toml"))
}

fn err(text: &str) -> String {
    parse(text).unwrap_err().to_string()
}

#[test]
fn spec_minimal_shape_parses() {
    let cfg = parse(
        r#"
[kafka]
brokers = "127.0.0.1:9092"
group_id = "fleetdash-test"
start = "earliest"
[kafka.properties]
"security.protocol" = "plaintext"

[[kafka.topics]]
name = "cars.gps.json"
kind = "position"
fields = { id = "$key", lat = "lat", lng = "lng", ts = "ts" }

[redis]
url = "redis://127.0.0.1:6379"
geo_keys = ["cars#gps"]

[store]
path = "/tmp/cache.sqlite"

[operator]
name = "alice"
"#,
    )
    .unwrap();
    let k = cfg.kafka.unwrap();
    assert_eq!(k.start, StartFrom::Earliest);
    assert_eq!(k.topics.len(), 1);
    assert_eq!(k.topics[0].kind, TopicKind::Position);
    assert_eq!(cfg.operator.name.as_deref(), Some("alice"));
    assert_eq!(cfg.history.min_distance_m, 25.0);
}

#[test]
fn default_topics_are_the_spec_five() {
    let cfg = parse("[kafka]\nbrokers = \"b:1\"\n").unwrap();
    let names: Vec<_> = cfg
        .kafka
        .unwrap()
        .topics
        .into_iter()
        .map(|t| t.name)
        .collect();
    assert_eq!(
        names,
        [
            "cars.gps.json",
            "cars.status.json",
            "cars.info.json",
            "fleet.alerts.json",
            "fleet.alert-acks.json"
        ]
    );
}

#[test]
fn unknown_key_names_key_and_file() {
    let e = err("[kafka]\nbrokers = \"b:1\"\nbrokerz = 3\n");
    assert!(e.contains("/etc/fleet.toml"), "{e}");
    assert!(e.contains("brokerz"), "{e}");
}

#[test]
fn bad_kind_names_nested_key() {
    let e = err("[kafka]\nbrokers = \"b:1\"\n[[kafka.topics]]\nname = \"x\"\nkind = \"gps\"\n");
    assert!(e.contains("kafka.topics[0].kind"), "{e}");
    assert!(e.contains("/etc/fleet.toml"), "{e}");
}

#[test]
fn unknown_field_mapping_is_rejected() {
    let e = err(
        "[kafka]\nbrokers = \"b:1\"\n[[kafka.topics]]\nname = \"x\"\nkind = \"position\"\nfields = { latitude = \"a\" }\n",
    );
    assert!(e.contains("kafka.topics[0].fields.latitude"), "{e}");
}

#[test]
fn bad_redis_scheme_and_values() {
    assert!(err("[redis]\nurl = \"http://x\"\n").contains("redis.url"));
    assert!(err("[redis]\nurl = [\"redis://a:1\", \"tcp://b\"]\n").contains("redis.url[1]"));
    assert!(err("[history]\nmin_distance_m = -1\n").contains("history.min_distance_m"));
    assert!(err("[fleet]\nstale_after_s = \"soon\"\n").contains("fleet.stale_after_s"));
    // Huge durations would overflow the ms arithmetic of the rules (REVIEW: stale.after_s).
    assert!(err("[fleet]\nstale_after_s = 1e300\n").contains("fleet.stale_after_s"));
    assert!(err("[fleet]\nmax_future_skew_s = -1\n").contains("fleet.max_future_skew_s"));
    assert!(parse("[fleet]\nmax_future_skew_s = 60\n").is_ok());
}

#[test]
fn env_properties_resolve_or_name_the_key() {
    // Reading commands need no secrets; connecting ones ask with require_secrets.
    let cfg = parse(
        "[kafka]\nbrokers = \"b:1\"\n[kafka.properties]\n\"sasl.password\" = \"env:FLEETDASH_TEST_UNSET_VAR\"\n",
    )
    .unwrap();
    let e = cfg
        .require_secrets(Path::new("/etc/fleet.toml"))
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("sasl.password")
            && e.contains("FLEETDASH_TEST_UNSET_VAR")
            && e.contains("/etc/fleet.toml"),
        "{e}"
    );
    let ok =
        parse("[kafka]\nbrokers = \"b:1\"\n[kafka.properties]\n\"x\" = \"env:PATH\"\n").unwrap();
    assert_eq!(
        ok.kafka.unwrap().properties["x"],
        std::env::var("PATH").unwrap()
    );
}

#[test]
fn keyring_references_are_checked_and_never_resolve_to_nothing() {
    // A malformed entry name is a config error at once.
    let e =
        err("[kafka]\nbrokers = \"b:1\"\n[kafka.properties]\n\"sasl.password\" = \"keyring:\"\n");
    assert!(
        e.contains("kafka.properties.\"sasl.password\"") && e.contains("keyring:"),
        "{e}"
    );
    // An entry this machine's keyring cannot give (no Secret Service here, or no such
    // entry) is kept as unresolved: connecting commands fail naming the key and the file.
    let cfg = parse(
        "[kafka]\nbrokers = \"b:1\"\n[kafka.properties]\n\"sasl.password\" = \"keyring:fleetdash-unit-test-absent\"\n",
    )
    .unwrap();
    let e = cfg
        .require_secrets(Path::new("/etc/fleet.toml"))
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("kafka.properties.\"sasl.password\"")
            && e.contains("OS keyring")
            && e.contains("/etc/fleet.toml"),
        "{e}"
    );
    // Redis: one password source only.
    let e = err("[redis]\nurl = \"redis://h:1\"\npassword_env = \"A\"\npassword_keyring = \"b\"\n");
    assert!(e.contains("redis.password_keyring"), "{e}");
}

#[test]
fn syntax_error_names_file() {
    let e = err("[kafka\n");
    assert!(e.contains("/etc/fleet.toml"), "{e}");
}

#[test]
fn missing_cli_file_is_an_error() {
    let e = locate(Some(Path::new("/nonexistent/fleet.toml"))).unwrap_err();
    assert!(e.to_string().contains("--config"));
}

/// Issue 12: `kafka.start` also takes a time (first run only, offsets-for-times).
#[test]
fn start_takes_latest_earliest_or_a_time_and_names_the_key_otherwise() {
    let start = |v: &str| {
        parse(&format!("[kafka]\nbrokers = \"b:1\"\nstart = \"{v}\"\n"))
            .map(|c| c.kafka.unwrap().start)
    };
    assert_eq!(start("latest").unwrap(), StartFrom::Latest);
    assert_eq!(start("earliest").unwrap(), StartFrom::Earliest);
    assert_eq!(
        start("2026-11-30T08:00:00Z").unwrap(),
        StartFrom::At(1_796_025_600_000)
    );
    assert_eq!(
        start("2026-11-30T17:00:00.250+09:00").unwrap(),
        StartFrom::At(1_796_025_600_250)
    );
    let e = start("yesterday").unwrap_err().to_string();
    assert!(e.contains("kafka.start") && e.contains("RFC 3339"), "{e}");
    // Written back as the time it was given.
    let t = serde_json::to_string(&StartFrom::At(1_796_025_600_000)).unwrap();
    assert!(t.contains("2026-11-30T08:00:00Z"), "{t}");
}

/// SPEC §9: `[connect]` names its routes' problems by key.
#[test]
fn connect_routes_are_validated_by_key() {
    let base = "[connect]\n[[connect.routes]]\ntopic = \"t\"\ngeo_key = \"k\"\n";
    let cfg = parse(base).unwrap();
    let c = cfg.connect.unwrap();
    assert_eq!(c.group_id, "fleetdash-connect");
    assert_eq!(c.start, StartFrom::Earliest);
    assert!(err("[connect]\n").contains("connect.routes"));
    assert!(
        err(&format!("{base}fields = {{ vehicle = \"$key\" }}\n"))
            .contains("connect.routes[0].fields.vehicle")
    );
    assert!(
        err(&format!(
            "{base}[[connect.routes]]\ntopic = \"t\"\ngeo_key = \"k2\"\n"
        ))
        .contains("connect.routes[1].topic")
    );
    assert!(
        err("[connect]\nstart = \"2026-11-30T08:00:00Z\"\n[[connect.routes]]\ntopic = \"t\"\ngeo_key = \"k\"\n")
            .contains("connect.start")
    );
}

/// SPEC §8: threshold rules are validated at load, every problem naming its key.
#[test]
fn threshold_rules_are_validated_by_key() {
    let rule = |body: &str| {
        format!("[[alerts.thresholds]]\nname = \"hot\"\nfield = \"engine.temp_c\"\n{body}")
    };
    let cfg = parse(&rule("above = 105\nfor_s = 30\nseverity = \"critical\"\n")).unwrap();
    let t = &cfg.alerts.thresholds[0];
    assert_eq!(
        (t.above, t.for_s, t.severity),
        (Some(105.0), 30.0, fleet_model::Severity::Critical)
    );
    let flag = parse(&rule("equals = true\n")).unwrap();
    assert_eq!(
        flag.alerts.thresholds[0].equals,
        Some(ThresholdValue::Bool(true))
    );
    // An unknown operator, a bad number, none or two conditions, a taken name.
    assert!(err(&rule("greater = 105\n")).contains("alerts.thresholds[0]"));
    assert!(err(&rule("greater = 105\n")).contains("greater"));
    assert!(err(&rule("above = \"hot\"\n")).contains("alerts.thresholds[0].above"));
    assert!(err(&rule("for_s = 5\n")).contains("exactly one of"));
    assert!(err(&rule("above = 1\nbelow = 0\n")).contains("alerts.thresholds[0].above"));
    assert!(err(&rule("above = 1\nfor_s = -1\n")).contains("alerts.thresholds[0].for_s"));
    assert!(
        err("[[alerts.thresholds]]\nname = \"low_fuel\"\nfield = \"x\"\nabove = 1\n")
            .contains("alerts.thresholds[0].name")
    );
    assert!(
        err(&format!("{}{}", rule("above = 1\n"), rule("below = 1\n")))
            .contains("alerts.thresholds[1].name")
    );
}

/// SPEC §8: a topic may be read as both position and status (one message carries both), in
/// the same format; any other repetition is a typo and names the key.
#[test]
fn a_topic_listed_twice_must_be_one_position_and_one_status() {
    let two = |a: &str, b: &str, extra: &str| {
        format!(
            "[kafka]\nbrokers = \"b:9092\"\n[[kafka.topics]]\nname = \"t\"\nkind = \"{a}\"\n\
             [[kafka.topics]]\nname = \"t\"\nkind = \"{b}\"\n{extra}"
        )
    };
    let cfg = parse(&two("position", "status", "")).unwrap();
    assert_eq!(cfg.kafka.unwrap().topics.len(), 2);
    let e = err(&two("position", "position", ""));
    assert!(
        e.contains("kafka.topics[1].name") && e.contains("listed twice"),
        "{e}"
    );
    let e = err(&two("position", "status", "format = \"dms\"\n"));
    assert!(e.contains("kafka.topics[1].format"), "{e}");
}

#[test]
fn dms_format_and_device_fields_parse_and_are_checked() {
    let cfg = parse(
        r#"
[kafka]
brokers = "b:9092"
[[kafka.topics]]
name = "deviceinfo"
kind = "device"
format = "dms"
fields = { id = "device_id", vehicle = "car_id" }
[[kafka.topics]]
name = "telemetry"
kind = "position"
fields = { device = "device_id", lat = "gps.lat", lng = "gps.lng" }
"#,
    )
    .unwrap();
    let k = cfg.kafka.unwrap();
    assert_eq!(k.topics[0].kind, TopicKind::Device);
    assert_eq!(k.topics[0].format, TopicFormat::Dms);
    assert_eq!(k.topics[1].fields["device"], "device_id");
    let e = err(
        "[kafka]\nbrokers = \"b\"\n[[kafka.topics]]\nname = \"i\"\nkind = \"info\"\nfields = { device = \"d\" }\n",
    );
    assert!(e.contains("kafka.topics[0].fields.device"), "{e}");
    let e = err(
        "[kafka]\nbrokers = \"b\"\n[[kafka.topics]]\nname = \"i\"\nkind = \"info\"\nformat = \"avro\"\n",
    );
    assert!(e.contains("format"), "{e}");
}
