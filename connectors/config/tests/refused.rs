//! Config files that must be refused before anything is written, each naming its field.

use switchyard_config::{ConfigFile, hash_api_key};

/// A small valid config; each case below breaks one thing in it.
const BASE: &str = r#"
[[customers]]
id = "acme"
channels = ["sms", "lms"]
tps_limits = { sms = 100 }
prices = { sms = 9, lms = 30 }
night_ads = "hold"
auto_lms_upgrade = true
bill_codes = ["B1"]

[[customers]]
id = "beta"
channels = ["sms"]

[[clients]]
id = "acme-web"
customer = "acme"
api_key = "key-acme"
report_url = "https://acme.example/hooks"

[[clients]]
id = "beta-web"
customer = "beta"
api_key = "key-beta"

[[senders]]
name = "skt-a"
group = "skt-direct"
channel = "sms"
carriers = ["skt"]
endpoint = "http://127.0.0.1:7001/submit"

[[routes]]
customer = "acme"
channel = "sms"
carriers = [{ carrier = "skt", groups = [{ group = "skt-direct", ratio = 1 }] }]

[[numbering]]
prefix = "0101"
carrier = "skt"

[[bill_codes]]
customer = "acme"
code = "AD-1"
ad_check = true
description = "마케팅 발송"

[policy]
blocked_keywords = ["대출", "카지노"]

[[policies]]
id = "acme"
blocked_keywords = ["도박"]
quiet_start_hour = 20
quiet_end_hour = 9
"#;

fn refusal(text: &str) -> Option<String> {
    match ConfigFile::parse(text).and_then(|f| f.desired()) {
        Ok(_) => None,
        Err(e) => Some(e.to_string()),
    }
}

fn replaced(from: &str, to: &str) -> String {
    assert!(BASE.contains(from), "the base config holds {from:?}");
    BASE.replacen(from, to, 1)
}

#[test]
fn the_base_config_is_accepted() {
    assert_eq!(refusal(BASE), None);
}

#[test]
fn two_clients_with_one_clear_key_are_refused_naming_both() {
    let text = replaced(r#"api_key = "key-beta""#, r#"api_key = "key-acme""#);
    let err = refusal(&text).expect("refused");
    assert!(
        err.contains("acme-web") && err.contains("beta-web"),
        "{err}"
    );
}

#[test]
fn two_clients_with_one_hash_are_refused_naming_both() {
    let hash = hash_api_key("shared");
    let text = replaced(
        r#"api_key = "key-acme""#,
        &format!(r#"api_key_sha256 = "{hash}""#),
    )
    .replacen(
        r#"api_key = "key-beta""#,
        // Upper case: the same hash however it is spelled.
        &format!(r#"api_key_sha256 = "{}""#, hash.to_uppercase()),
        1,
    );
    let err = refusal(&text).expect("refused");
    assert!(
        err.contains("acme-web") && err.contains("beta-web"),
        "{err}"
    );
}

#[test]
fn a_clear_key_hashing_to_another_clients_hash_is_refused() {
    let text = replaced(
        r#"api_key = "key-beta""#,
        &format!(r#"api_key_sha256 = "{}""#, hash_api_key("key-acme")),
    );
    let err = refusal(&text).expect("refused");
    assert!(
        err.contains("acme-web") && err.contains("beta-web"),
        "{err}"
    );
}

#[test]
fn nonsense_is_refused_naming_the_field() {
    let cases: &[(&str, &str, &str, &str)] = &[
        // (case, replace this, with this, the error names)
        (
            "empty customer id",
            r#"id = "beta""#,
            r#"id = """#,
            "customers[1].id is empty",
        ),
        (
            "empty client id",
            r#"id = "beta-web""#,
            r#"id = " ""#,
            "clients[1].id is empty",
        ),
        (
            "empty sender group",
            r#"group = "skt-direct""#,
            r#"group = """#,
            ".group is empty",
        ),
        (
            "empty numbering prefix",
            r#"prefix = "0101""#,
            r#"prefix = """#,
            "numbering[0].prefix is empty",
        ),
        (
            "numbering for an unknown carrier",
            r#"prefix = "0101"
carrier = "skt""#,
            r#"prefix = "0101"
carrier = "lgt""#,
            "numbering[0].carrier names carrier \"lgt\"",
        ),
        (
            "negative ratio",
            "ratio = 1",
            "ratio = -1",
            "routes[0] (customer \"acme\").carriers[0].groups[0].ratio is negative",
        ),
        (
            "route to an unknown group",
            r#"{ group = "skt-direct", ratio = 1 }"#,
            r#"{ group = "nobody", ratio = 1 }"#,
            "groups[0].group names group \"nobody\"",
        ),
        (
            "empty group list",
            r#"groups = [{ group = "skt-direct", ratio = 1 }]"#,
            "groups = []",
            "carriers[0].groups lists no group",
        ),
        (
            "route with no carrier",
            r#"carriers = [{ carrier = "skt", groups = [{ group = "skt-direct", ratio = 1 }] }]"#,
            "carriers = []",
            "routes[0] (customer \"acme\").carriers lists no carrier",
        ),
        (
            "sender with no carrier",
            r#"carriers = ["skt"]"#,
            "carriers = []",
            "senders[0] (sender \"skt-a\").carriers lists no carrier",
        ),
        (
            "relative endpoint",
            r#"endpoint = "http://127.0.0.1:7001/submit""#,
            r#"endpoint = "/submit""#,
            "senders[0] (sender \"skt-a\").endpoint is \"/submit\"",
        ),
        (
            "endpoint of another scheme",
            r#"endpoint = "http://127.0.0.1:7001/submit""#,
            r#"endpoint = "ftp://127.0.0.1/submit""#,
            ".endpoint is \"ftp://127.0.0.1/submit\"",
        ),
        (
            "negative price",
            "prices = { sms = 9, lms = 30 }",
            "prices = { sms = -9, lms = 30 }",
            "customers[0] (customer \"acme\").prices.sms is negative (-9)",
        ),
        (
            "price for an unknown channel",
            "prices = { sms = 9, lms = 30 }",
            "prices = { sms = 9, fax = 30 }",
            "customers[0] (customer \"acme\").prices.fax names unknown channel \"fax\"",
        ),
        (
            "unknown channel in a TPS map",
            "tps_limits = { sms = 100 }",
            "tps_limits = { smss = 100 }",
            "customers[0] (customer \"acme\").tps_limits.smss names unknown channel \"smss\"",
        ),
        (
            "negative TPS",
            "tps_limits = { sms = 100 }",
            "tps_limits = { sms = -1 }",
            "customers[0] (customer \"acme\").tps_limits.sms is negative (-1)",
        ),
        (
            "unknown night_ads value",
            r#"night_ads = "hold""#,
            r#"night_ads = "later""#,
            "customers[0] (customer \"acme\").night_ads is \"later\", not \"hold\" or \"reject\"",
        ),
        (
            "auto LMS upgrade without lms",
            r#"channels = ["sms", "lms"]"#,
            r#"channels = ["sms"]"#,
            "customers[0] (customer \"acme\").auto_lms_upgrade is on but channels does not list lms",
        ),
        (
            "empty bill code in a customer's list",
            r#"bill_codes = ["B1"]"#,
            r#"bill_codes = [""]"#,
            "customers[0] (customer \"acme\").bill_codes[0] is empty",
        ),
        (
            "empty bill code",
            r#"code = "AD-1""#,
            r#"code = " ""#,
            "bill_codes[0].code is empty",
        ),
        (
            "bill code of an unknown customer",
            r#"customer = "acme"
code = "AD-1""#,
            r#"customer = "ghost"
code = "AD-1""#,
            "bill code AD-1 names unknown customer ghost",
        ),
        (
            "empty keyword",
            r#"blocked_keywords = ["대출", "카지노"]"#,
            r#"blocked_keywords = ["대출", ""]"#,
            "policy.blocked_keywords[1] is \"\"",
        ),
        (
            "keyword of only punctuation",
            r#"blocked_keywords = ["도박"]"#,
            r#"blocked_keywords = ["도박", " . "]"#,
            "policies[0].blocked_keywords[1] is \" . \", empty once spaces and punctuation are ignored",
        ),
        (
            "quiet hours past 23",
            "quiet_start_hour = 20",
            "quiet_start_hour = 24",
            "policies[0].quiet_start_hour is 24, not an hour 0-23",
        ),
        (
            "negative quiet hour",
            "quiet_end_hour = 9",
            "quiet_end_hour = -1",
            "policies[0].quiet_end_hour is -1, not an hour 0-23",
        ),
        (
            "policy of an unknown customer",
            r#"id = "acme"
blocked_keywords = ["도박"]"#,
            r#"id = "acme-typo"
blocked_keywords = ["도박"]"#,
            "policies[0].id names unknown customer \"acme-typo\"",
        ),
        (
            "two policies with one id",
            r#"id = "acme"
blocked_keywords = ["도박"]"#,
            r#"id = "*"
blocked_keywords = ["도박"]"#,
            "policy * is declared twice",
        ),
        (
            "report URL without scheme",
            r#"report_url = "https://acme.example/hooks""#,
            r#"report_url = "acme.example/hooks""#,
            "clients[0].report_url (client acme-web) is \"acme.example/hooks\"",
        ),
        (
            "a rate limit of zero",
            r#"report_url = "https://acme.example/hooks""#,
            r#"report_url = "https://acme.example/hooks"
rate_limit_per_second = 0"#,
            "clients[0].rate_limit_per_second is 0",
        ),
    ];
    for (case, from, to, names) in cases {
        let err = refusal(&replaced(from, to)).unwrap_or_else(|| panic!("{case}: accepted"));
        assert!(
            err.contains(names),
            "{case}: {err:?} does not say {names:?}"
        );
    }
}

#[test]
fn the_policy_sections_become_records() {
    let desired = ConfigFile::parse(BASE)
        .and_then(|f| f.desired())
        .expect("accepted");
    let global = &desired.policies["*"];
    assert_eq!(global.blocked_keywords, vec!["대출", "카지노"]);
    assert_eq!(
        (global.ad_quiet_start_hour, global.ad_quiet_end_hour),
        (21, 8)
    );
    assert_eq!(global.ad_prefix, "(광고)");
    let acme = &desired.policies["acme"];
    assert_eq!((acme.ad_quiet_start_hour, acme.ad_quiet_end_hour), (20, 9));
    let code = &desired.bill_codes["acme/AD-1"];
    assert!(code.ad_check);
    let customer = &desired.customers["acme"];
    assert_eq!(customer.night_ads, switchyard_schemas::NightAds::Hold);
    assert!(customer.auto_lms_upgrade);
    assert_eq!(customer.prices.get("lms"), Some(&30));
}
