// A connector looks for the core's minting functions through the contract it depends on.
use scopegate_contract::{FirmGrant, Principal};

fn mint() -> FirmGrant {
    scopegate_contract::mint::grant("g", "someone-elses-firm", "accounting", "", vec![], Principal::Lease("x".into()))
}

fn main() {}
