//! The signature-verification snippets the README shows (`docs/webhooks/verify.{py,js,go}`)
//! accept what switchyard signs, with either secret during a rotation, and refuse a wrong
//! secret, a changed body and an old timestamp. The README holds each file verbatim.

use std::process::Command;

use switchyard_callback::signature::sign_all;
use switchyard_schemas::now_millis;
use switchyard_tests::repo_root;

/// The command that runs a snippet file (the Go one built once into `go_binary`).
fn runner(file: &str, go_binary: &std::path::Path) -> Vec<String> {
    let path = repo_root().join("docs/webhooks").join(file);
    let path = path.display().to_string();
    match file.rsplit('.').next() {
        Some("py") => vec!["python3".into(), path],
        Some("js") => vec!["node".into(), path],
        _ => vec![go_binary.display().to_string()],
    }
}

fn accepts(
    file: &str,
    go_binary: &std::path::Path,
    secret: &str,
    header: &str,
    body: &[u8],
) -> anyhow::Result<bool> {
    let dir = tempfile::tempdir()?;
    let body_file = dir.path().join("body.json");
    std::fs::write(&body_file, body)?;
    let command = runner(file, go_binary);
    let output = Command::new(&command[0])
        .args(&command[1..])
        .args([secret, header])
        .arg(&body_file)
        .output()
        .map_err(|e| anyhow::anyhow!("running {}: {e}", command[0]))?;
    match output.status.code() {
        Some(0) => Ok(true),
        Some(1) => Ok(false),
        _ => anyhow::bail!("{file}: {output:?}"),
    }
}

#[test]
fn every_snippet_verifies_what_switchyard_signs_and_refuses_the_rest() -> anyhow::Result<()> {
    let body = br#"{"message_id":"m-1","status":"delivered","text":"\xea\xb4\x91\xea\xb3\xa0"}"#;
    let now = now_millis() / 1000;
    let header = sign_all(&["whsec-new", "whsec-old"], now, body);
    let stale = sign_all(&["whsec-new"], now - 3_600, body);
    let readme = std::fs::read_to_string(repo_root().join("README.md"))?;
    let build = tempfile::tempdir()?;
    let go_binary = build.path().join("verify");
    let built = Command::new("go")
        .args(["build", "-o"])
        .arg(&go_binary)
        .arg(repo_root().join("docs/webhooks/verify.go"))
        .output()?;
    assert!(built.status.success(), "go build: {built:?}");
    let go = go_binary.as_path();
    for file in ["verify.py", "verify.js", "verify.go"] {
        assert!(
            accepts(file, go, "whsec-new", &header, body)?,
            "{file}: new secret"
        );
        assert!(
            accepts(file, go, "whsec-old", &header, body)?,
            "{file}: old secret"
        );
        assert!(
            !accepts(file, go, "whsec-other", &header, body)?,
            "{file}: wrong secret"
        );
        let mut changed = body.to_vec();
        changed[5] = b'X';
        assert!(
            !accepts(file, go, "whsec-new", &header, &changed)?,
            "{file}: changed body"
        );
        assert!(
            !accepts(file, go, "whsec-new", &stale, body)?,
            "{file}: an hour old"
        );
        let text = std::fs::read_to_string(repo_root().join("docs/webhooks").join(file))?;
        assert!(
            readme.contains(text.trim_end()),
            "README does not show {file} as it is"
        );
    }
    Ok(())
}
