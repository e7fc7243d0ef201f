// A connector builds a "checked" payload without a schema check, to send arbitrary bytes.
use scopegate_contract::CheckedPayload;

fn unchecked() -> CheckedPayload {
    CheckedPayload {
        schema: "event".into(),
        fields: vec![],
        bytes: b"{\"location\":\"Boardroom 2\"}".to_vec(),
    }
}

fn main() {}
