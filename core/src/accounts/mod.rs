//! Settings accounts as the registry keeps them: people who belong to exactly
//! one firm with a role, their argon2id password hashes, server-side cookie
//! sessions and the signed hand-off from the firm's practice-management app.

pub mod handoff;
pub mod passwords;
pub mod sessions;
pub mod users;

/// What a person may do in settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Runs the firm's account; the only role that may make or change owners.
    Owner,
    /// Switches connectors, manages credentials and users.
    Admin,
    /// Connects their own calendar; sees which connectors are on.
    FeeEarner,
    /// Reads the outbound log and the consent ledger; changes nothing.
    Bookkeeper,
}

impl Role {
    /// Every role, as `as_str` names them.
    pub const ALL: [Role; 4] = [Role::Owner, Role::Admin, Role::FeeEarner, Role::Bookkeeper];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Owner => "owner",
            Role::Admin => "admin",
            Role::FeeEarner => "fee_earner",
            Role::Bookkeeper => "bookkeeper",
        }
    }

    pub fn parse(text: &str) -> Result<Self, String> {
        match text {
            "owner" => Ok(Role::Owner),
            "admin" => Ok(Role::Admin),
            "fee_earner" => Ok(Role::FeeEarner),
            "bookkeeper" => Ok(Role::Bookkeeper),
            other => Err(format!(
                "role {other:?} must be one of owner, admin, fee_earner, bookkeeper"
            )),
        }
    }

    /// May switch connectors, manage credentials and users.
    pub fn manages(self) -> bool {
        matches!(self, Role::Owner | Role::Admin)
    }

    /// May read the outbound log and consent ledger.
    pub fn audits(self) -> bool {
        matches!(self, Role::Owner | Role::Admin | Role::Bookkeeper)
    }
}
