//! Refresh tokens: 256 random bits, opaque to clients, stored only as a hash.
//!
//! A rotation must be repeatable: two browser tabs refreshing at once, or a
//! client whose response was lost, present the same token again and must get
//! the same successor. The server stores no token in plain text, so the
//! successor is derived from the old token with a keyed hash instead of being
//! drawn at random. Only the holder of the old token can compute it, and the
//! stored SHA-256 of either token reveals neither.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use hmac::{Hmac, Mac as _};
use rand::RngCore;
use sha2::{Digest as _, Sha256};

/// Bytes of randomness in a refresh token.
pub const REFRESH_TOKEN_BYTES: usize = 32;

/// Length of an encoded refresh token: 32 bytes in base64url without padding.
pub const REFRESH_TOKEN_CHARS: usize = 43;

/// Context string that separates the successor key from every other use of
/// the JWT secret. Changing it changes every successor, which is harmless
/// only while no rotation is inside its grace period.
const SUCCESSOR_KEY_CONTEXT: &[u8] = b"confab refresh-token successor v1";

type HmacSha256 = Hmac<Sha256>;

/// Derives successors of refresh tokens with a key taken from the JWT secret.
#[derive(Clone)]
pub struct RefreshTokenKey {
    key: [u8; 32],
}

impl RefreshTokenKey {
    /// Derives the successor key as HMAC-SHA256(jwt_secret, context).
    pub fn new(jwt_secret: &[u8]) -> Self {
        let key = hmac_sha256(jwt_secret, SUCCESSOR_KEY_CONTEXT);
        Self { key }
    }

    /// Returns the token that replaces `token` on rotation:
    /// base64url(HMAC-SHA256(key, token)). The same input always gives the
    /// same successor, which is what lets a repeated refresh get it again.
    pub fn successor(&self, token: &str) -> String {
        URL_SAFE_NO_PAD.encode(hmac_sha256(&self.key, token.as_bytes()))
    }
}

fn hmac_sha256(key: &[u8], message: &[u8]) -> [u8; 32] {
    // HMAC accepts keys of any length, so `new_from_slice` cannot fail here.
    let mut mac = HmacSha256::new_from_slice(key).expect("HMAC accepts any key length");
    mac.update(message);
    mac.finalize().into_bytes().into()
}

/// Returns a new random refresh token, the first of a session.
pub fn generate() -> String {
    let mut bytes = [0u8; REFRESH_TOKEN_BYTES];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

/// Returns the stored form of a refresh token: its SHA-256 in lowercase hex.
/// The token has 256 random bits, so a fast hash resists guessing and no
/// salt or slow hash is needed.
pub fn hash(token: &str) -> String {
    let digest = Sha256::digest(token.as_bytes());
    digest.iter().map(|byte| format!("{byte:02x}")).collect()
}

/// Returns whether `token` has the shape of a refresh token we issued.
pub fn is_well_formed(token: &str) -> bool {
    let mut bytes = [0u8; REFRESH_TOKEN_BYTES];
    token.len() == REFRESH_TOKEN_CHARS
        && URL_SAFE_NO_PAD
            .decode_slice(token, &mut bytes)
            .is_ok_and(|written| written == REFRESH_TOKEN_BYTES)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn successor_is_deterministic_and_keyed() {
        let key = RefreshTokenKey::new(&[7u8; 32]);
        let other_key = RefreshTokenKey::new(&[8u8; 32]);
        let token = generate();

        let successor = key.successor(&token);
        assert_eq!(successor, key.successor(&token));
        assert_ne!(successor, other_key.successor(&token));
        assert_ne!(successor, token);
        assert!(is_well_formed(&successor));
    }

    #[test]
    fn generated_tokens_are_well_formed() {
        let token = generate();
        assert_eq!(token.len(), REFRESH_TOKEN_CHARS);
        assert!(is_well_formed(&token));
        assert_ne!(token, generate());
    }

    #[test]
    fn malformed_tokens_are_detected() {
        for bad in ["", "short", &"a".repeat(44), &"!".repeat(43)] {
            assert!(!is_well_formed(bad), "{bad:?} was accepted");
        }
    }

    #[test]
    fn hash_is_hex_sha256() {
        assert_eq!(
            hash("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
