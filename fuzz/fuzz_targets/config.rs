//! The configuration file (`gateway::config`), the properties of its
//! proptests: any text parses or is refused in one line naming the file and a
//! line in it (and what parses resolves to a gateway that starts, or to an
//! error naming the key); settings written to a file are read back as
//! written; a badly typed line is refused naming its line and key; and any
//! numbers resolve to a gateway that starts or to an error naming the key.
#![no_main]

use arbitrary::{Arbitrary, Result, Unstructured};
use clap::Args;
use libfuzzer_sys::fuzz_target;
use scopegate::config::{Config, ConfigArgs, MAX_FIRM_POOL_CAPACITY};
use scopegate::http::throttle::{ApiLimiters, AuthThrottle};
use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::sync::{Arc, OnceLock};

/// Every TOML key: the settings' fields as clap lists them, but `config`,
/// and `connector` for the connector tables.
fn keys() -> &'static [String] {
    static KEYS: OnceLock<Vec<String>> = OnceLock::new();
    KEYS.get_or_init(|| {
        ConfigArgs::augment_args(clap::Command::new("scopegate"))
            .get_arguments()
            .map(|a| a.get_id().as_str().to_string())
            .filter(|k| k != "config")
            .map(|k| match k.as_str() {
                "connector_settings" => "connector".to_string(),
                _ => k,
            })
            .collect()
    })
}

fn parse(text: &str) -> Result<ConfigArgs, String> {
    ConfigArgs::from_toml(Path::new("c.toml"), text)
}

/// Well-typed top-level settings, each a line of its own.
const VALID: [(&str, &str); 7] = [
    ("api_burst", "7"),
    ("listen", "\"127.0.0.1:9\""),
    ("log_format", "\"json\""),
    ("data_dir", "\"/srv/scopegate\""),
    ("token_ttl_secs", "120"),
    ("trusted_proxies", "[\"10.0.0.1\", \"::1\"]"),
    ("public_url", "\"https://gw.example\""),
];

/// Settings resolve to a gateway whose limiters can be built, or to an
/// error naming the key.
fn resolves_or_names_the_key(args: ConfigArgs, file: ConfigArgs) {
    match Config::from_layers(args, file) {
        Ok(config) => {
            AuthThrottle::new("oauth_token", &config.limits, None);
            ApiLimiters::new(&config.limits, Arc::new(Vec::new()), None);
            assert!(config.firm_pool_capacity <= MAX_FIRM_POOL_CAPACITY);
        }
        Err(e) => assert!(keys().iter().any(|k| e.starts_with(k.as_str())), "{e}"),
    }
}

fn any_text(text: &str) {
    match parse(text) {
        Err(e) => {
            assert!(e.starts_with("config file c.toml"), "{e}");
            assert_eq!(e.lines().count(), 1, "{e}");
            if let Some(rest) = e.strip_prefix("config file c.toml line ") {
                let line: usize = rest.split([':', ',']).next().unwrap().parse().unwrap();
                assert!(
                    (1..=text.split('\n').count()).contains(&line),
                    "{e}\n{text:?}"
                );
            }
        }
        Ok(file) => resolves_or_names_the_key(ConfigArgs::default(), file),
    }
}

/// Up to `max` characters, none a control character.
fn text(u: &mut Unstructured, max: usize) -> Result<String> {
    Ok(String::arbitrary(u)?
        .chars()
        .filter(|c| !c.is_control())
        .take(max)
        .collect())
}

fn written_and_read_back(u: &mut Unstructured) -> Result<()> {
    let api_burst = Option::<u32>::arbitrary(u)?;
    // TOML integers are i64: token_ttl_secs is drawn below 2^63.
    let token_ttl_secs = Option::<u64>::arbitrary(u)?.map(|n| n >> 1);
    // An address as text has no IPv6 flow label: drawn without one.
    let listen = Option::<(IpAddr, u16)>::arbitrary(u)?.map(SocketAddr::from);
    let public_url = if bool::arbitrary(u)? {
        Some(text(u, 30)?)
    } else {
        None
    };
    let trusted_proxies = if bool::arbitrary(u)? {
        let count = u.int_in_range(0..=3)?;
        Some(
            (0..count)
                .map(|_| IpAddr::arbitrary(u))
                .collect::<Result<Vec<_>>>()?,
        )
    } else {
        None
    };
    let mut connectors = BTreeMap::<String, BTreeMap<String, String>>::new();
    for _ in 0..u.int_in_range(0..=2)? {
        let length = u.int_in_range(1..=12)?;
        let id = (0..length)
            .map(|_| u.choose(b"abcdefghijklmnopqrstuvwxyz-").map(|c| *c as char))
            .collect::<Result<String>>()?;
        let mut keys = BTreeMap::new();
        for _ in 0..u.int_in_range(0..=3)? {
            let key = text(u, 12)?;
            if !key.is_empty() {
                keys.insert(key, text(u, 20)?);
            }
        }
        connectors.insert(id, keys);
    }
    let mut file = toml::Table::new();
    if let Some(n) = api_burst {
        file.insert("api_burst".into(), i64::from(n).into());
    }
    if let Some(n) = token_ttl_secs {
        file.insert("token_ttl_secs".into(), (n as i64).into());
    }
    if let Some(addr) = listen {
        file.insert("listen".into(), addr.to_string().into());
    }
    if let Some(url) = &public_url {
        file.insert("public_url".into(), url.clone().into());
    }
    if let Some(ips) = &trusted_proxies {
        let ips: Vec<toml::Value> = ips.iter().map(|ip| ip.to_string().into()).collect();
        file.insert("trusted_proxies".into(), ips.into());
    }
    let tables: toml::Table = connectors
        .iter()
        .map(|(id, keys)| {
            let keys: toml::Table = keys
                .iter()
                .map(|(k, v)| (k.clone(), v.clone().into()))
                .collect();
            (id.clone(), keys.into())
        })
        .collect();
    if !tables.is_empty() {
        file.insert("connector".into(), tables.into());
    }
    let text = toml::to_string(&file).unwrap();
    let read = parse(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
    assert_eq!(read.api_burst, api_burst);
    assert_eq!(read.token_ttl_secs, token_ttl_secs);
    assert_eq!(read.listen, listen);
    assert_eq!(read.public_url, public_url);
    assert_eq!(read.trusted_proxies, trusted_proxies);
    let settings: Vec<(String, String, String)> = read
        .connector_settings
        .into_iter()
        .map(|s| (s.connector, s.key, s.value))
        .collect();
    let expected: Vec<(String, String, String)> = connectors
        .into_iter()
        .flat_map(|(id, keys)| keys.into_iter().map(move |(k, v)| (id.clone(), k, v)))
        .collect();
    assert_eq!(settings, expected, "{text}");
    Ok(())
}

fn a_bad_line_names_its_line_and_key(u: &mut Unstructured) -> Result<()> {
    let mut filler: Vec<(&str, &str)> = Vec::new();
    for valid in VALID {
        if bool::arbitrary(u)? {
            filler.push(valid);
        }
    }
    for i in (1..filler.len()).rev() {
        filler.swap(i, u.int_in_range(0..=i)?);
    }
    let key = if bool::arbitrary(u)? {
        u.choose(keys())?.clone()
    } else {
        let length = u.int_in_range(0..=20)?;
        let key = std::iter::once(u.choose(b"abcdefghijklmnopqrstuvwxyz"))
            .chain((0..length).map(|_| u.choose(b"abcdefghijklmnopqrstuvwxyz_")))
            .map(|c| c.map(|c| *c as char))
            .collect::<Result<String>>()?;
        if keys().contains(&key) {
            return Ok(());
        }
        key
    };
    let bad = *u.choose(&["true", "{ a = 1 }", "1979-05-27", "0.5"])?;
    if filler.iter().any(|(k, _)| *k == key) {
        return Ok(());
    }
    let mut lines: Vec<String> = Vec::new();
    for (k, v) in &filler {
        lines.push(format!("{k} = {v}"));
        lines.push(
            if bool::arbitrary(u)? {
                "# a comment"
            } else {
                ""
            }
            .to_string(),
        );
    }
    let at = u.int_in_range(0..=lines.len())?;
    lines.insert(at, format!("{key} = {bad}"));
    let text = lines.join("\n");
    let e = parse(&text)
        .err()
        .unwrap_or_else(|| panic!("accepted:\n{text}"));
    // The key, or a key inside it (`connector.x`).
    let place = format!("config file c.toml line {}, key {key}", at + 1);
    let named = e
        .strip_prefix(&place)
        .is_some_and(|r| r.starts_with([':', '.']));
    assert!(named, "{e} (expected {place})\n{text}");
    Ok(())
}

fn any_numbers(u: &mut Unstructured) -> Result<()> {
    let mut n = || -> Result<u64> {
        let n = u64::arbitrary(u)?;
        Ok(if bool::arbitrary(u)? { n % 100_000 } else { n })
    };
    let args = ConfigArgs {
        token_ttl_secs: Some(n()?),
        firm_pool_capacity: Some(n()? as usize),
        header_read_timeout_secs: Some(n()?),
        request_timeout_secs: Some(n()?),
        max_connections: Some(n()? as usize),
        api_rate_per_second: Some(n()?),
        api_burst: Some(n()? as u32),
        auth_failures_per_ip: Some(n()? as u32),
        auth_failures_per_client: Some(n()? as u32),
        auth_failure_recovery_secs: Some(n()?),
        session_idle_secs: Some(n()?),
        session_max_secs: Some(n()?),
        checkpoint_interval_secs: Some(n()?),
        backup_generations: Some(n()? as usize),
        ..Default::default()
    };
    resolves_or_names_the_key(args, ConfigArgs::default());
    Ok(())
}

fn check(u: &mut Unstructured) -> Result<()> {
    match u.int_in_range(0u8..=3)? {
        0 => any_text(&String::from_utf8_lossy(u.bytes(u.len())?)),
        1 => written_and_read_back(u)?,
        2 => a_bad_line_names_its_line_and_key(u)?,
        _ => any_numbers(u)?,
    }
    Ok(())
}

fuzz_target!(|data: &[u8]| {
    let _ = check(&mut Unstructured::new(data));
});
