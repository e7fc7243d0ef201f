//! Passwords: argon2id (the crate's defaults, RFC 9106's second recommended
//! setting) in PHC string form; generated passwords for the operator; a
//! dummy verification so an unknown account costs as much as a wrong password.

use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use rand::Rng;
use std::sync::OnceLock;

/// Shortest password accepted.
pub const MIN_LEN: usize = 12;

/// Refuses passwords that are too short or too long.
pub fn check_policy(password: &str) -> Result<(), String> {
    let n = password.chars().count();
    if n < MIN_LEN {
        return Err(format!(
            "the password must be at least {MIN_LEN} characters"
        ));
    }
    if n > 256 {
        return Err("the password must be at most 256 characters".into());
    }
    Ok(())
}

/// Hashes a password with argon2id and a random salt.
pub fn hash(password: &str) -> String {
    let salt = SaltString::generate(&mut OsRng);
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .expect("argon2 hashes any password")
        .to_string()
}

/// A password hash made by [`hash_checked`]: a new password that met the
/// policy, hashed (only this module can make one).
#[derive(Debug, Clone)]
pub struct Hashed(String);

impl Hashed {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Checks the policy and hashes. Slow (argon2id): keep it off the async runtime.
pub fn hash_checked(password: &str) -> Result<Hashed, String> {
    check_policy(password)?;
    Ok(Hashed(hash(password)))
}

/// True when `password` matches the stored hash. A malformed hash never matches.
pub fn verify(stored: &str, password: &str) -> bool {
    match PasswordHash::new(stored) {
        Ok(parsed) => Argon2::default()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok(),
        Err(_) => false,
    }
}

/// Spends the same work as a real check, for accounts that do not exist.
pub fn verify_dummy(password: &str) {
    static DUMMY: OnceLock<String> = OnceLock::new();
    let stored = DUMMY.get_or_init(|| hash("scopegate-dummy-password"));
    let _ = verify(stored, password);
}

/// A random 20-character password of unambiguous letters and digits.
pub fn generate() -> String {
    const ALPHABET: &[u8] = b"abcdefghjkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789";
    let mut rng = rand::rngs::OsRng;
    (0..20)
        .map(|_| ALPHABET[rng.gen_range(0..ALPHABET.len())] as char)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_are_argon2id_and_verify() {
        let h = hash("correct horse battery");
        assert!(h.starts_with("$argon2id$"));
        assert!(verify(&h, "correct horse battery"));
        assert!(!verify(&h, "correct horse battery!"));
        assert!(!verify("not a hash", "x"));
        assert!(check_policy("short").is_err());
        assert_eq!(generate().len(), 20);
    }
}
