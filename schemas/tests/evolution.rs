//! Every schema can read what the previous release wrote: each record in `schemas/registered/`
//! (the schemas as registered before this change, copied from `main`) checked against the
//! current `schemas/avro/` with the registry's BACKWARD rule (apache-avro's
//! `SchemaCompatibility::can_read(old writer, new reader)`, as `switchyard registry` does).
//! When a release registers new versions, copy them into `schemas/registered/`.

use std::path::Path;

use apache_avro::Schema;
use apache_avro::schema_compatibility::SchemaCompatibility;
use switchyard_schemas::files;

fn registered() -> Vec<(String, String)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("registered");
    let mut out = Vec::new();
    for entry in std::fs::read_dir(&dir).expect("schemas/registered exists") {
        let path = entry.expect("readable").path();
        if path.extension().is_some_and(|e| e == "avsc") {
            let name = path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            out.push((name, std::fs::read_to_string(&path).expect("readable")));
        }
    }
    out
}

#[test]
fn every_registered_schema_is_readable_by_the_current_one() {
    let files = registered();
    assert!(files.len() >= 20, "only {} registered schemas", files.len());
    let refs: Vec<(&str, &str)> = files
        .iter()
        .map(|(n, t)| (n.as_str(), t.as_str()))
        .collect();
    let old = files::resolve(&refs).expect("registered schemas resolve");
    let mut checked = 0;
    for (name, old) in &old {
        let new = files::loaded(name)
            .unwrap_or_else(|e| panic!("{name} was registered and is gone: {e}"));
        if let Err(e) = SchemaCompatibility::can_read(&old.parsed, &new.parsed) {
            panic!(
                "{name}: the current schema cannot read data written with the registered one: {e}"
            );
        }
        checked += 1;
    }
    // The records this change evolved are among them.
    for name in [
        "CustomerConfig",
        "Rejection",
        "ValidatedMessage",
        "ContentPolicy",
    ] {
        assert!(old.contains_key(&format!("io.switchyard.{name}")), "{name}");
    }
    assert_eq!(checked, old.len());
}

#[test]
fn the_check_refuses_a_new_field_without_a_default() {
    // The same check on a broken evolution fails: a field added to CustomerConfig with no
    // default cannot be read from old records.
    let current = files::loaded("io.switchyard.CustomerConfig").expect("loads");
    let mut json: serde_json::Value = serde_json::from_str(&current.json).expect("json");
    json["fields"]
        .as_array_mut()
        .expect("fields")
        .push(serde_json::json!({"name": "required_new", "type": "long"}));
    let broken = Schema::parse_str(&json.to_string()).expect("parses");
    let files = registered();
    let refs: Vec<(&str, &str)> = files
        .iter()
        .map(|(n, t)| (n.as_str(), t.as_str()))
        .collect();
    let old = files::resolve(&refs).expect("resolves");
    let old = &old["io.switchyard.CustomerConfig"];
    assert!(SchemaCompatibility::can_read(&old.parsed, &broken).is_err());
}
