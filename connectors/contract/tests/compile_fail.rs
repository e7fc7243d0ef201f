//! Compile-time proof of the contract's boundaries: code written like a
//! connector (depending on `scopegate-contract` alone) cannot obtain a raw
//! firm pool, cannot make a grant handle for a firm of its choosing, and
//! cannot return an unlogged vendor response. Each case under
//! `compile_fail/` must fail to compile with the error its `.stderr` shows.

#[test]
fn connectors_cannot_step_outside_their_capabilities() {
    let cases = trybuild::TestCases::new();
    cases.compile_fail("tests/compile_fail/*.rs");
}

/// The compile-fail cases can name this crate's own dependencies (trybuild
/// links them all); a real connector cannot, because its manifest lists only
/// the contract and protocol crates. This keeps it that way.
#[test]
fn connector_crates_depend_only_on_the_contract_and_protocol_crates() {
    const ALLOWED: &[&str] = &[
        "scopegate-contract",
        "serde_json",
        "serde",
        "tokio",
        "tracing",
        "utoipa",
        "base64",
        "form_urlencoded",
        "oauth2",
        "google-calendar3",
        "chrono",
        "futures",
        "thiserror",
        // In-memory helpers that reach neither firm data nor the network.
        "governor",
        "hmac",
        "sha2",
        "hex",
        "rand",
        "uuid",
        "clap",
        // The metrics facade: values go to whatever recorder the gateway installed.
        "metrics",
    ];
    let connectors = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut checked = 0;
    for entry in std::fs::read_dir(&connectors).unwrap() {
        let manifest = entry.unwrap().path().join("Cargo.toml");
        let Ok(text) = std::fs::read_to_string(&manifest) else {
            continue;
        };
        let name = text
            .lines()
            .find_map(|l| l.strip_prefix("name = "))
            .unwrap_or_default()
            .trim_matches('"')
            .to_string();
        // The contract itself, its mint and the Google emulator (a test server) are not connectors.
        if [
            "scopegate-contract",
            "scopegate-mint",
            "scopegate-google-emulator",
        ]
        .contains(&name.as_str())
        {
            continue;
        }
        let mut in_dependencies = false;
        for line in text.lines() {
            let line = line.trim();
            if line.starts_with('[') {
                in_dependencies = line == "[dependencies]";
                continue;
            }
            if !in_dependencies || line.is_empty() || line.starts_with('#') {
                continue;
            }
            let dependency = line.split(['=', '.', ' ']).next().unwrap_or_default();
            assert!(
                ALLOWED.contains(&dependency),
                "connector {name} depends on {dependency}: a connector reaches firm data and the network only through scopegate-contract"
            );
        }
        checked += 1;
    }
    assert!(checked >= 3, "found the connector crates ({checked})");
}
