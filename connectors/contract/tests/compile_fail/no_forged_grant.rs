// A connector makes a grant handle for a firm of its choosing.
use scopegate_contract::{FirmGrant, Principal};

fn forge() -> FirmGrant {
    FirmGrant {
        grant_id: "g".into(),
        firm_id: "someone-elses-firm".into(),
        connector: "accounting".into(),
        schema_hash: String::new(),
        scopes: vec!["transactions:read".into()],
        principal: Principal::Lease("mine".into()),
    }
}

fn main() {}
