// A connector asks its capabilities for the firm's database pool: there is none,
// and the core's tenancy (which holds the pools) is not a crate it can name.
use scopegate_contract::{Capabilities, FirmGrant};

async fn steal(caps: Capabilities, grant: FirmGrant) {
    let _pool = caps.pool(&grant);
    let _db = scopegate_core::tenancy::Tenancy::firm_db;
}

fn main() {}
