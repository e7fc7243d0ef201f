//! The accounting connector: what a bookkeeper of the firm sees. An
//! accounting vendor polls transactions and matter references in change
//! order and posts fees with an `Idempotency-Key`. Every response body is a
//! schema-checked payload logged through the gateway before it is returned;
//! the firm is the one the vendor's token was issued for. Every record id
//! a vendor sees is its grant's pseudonym for it.

mod fees;
mod ids;
mod paging;
mod polls;

use scopegate_contract::axum::routing::{get, post};
use scopegate_contract::axum::Router;
use scopegate_contract::{BuiltInContract, Capabilities, Connector};

pub use fees::fee_body;
pub use paging::{encode_cursor, page_params};

/// The connector id (folder under `schemas/`).
pub const ID: &str = "accounting";

/// The accounting connector.
pub struct Accounting;

#[derive(utoipa::OpenApi)]
#[openapi(
    paths(polls::transactions, polls::matters, fees::post_fee),
    tags((name = "accounting", description = "What a bookkeeper sees: transactions, matter references, fee posting"))
)]
struct ApiDoc;

impl Connector for Accounting {
    fn id(&self) -> &'static str {
        ID
    }

    fn contract(&self) -> BuiltInContract {
        BuiltInContract {
            manifest: include_str!("../../../schemas/accounting/manifest.json"),
            files: &[
                (
                    "transaction.json",
                    include_str!("../../../schemas/accounting/transaction.json"),
                ),
                (
                    "matter-ref.json",
                    include_str!("../../../schemas/accounting/matter-ref.json"),
                ),
                (
                    "fee.json",
                    include_str!("../../../schemas/accounting/fee.json"),
                ),
                (
                    "fee-result.json",
                    include_str!("../../../schemas/accounting/fee-result.json"),
                ),
                (
                    "transactions-page.json",
                    include_str!("../../../schemas/accounting/transactions-page.json"),
                ),
                (
                    "matters-page.json",
                    include_str!("../../../schemas/accounting/matters-page.json"),
                ),
            ],
        }
    }

    fn routes(&self) -> Option<Router<Capabilities>> {
        Some(
            Router::new()
                .route("/v1/transactions", get(polls::transactions))
                .route("/v1/matters", get(polls::matters))
                .route("/v1/fees", post(fees::post_fee)),
        )
    }

    fn openapi(&self) -> Option<utoipa::openapi::OpenApi> {
        let mut api = <ApiDoc as utoipa::OpenApi>::openapi();
        // A fee post needs its body; utoipa cannot tell that from a schema reference.
        if let Some(body) = api
            .paths
            .paths
            .get_mut("/v1/fees")
            .and_then(|item| item.post.as_mut())
            .and_then(|op| op.request_body.as_mut())
        {
            body.required = Some(utoipa::openapi::Required::True);
        }
        Some(api)
    }

    fn openapi_components(&self) -> &'static [(&'static str, &'static str)] {
        &[
            ("Transaction", "transaction"),
            ("MatterRef", "matter_ref"),
            ("TransactionsPage", "transactions_page"),
            ("MattersPage", "matters_page"),
            ("Fee", "fee"),
            ("FeeResult", "fee_result"),
        ]
    }

    fn scope_descriptions(&self) -> &'static [(&'static str, &'static str)] {
        &[
            (
                "transactions:read",
                "Read accounting transactions and matter references",
            ),
            ("fees:write", "Post fees to matters"),
        ]
    }
}
