//! Secrets masked for display: what `config show` prints instead of signing secrets, secret
//! sender settings and passwords or tokens inside URLs.

use std::collections::BTreeMap;

use switchyard_schemas::{
    ApiClientConfig, CustomerConfig, NumberingEntry, RouteRule, SenderConfig,
};

/// What a secret is shown as (the same whatever its length, so the length does not leak).
pub const MASK: &str = "********";

/// A config record as it may be shown on screen: every secret it holds replaced by [`MASK`].
pub trait Masked {
    /// The record with its secrets masked.
    fn masked(self) -> Self;
}

impl Masked for ApiClientConfig {
    /// The signing secret is masked (whether one is set stays visible); the key hash is kept.
    fn masked(self) -> Self {
        ApiClientConfig {
            signing_secret: self.signing_secret.map(|_| MASK.to_string()),
            signing_secret_previous: self.signing_secret_previous.map(|_| MASK.to_string()),
            report_url: self.report_url.map(|u| masked_url(&u)),
            ..self
        }
    }
}

impl Masked for SenderConfig {
    /// Settings whose name says secret (password, token, key, ...) and credentials in the
    /// endpoint are masked.
    fn masked(self) -> Self {
        let settings: BTreeMap<String, String> = self
            .settings
            .into_iter()
            .map(|(name, value)| {
                if is_secret_name(&name) {
                    (name, MASK.to_string())
                } else {
                    let value = masked_url(&value);
                    (name, value)
                }
            })
            .collect();
        SenderConfig {
            endpoint: masked_url(&self.endpoint),
            settings,
            ..self
        }
    }
}

impl Masked for CustomerConfig {
    fn masked(self) -> Self {
        self
    }
}

impl Masked for RouteRule {
    fn masked(self) -> Self {
        self
    }
}

impl Masked for NumberingEntry {
    fn masked(self) -> Self {
        self
    }
}

/// Words in a setting or query parameter name that mark its value as a secret (`pass` covers
/// `password` and `passwd`).
const SECRET_WORDS: [&str; 7] = [
    "pass",
    "secret",
    "token",
    "key",
    "credential",
    "auth",
    "private",
];

/// Whether a setting or query parameter called `name` holds a secret (case-insensitive): its
/// name contains one of [`SECRET_WORDS`], or one of its words (split at anything not a letter
/// or digit) is `pw` or `pwd`. Errs on the side of masking.
pub fn is_secret_name(name: &str) -> bool {
    let name = name.to_ascii_lowercase();
    SECRET_WORDS.iter().any(|w| name.contains(w))
        || name
            .split(|c: char| !c.is_ascii_alphanumeric())
            .any(|word| word == "pw" || word == "pwd")
}

/// `text` with the password of a URL's user info (`scheme://user:PASSWORD@host`) and the
/// values of secret query parameters (`?token=VALUE`) masked; anything not a URL unchanged.
pub fn masked_url(text: &str) -> String {
    let Some(scheme_end) = text.find("://") else {
        return text.to_string();
    };
    let rest_start = scheme_end + 3;
    let rest = &text[rest_start..];
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let authority = &rest[..authority_end];
    let mut out = text[..rest_start].to_string();
    match authority.rfind('@') {
        Some(at) => {
            let userinfo = &authority[..at];
            match userinfo.find(':') {
                Some(colon) => {
                    out.push_str(&userinfo[..colon]);
                    out.push(':');
                    out.push_str(MASK);
                }
                None => out.push_str(userinfo),
            }
            out.push_str(&authority[at..]);
        }
        None => out.push_str(authority),
    }
    let path_and_more = &rest[authority_end..];
    let (before_fragment, fragment) = match path_and_more.find('#') {
        Some(hash) => path_and_more.split_at(hash),
        None => (path_and_more, ""),
    };
    match before_fragment.split_once('?') {
        Some((path, query)) => {
            out.push_str(path);
            out.push('?');
            let params: Vec<String> = query
                .split('&')
                .map(|param| match param.split_once('=') {
                    Some((name, _)) if is_secret_name(name) => format!("{name}={MASK}"),
                    _ => param.to_string(),
                })
                .collect();
            out.push_str(&params.join("&"));
        }
        None => out.push_str(before_fragment),
    }
    out.push_str(fragment);
    out
}

impl Masked for switchyard_schemas::ContentPolicy {
    fn masked(self) -> Self {
        self
    }
}

impl Masked for switchyard_schemas::BillCode {
    fn masked(self) -> Self {
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use switchyard_schemas::Channel;

    fn client() -> ApiClientConfig {
        ApiClientConfig {
            client_id: "acme-web".into(),
            customer_id: "acme".into(),
            key_hash: "ab12".into(),
            report_url: Some("https://hooks:hookpass@example.com/in?sig=1&token=tok-9".into()),
            signing_secret: Some("whsec-very-secret".into()),
            signing_secret_previous: Some("whsec-old-secret".into()),
            enabled: true,
            rate_limit_per_second: None,
        }
    }

    fn sender() -> SenderConfig {
        SenderConfig {
            name: "skt-a".into(),
            group: "g".into(),
            channel: Channel::Sms,
            carriers: vec!["skt".into()],
            kind: "http".into(),
            endpoint: "https://svc:endpoint-pw@carrier.example/submit?api_key=k-123&v=2".into(),
            tps: Some(10),
            enabled: true,
            settings: [
                ("window", "64"),
                ("password", "hunter2"),
                ("API_KEY", "k-456"),
                ("bearer_token", "t-789"),
                ("bind_pw", "pw-000"),
                ("client_secret", "cs-111"),
                ("proxy", "http://u:proxy-pass@proxy:3128"),
            ]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        }
    }

    #[test]
    fn a_clients_signing_secret_is_masked_and_its_key_hash_kept() {
        let shown = client().masked();
        assert_eq!(shown.signing_secret.as_deref(), Some(MASK));
        assert_eq!(shown.signing_secret_previous.as_deref(), Some(MASK));
        assert_eq!(shown.key_hash, "ab12");
        assert_eq!(
            shown.report_url.as_deref(),
            Some("https://hooks:********@example.com/in?sig=1&token=********")
        );
        let json = serde_json::to_string(&shown).expect("json");
        for secret in ["whsec-very-secret", "hookpass", "tok-9"] {
            assert!(!json.contains(secret), "{secret} in {json}");
        }
    }

    #[test]
    fn a_client_without_a_secret_shows_none() {
        let shown = ApiClientConfig {
            signing_secret: None,
            ..client()
        }
        .masked();
        assert_eq!(shown.signing_secret, None);
    }

    #[test]
    fn secret_sender_settings_and_endpoint_credentials_are_masked() {
        let shown = sender().masked();
        assert_eq!(
            shown.endpoint,
            "https://svc:********@carrier.example/submit?api_key=********&v=2"
        );
        assert_eq!(shown.settings["window"], "64");
        for name in [
            "password",
            "API_KEY",
            "bearer_token",
            "bind_pw",
            "client_secret",
        ] {
            assert_eq!(shown.settings[name], MASK, "{name}");
        }
        assert_eq!(shown.settings["proxy"], "http://u:********@proxy:3128");
        let json = serde_json::to_string(&shown).expect("json");
        for secret in [
            "endpoint-pw",
            "k-123",
            "hunter2",
            "k-456",
            "t-789",
            "pw-000",
            "cs-111",
            "proxy-pass",
        ] {
            assert!(!json.contains(secret), "{secret} in {json}");
        }
    }

    #[test]
    fn urls_without_credentials_are_unchanged() {
        for url in [
            "http://127.0.0.1:8080/submit",
            "https://user@example.com/a?b=c#d",
            "not a url",
            "",
        ] {
            assert_eq!(masked_url(url), url);
        }
    }
}
