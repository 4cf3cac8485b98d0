//! Issuing and verifying HS256 access tokens.
//!
//! jsonwebtoken's default `Validation` allows 60 s of leeway, ignores `nbf`
//! and requires only `exp`, so the checks are configured explicitly here and
//! `iat` is checked by hand.

use std::time::Duration;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use rand::RngCore;
use serde::{Deserialize, Serialize};

use super::Role;

/// Value of the `typ` claim on access tokens, so other token kinds signed
/// with the same key can never be used as one.
pub const ACCESS_TYPE: &str = "access";

/// Tokens longer than this are rejected before any parsing: ours are ~400 bytes.
pub const MAX_TOKEN_BYTES: usize = 4096;

/// Claims of an access token. Every field is required; serde rejects a
/// missing, mistyped or duplicated claim.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    /// User id, as a decimal string (RFC 7519 makes `sub` a string).
    pub sub: String,
    pub email: String,
    pub role: Role,
    /// Issued-at, seconds since the Unix epoch.
    pub iat: i64,
    /// Expiry, seconds since the Unix epoch.
    pub exp: i64,
    /// Not-before, seconds since the Unix epoch; optional on presented tokens.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nbf: Option<i64>,
    /// Token id: 128 random bits, base64url without padding.
    pub jti: String,
    /// Id of the session the token belongs to, in the same encoding as `jti`.
    pub sid: String,
    pub iss: String,
    pub aud: String,
    pub typ: String,
}

/// A verified access token.
#[derive(Clone, Debug)]
pub struct VerifiedToken {
    pub user_id: i64,
    pub claims: Claims,
    /// `jti` decoded to its 128 bits, the revocation list's key.
    pub token_id: u128,
    /// `sid` decoded to its 128 bits; ending the session revokes this id.
    pub session_id: u128,
}

/// Why a token was rejected. Kept coarse on purpose: clients learn only that
/// the token is invalid, and logs get the reason.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("token is malformed")]
    Malformed,
    #[error("token signature or algorithm is invalid")]
    BadSignature,
    #[error("token has expired")]
    Expired,
    #[error("token is not valid yet")]
    NotYetValid,
    #[error("token claims are invalid")]
    BadClaims,
}

/// A freshly issued access token.
#[derive(Clone, Debug)]
pub struct IssuedToken {
    pub token: String,
    pub claims: Claims,
}

/// Issues and verifies access tokens with one HS256 key.
#[derive(Clone)]
pub struct TokenService {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
    issuer: String,
    audience: String,
    ttl: Duration,
    leeway: Duration,
}

impl TokenService {
    pub fn new(
        secret: &[u8],
        issuer: &str,
        audience: &str,
        ttl: Duration,
        leeway: Duration,
    ) -> Self {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.algorithms = vec![Algorithm::HS256];
        validation.leeway = leeway.as_secs();
        validation.validate_exp = true;
        validation.validate_nbf = true;
        validation.validate_aud = true;
        validation.set_issuer(&[issuer]);
        validation.set_audience(&[audience]);
        validation.set_required_spec_claims(&["exp", "iat", "sub", "iss", "aud", "jti"]);

        Self {
            encoding: EncodingKey::from_secret(secret),
            decoding: DecodingKey::from_secret(secret),
            validation,
            issuer: issuer.to_owned(),
            audience: audience.to_owned(),
            ttl,
            leeway,
        }
    }

    /// Returns the access token lifetime.
    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    /// Returns the tolerated clock difference.
    pub fn leeway(&self) -> Duration {
        self.leeway
    }

    /// Returns the last second at which a token issued at `issued_at` can
    /// still pass verification, leeway included. A revocation entry kept
    /// until then outlives every token it covers.
    pub fn last_valid_second(&self, issued_at: i64) -> i64 {
        issued_at + self.ttl.as_secs() as i64 + self.leeway.as_secs() as i64
    }

    /// Signs a new access token for a user's session, valid from `now` for the configured lifetime.
    pub fn issue(
        &self,
        user_id: i64,
        email: &str,
        role: Role,
        session_id: u128,
        now: i64,
    ) -> Result<IssuedToken, jsonwebtoken::errors::Error> {
        let claims = Claims {
            sub: user_id.to_string(),
            email: email.to_owned(),
            role,
            iat: now,
            exp: now + self.ttl.as_secs() as i64,
            nbf: None,
            jti: encode_id(random_id()),
            sid: encode_id(session_id),
            iss: self.issuer.clone(),
            aud: self.audience.clone(),
            typ: ACCESS_TYPE.to_owned(),
        };
        let token = jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)?;
        Ok(IssuedToken { token, claims })
    }

    /// Checks signature, algorithm and every claim. `now` is passed in so
    /// tests and benchmarks control the clock for the hand-written checks.
    pub fn verify(&self, token: &str, now: i64) -> Result<VerifiedToken, TokenError> {
        use jsonwebtoken::errors::ErrorKind;

        if token.len() > MAX_TOKEN_BYTES || token.bytes().filter(|b| *b == b'.').count() != 2 {
            return Err(TokenError::Malformed);
        }
        let data = jsonwebtoken::decode::<Claims>(token, &self.decoding, &self.validation)
            .map_err(|error| match error.kind() {
                ErrorKind::InvalidSignature | ErrorKind::InvalidAlgorithm => {
                    TokenError::BadSignature
                }
                ErrorKind::ExpiredSignature => TokenError::Expired,
                ErrorKind::ImmatureSignature => TokenError::NotYetValid,
                ErrorKind::InvalidIssuer
                | ErrorKind::InvalidAudience
                | ErrorKind::MissingRequiredClaim(_)
                | ErrorKind::Json(_) => TokenError::BadClaims,
                _ => TokenError::Malformed,
            })?;
        // jsonwebtoken accepts any header `typ`; only our own claim decides the token kind.
        let claims = data.claims;
        self.check_claims(&claims, now)?;

        let user_id = claims
            .sub
            .parse::<i64>()
            .map_err(|_| TokenError::BadClaims)?;
        let token_id = decode_token_id(&claims.jti).ok_or(TokenError::BadClaims)?;
        let session_id = decode_token_id(&claims.sid).ok_or(TokenError::BadClaims)?;
        Ok(VerifiedToken {
            user_id,
            claims,
            token_id,
            session_id,
        })
    }

    /// Checks what jsonwebtoken does not: token kind, `iat` in the future, and
    /// `exp` against our own clock (the library reads the system clock).
    fn check_claims(&self, claims: &Claims, now: i64) -> Result<(), TokenError> {
        let leeway = self.leeway.as_secs() as i64;
        if claims.typ != ACCESS_TYPE {
            return Err(TokenError::BadClaims);
        }
        if claims.iat > now + leeway {
            return Err(TokenError::NotYetValid);
        }
        if claims.nbf.is_some_and(|nbf| nbf > now + leeway) {
            return Err(TokenError::NotYetValid);
        }
        if claims.exp <= now - leeway {
            return Err(TokenError::Expired);
        }
        Ok(())
    }
}

/// Returns 128 bits from the OS random number generator, for token and session ids.
pub fn random_id() -> u128 {
    let mut bytes = [0u8; 16];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    u128::from_be_bytes(bytes)
}

/// Encodes a token or session id as base64url without padding (22 characters).
pub fn encode_id(id: u128) -> String {
    URL_SAFE_NO_PAD.encode(id.to_be_bytes())
}

/// Decodes a `jti` or `sid` to its 128 bits; anything else was not issued by us.
pub fn decode_token_id(jti: &str) -> Option<u128> {
    let mut bytes = [0u8; 16];
    let written = URL_SAFE_NO_PAD.decode_slice(jti, &mut bytes).ok()?;
    (written == 16 && jti.len() == 22).then(|| u128::from_be_bytes(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn service() -> TokenService {
        TokenService::new(
            &[7u8; 32],
            "confab",
            "confab-api",
            Duration::from_secs(1800),
            Duration::ZERO,
        )
    }

    #[test]
    fn issued_token_verifies() {
        let service = service();
        let now = jsonwebtoken::get_current_timestamp() as i64;
        let issued = service
            .issue(42, "a@example.test", Role::User, 9, now)
            .unwrap();
        let verified = service.verify(&issued.token, now).unwrap();
        assert_eq!(verified.user_id, 42);
        assert_eq!(verified.session_id, 9);
        assert_eq!(verified.claims, issued.claims);
    }

    #[test]
    fn expiry_is_exclusive() {
        let service = service();
        let now = jsonwebtoken::get_current_timestamp() as i64;
        let issued = service
            .issue(1, "a@example.test", Role::User, 9, now)
            .unwrap();
        let at_expiry = issued.claims.exp;
        assert_eq!(
            service.verify(&issued.token, at_expiry).unwrap_err(),
            TokenError::Expired
        );
    }

    #[test]
    fn future_iat_is_rejected() {
        let service = service();
        let now = jsonwebtoken::get_current_timestamp() as i64;
        let issued = service
            .issue(1, "a@example.test", Role::User, 9, now + 60)
            .unwrap();
        assert_eq!(
            service.verify(&issued.token, now).unwrap_err(),
            TokenError::NotYetValid
        );
    }

    #[test]
    fn token_id_round_trips() {
        assert_eq!(decode_token_id("AAAAAAAAAAAAAAAAAAAAAQ"), Some(1));
        assert_eq!(decode_token_id(&encode_id(u128::MAX)), Some(u128::MAX));
        assert_eq!(decode_token_id("short"), None);
        assert_eq!(decode_token_id("AAAAAAAAAAAAAAAAAAAAAQ=="), None);
    }
}
