//! Senders' settings are checked by their kind (the `switchyard_senders` registry) before
//! anything is written: unknown kinds, unknown settings, wrong types and out-of-range values
//! are refused naming the field; valid typed settings are stored as text on the record.

use switchyard_config::ConfigFile;

const BASE: &str = r#"
[[senders]]
name = "skt-http"
group = "skt-direct"
channel = "sms"
carriers = ["skt"]
endpoint = "http://127.0.0.1:7001/submit"
settings = { window = 32 }

[[senders]]
name = "skt-bulk"
group = "skt-direct"
channel = "sms"
carriers = ["skt"]
endpoint = "http://127.0.0.1:7001/submit"

[[senders]]
name = "skt-smpp"
group = "skt-direct"
channel = "sms"
carriers = ["skt"]
kind = "smpp"
endpoint = "smpp://127.0.0.1:2775"
settings = { system_id = "switchyard", password_env = "SKT_SMPP_PASSWORD", window = 10, source_addr = "1588", registered_delivery = true }
"#;

fn refusal(text: &str) -> Option<String> {
    match ConfigFile::parse(text).and_then(|f| f.desired()) {
        Ok(_) => None,
        Err(e) => Some(e.to_string()),
    }
}

#[test]
fn typed_settings_are_accepted_and_stored_as_text() {
    let desired = ConfigFile::parse(BASE)
        .and_then(|f| f.desired())
        .expect("valid");
    let smpp = &desired.senders["skt-smpp"];
    assert_eq!(smpp.kind, "smpp");
    assert_eq!(smpp.settings["window"], "10");
    assert_eq!(smpp.settings["source_addr"], "1588");
    assert_eq!(smpp.settings["registered_delivery"], "true");
    assert_eq!(desired.senders["skt-http"].settings["window"], "32");
}

#[test]
fn wrong_settings_are_refused_naming_the_field() {
    let cases = [
        (
            "window = 10,",
            "window = \"ten\",",
            "senders[2] (sender \"skt-smpp\").settings.window: invalid type: `ten`",
        ),
        (
            "window = 10,",
            "window = true,",
            "senders[2] (sender \"skt-smpp\").settings.window: invalid type: `true`",
        ),
        (
            "window = 10,",
            "window = 0,",
            "senders[2] (sender \"skt-smpp\").settings.window: must be 1..=1000",
        ),
        (
            "window = 10,",
            "windw = 10,",
            "senders[2] (sender \"skt-smpp\").settings.windw: unknown field `windw`",
        ),
        (
            "window = 10,",
            "window = [10],",
            "senders[2] (sender \"skt-smpp\").settings.window is not a string, number or boolean",
        ),
        (
            "kind = \"smpp\"",
            "kind = \"smtp\"",
            "senders[2] (sender \"skt-smpp\").kind: \"smtp\" is not a sender kind (one of http, smpp)",
        ),
        (
            "endpoint = \"smpp://127.0.0.1:2775\"",
            "endpoint = \"127.0.0.1:2775\"",
            "senders[2] (sender \"skt-smpp\").endpoint is \"127.0.0.1:2775\", not smpp://host:port",
        ),
        (
            "settings = { window = 32 }",
            "settings = { window = 32, retries = 3 }",
            "senders[0] (sender \"skt-http\").settings.retries: unknown field `retries`",
        ),
        (
            "system_id = \"switchyard\", ",
            "",
            "senders[2] (sender \"skt-smpp\").settings: missing field `system_id`",
        ),
    ];
    for (from, to, says) in cases {
        assert!(BASE.contains(from), "{from}");
        let err = refusal(&BASE.replacen(from, to, 1)).unwrap_or_else(|| panic!("{to}: accepted"));
        assert!(err.contains(says), "{err:?} does not say {says:?}");
    }
}

#[test]
fn the_demo_config_is_accepted_with_its_smpp_sender() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../infra/demo-config.toml");
    let text = std::fs::read_to_string(path).expect("the demo config");
    let desired = ConfigFile::parse(&text)
        .and_then(|f| f.desired())
        .expect("accepted");
    assert_eq!(desired.senders["skt-smpp-1"].kind, "smpp");
}
