//! A record as its row stores it, borrowed (the two lists still JSON text),
//! and its canonical form built from those columns without decoding them
//! into owned values: what the verifier hashes. A list whose stored text is
//! already exactly the canonical JSON of the list it holds is copied as is;
//! any other text is decoded and re-serialized (or hashed as unreadable),
//! so the bytes hashed are always those of [`LogRecord`]'s canonical form.

use super::record::LogRecord;

/// One stored record's columns, borrowed from wherever the row was read.
#[derive(Debug, Clone, Copy)]
pub(crate) struct StoredRecord<'a> {
    pub firm_id: &'a str,
    pub seq: i64,
    pub kind: &'a str,
    pub at: i64,
    pub grant_id: &'a str,
    pub connector: &'a str,
    pub direction: &'a str,
    pub method: &'a str,
    pub target: &'a str,
    /// JSON text of the field-name list, as stored.
    pub fields: &'a str,
    /// JSON text of the record-id list, as stored.
    pub record_ids: &'a str,
    pub payload_sha256: &'a str,
    pub bytes: i64,
    pub send_seq: Option<i64>,
    pub status: Option<i64>,
    pub latency_us: Option<i64>,
    pub prev_hash: &'a str,
    pub hash: &'a str,
    pub mac_key: &'a str,
}

impl StoredRecord<'_> {
    /// Writes the canonical form (see `record::Canonical`) into `out`, which is cleared first.
    pub fn canonical_into(&self, out: &mut Vec<u8>) {
        out.clear();
        out.push(b'[');
        put_str(out, self.firm_id);
        out.push(b',');
        put(out, &self.seq);
        out.push(b',');
        put_str(out, self.kind);
        out.push(b',');
        put(out, &self.at);
        out.push(b',');
        put_str(out, self.grant_id);
        out.push(b',');
        put_str(out, self.connector);
        out.push(b',');
        put_str(out, self.direction);
        out.push(b',');
        put_str(out, self.method);
        out.push(b',');
        put_str(out, self.target);
        out.push(b',');
        put_list(out, self.fields);
        out.push(b',');
        put_list(out, self.record_ids);
        out.push(b',');
        put_str(out, self.payload_sha256);
        out.push(b',');
        put(out, &self.bytes);
        out.push(b',');
        put(out, &self.send_seq);
        out.push(b',');
        put(out, &self.status);
        out.push(b',');
        put(out, &self.latency_us);
        out.push(b',');
        put_str(out, self.prev_hash);
        out.push(b']');
    }
}

fn put<T: serde::Serialize + ?Sized>(out: &mut Vec<u8>, value: &T) {
    serde_json::to_writer(&mut *out, value).expect("writing JSON to memory cannot fail");
}

/// Bytes `serde_json` writes as themselves inside a string.
fn plain(b: u8) -> bool {
    b >= 0x20 && b != b'"' && b != b'\\'
}

/// True when every byte is written as itself. Every byte is looked at (no
/// early exit), which lets the compiler check them many at a time: the
/// verifier runs this over every column of every record.
fn all_plain(bytes: &[u8]) -> bool {
    bytes.iter().fold(true, |ok, &b| ok & plain(b))
}

/// A string as `serde_json` writes it: copied between quotes when nothing in it needs escaping.
fn put_str(out: &mut Vec<u8>, s: &str) {
    if all_plain(s.as_bytes()) {
        out.push(b'"');
        out.extend_from_slice(s.as_bytes());
        out.push(b'"');
    } else {
        put(out, s);
    }
}

/// A stored list: its own text when that is already canonical, else decoded
/// and re-serialized the way `LogRecord::from_row` decodes it.
fn put_list(out: &mut Vec<u8>, text: &str) {
    if is_canonical_string_list(text) {
        out.extend_from_slice(text.as_bytes());
    } else {
        let list: Vec<String> =
            serde_json::from_str(text).unwrap_or_else(|_| vec!["<unreadable>".into()]);
        put(out, &list);
    }
}

/// True when `text` is exactly what `serde_json` writes for some `Vec<String>`:
/// `[`, strings separated by `,` with no whitespace, `]`; inside a string every
/// byte is itself except `"` and `\` (escaped as `\"`, `\\`) and control
/// characters (`\b`, `\t`, `\n`, `\f`, `\r`, else `\u00xx` in lower-case hex).
pub(crate) fn is_canonical_string_list(text: &str) -> bool {
    let b = text.as_bytes();
    if b.len() < 2 || b[0] != b'[' || b[b.len() - 1] != b']' {
        return false;
    }
    let body = &b[1..b.len() - 1];
    if body.is_empty() {
        return true;
    }
    if all_plain_or_quote(body) {
        return is_canonical_plain_list(body);
    }
    let mut i = 0;
    loop {
        // One string.
        if body.get(i) != Some(&b'"') {
            return false;
        }
        i += 1;
        loop {
            while body.get(i).is_some_and(|b| plain(*b)) {
                i += 1;
            }
            match body.get(i) {
                None => return false,
                Some(b'"') => break,
                Some(b'\\') => {
                    match body.get(i + 1) {
                        Some(b'"' | b'\\' | b'b' | b't' | b'n' | b'f' | b'r') => i += 2,
                        Some(b'u') => {
                            // serde_json writes \u00xx only for the controls without a short form.
                            let Some(hex) = body.get(i + 2..i + 6) else {
                                return false;
                            };
                            if hex[0] != b'0' || hex[1] != b'0' {
                                return false;
                            }
                            let lower_hex =
                                |c: u8| c.is_ascii_digit() || (b'a'..=b'f').contains(&c);
                            if !lower_hex(hex[2]) || !lower_hex(hex[3]) || hex[2] > b'1' {
                                return false;
                            }
                            let code = u8::from_str_radix(
                                std::str::from_utf8(&hex[2..4]).expect("ascii"),
                                16,
                            )
                            .expect("hex");
                            if matches!(code, 0x08 | 0x09 | 0x0a | 0x0c | 0x0d) {
                                return false;
                            }
                            i += 6;
                        }
                        _ => return false,
                    }
                }
                Some(c) if *c < 0x20 => return false,
                Some(_) => i += 1,
            }
        }
        i += 1; // the closing quote
        match body.get(i) {
            None => return true,
            Some(b',') => i += 1,
            Some(_) => return false,
        }
    }
}

/// True when `body` holds no escape and no control character: every `"` in it
/// is then a string's own delimiter (a whole-slice check, many bytes at a time).
fn all_plain_or_quote(body: &[u8]) -> bool {
    body.iter()
        .fold(true, |ok, &b| ok & (b >= 0x20) & (b != b'\\'))
}

/// [`is_canonical_string_list`] for a list body without escapes: `"a","b",...`.
/// No string can hold a `"`, so each one runs to the next `"`, which must be
/// followed by the end or by `,"`.
fn is_canonical_plain_list(body: &[u8]) -> bool {
    let mut i = 0;
    loop {
        if body.get(i) != Some(&b'"') {
            return false;
        }
        let Some(len) = body[i + 1..].iter().position(|&b| b == b'"') else {
            return false;
        };
        i += len + 2; // the string and its closing quote
        match body.get(i) {
            None => return true,
            Some(b',') => i += 1,
            Some(_) => return false,
        }
    }
}

impl<'a> StoredRecord<'a> {
    /// The columns of a decoded record, with its lists as `texts` (fields, record ids) hold them.
    pub fn of(record: &'a LogRecord, texts: &'a (String, String)) -> Self {
        StoredRecord {
            firm_id: &record.firm_id,
            seq: record.seq,
            kind: &record.kind,
            at: record.at,
            grant_id: &record.grant_id,
            connector: &record.connector,
            direction: &record.direction,
            method: &record.method,
            target: &record.target,
            fields: &texts.0,
            record_ids: &texts.1,
            payload_sha256: &record.payload_sha256,
            bytes: record.bytes,
            send_seq: record.send_seq,
            status: record.status,
            latency_us: record.latency_us,
            prev_hash: &record.prev_hash,
            hash: &record.hash,
            mac_key: &record.mac_key,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keyed_chain::GENESIS_HASH;

    fn record(fields: Vec<String>, record_ids: Vec<String>) -> LogRecord {
        LogRecord {
            firm_id: "alpha-law \u{e9}\"".into(),
            seq: 7,
            kind: "send".into(),
            at: -1_790_000_000_000,
            grant_id: "gr_1".into(),
            connector: "accounting".into(),
            direction: "outbound".into(),
            method: "GET".into(),
            target: "/v1/matters?x=\\y\n\u{1f}\u{7f}".into(),
            fields,
            record_ids,
            payload_sha256: "ab".repeat(32),
            bytes: i64::MAX,
            send_seq: None,
            status: Some(200),
            latency_us: Some(-3),
            prev_hash: GENESIS_HASH.into(),
            hash: String::new(),
            mac_key: String::new(),
        }
    }

    fn odd_strings() -> Vec<String> {
        let mut out: Vec<String> = (0u32..0x80)
            .map(|c| format!("a{}b", char::from_u32(c).unwrap()))
            .collect();
        out.extend(
            [
                "",
                "\"",
                "\\",
                "\u{2028}",
                "\u{e9}\u{1f600}",
                "[",
                "]",
                ",",
                "\"]",
                "\\u0000",
            ]
            .map(String::from),
        );
        out
    }

    /// The canonical form the record type serializes, for comparison.
    fn expected(r: &LogRecord) -> Vec<u8> {
        let mut h = Vec::new();
        crate::keyed_chain::canonical_into(&super::super::record::canonical(r), |b| {
            h.extend_from_slice(b)
        });
        h
    }

    #[test]
    fn the_stored_form_hashes_the_same_bytes_as_the_record() {
        let lists = [
            vec![],
            vec!["id".to_string()],
            vec!["id".into(), "name".into()],
            odd_strings(),
        ];
        let mut buf = Vec::new();
        for fields in &lists {
            for ids in &lists {
                let r = record(fields.clone(), ids.clone());
                let texts = (
                    serde_json::to_string(&r.fields).unwrap(),
                    serde_json::to_string(&r.record_ids).unwrap(),
                );
                assert!(is_canonical_string_list(&texts.0), "{}", texts.0);
                StoredRecord::of(&r, &texts).canonical_into(&mut buf);
                assert_eq!(
                    String::from_utf8_lossy(&buf),
                    String::from_utf8_lossy(&expected(&r))
                );
            }
        }
    }

    #[test]
    fn a_text_is_canonical_exactly_when_serde_json_writes_it_back_unchanged() {
        // Every text of up to 7 characters over an alphabet of the list's own
        // punctuation: the answer must be serde_json's round trip.
        let alphabet = ['[', ']', '"', ',', 'a', ' ', '\\'];
        let mut texts = vec![String::new()];
        for _ in 0..7 {
            texts = texts
                .iter()
                .flat_map(|t| alphabet.iter().map(move |c| format!("{t}{c}")))
                .collect();
            for text in &texts {
                let round_trip = serde_json::from_str::<Vec<String>>(text)
                    .is_ok_and(|list| serde_json::to_string(&list).unwrap() == *text);
                assert_eq!(is_canonical_string_list(text), round_trip, "{text}");
            }
        }
    }

    #[test]
    fn every_string_serde_json_writes_is_canonical_and_single_strings_too() {
        for s in odd_strings() {
            let text = serde_json::to_string(&vec![s.clone(), s.clone()]).unwrap();
            assert!(is_canonical_string_list(&text), "{text}");
        }
    }

    #[test]
    fn other_texts_of_the_same_list_are_re_serialized_and_broken_ones_unreadable() {
        let r = record(vec!["a".into(), "b".into()], vec!["x".into()]);
        let mut buf = Vec::new();
        for (fields, ok) in [
            ("[\"a\", \"b\"]", true),
            ("[ \"a\",\"b\" ]", true),
            ("[\"\\u0061\",\"b\"]", true),
            ("[\"a\",\"\\/b\"]", false), // "/b" is another list
            ("[\"a\",\"b\"", false),
            ("[\"a\"],[\"b\"]", false),
            ("[\"a\",\"b\",]", false),
            ("[\"a\",\"b\"]x", false),
            ("", false),
        ] {
            assert!(!is_canonical_string_list(fields), "{fields}");
            let texts = (fields.to_string(), "[\"x\"]".to_string());
            StoredRecord::of(&r, &texts).canonical_into(&mut buf);
            assert_eq!(buf == expected(&r), ok, "{fields}");
        }
        // A list split differently across the two columns is not the same record.
        let texts = ("[\"a\"".to_string(), "\"b\"],[\"x\"]".to_string());
        StoredRecord::of(&r, &texts).canonical_into(&mut buf);
        assert_ne!(buf, expected(&r));
        // Escapes serde_json never writes are not taken as canonical.
        for text in [
            "[\"\\u000a\"]",
            "[\"\\u001F\"]",
            "[\"\\u0020\"]",
            "[\"\\u00e9\"]",
            "[\"\\/\"]",
            "[\"\u{1}\"]",
        ] {
            assert!(!is_canonical_string_list(text), "{text}");
        }
        assert!(is_canonical_string_list("[\"\\u001f\\u0000\\b\\f\"]"));
    }
}
