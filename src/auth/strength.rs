//! Password strength, estimated with zxcvbn against the user's own details.

use secrecy::{ExposeSecret as _, SecretString};

use crate::http::error::{ApiError, FieldError};
use crate::AppState;

/// Highest zxcvbn score: more than 10^10 guesses needed.
pub const MAX_SCORE: u8 = 4;

/// Rejects a password whose zxcvbn score is below `min_score` (0 to 4).
/// `user_inputs` are words an attacker would try first for this user, such as
/// the email and display name. The message gives zxcvbn's warning and
/// suggestions when it has them.
pub fn check_strength(
    field: &str,
    password: &str,
    user_inputs: &[&str],
    min_score: u8,
) -> Result<(), FieldError> {
    let estimate = zxcvbn::zxcvbn(password, user_inputs);
    let score = u8::from(estimate.score());
    if score >= min_score {
        return Ok(());
    }
    let mut message = format!(
        "is too easy to guess (strength {score} of {MAX_SCORE}, at least {min_score} required)"
    );
    if let Some(feedback) = estimate.feedback() {
        if let Some(warning) = feedback.warning() {
            message.push_str(&format!(": {warning}"));
        }
        for suggestion in feedback.suggestions() {
            message.push_str(&format!(" {suggestion}"));
        }
    }
    Err(FieldError::new(field, message))
}

/// Runs [`check_strength`] on a blocking thread, because zxcvbn's pattern
/// matching grows with the input and passwords may be 128 characters long.
pub async fn check_strength_blocking(
    field: &'static str,
    password: SecretString,
    user_inputs: Vec<String>,
    min_score: u8,
) -> anyhow::Result<Result<(), FieldError>> {
    let task = tokio::task::spawn_blocking(move || {
        let inputs: Vec<&str> = user_inputs.iter().map(String::as_str).collect();
        check_strength(field, password.expose_secret(), &inputs, min_score)
    });
    Ok(task.await?)
}

/// Rejects a weak new password with a 422 naming `field`, using the
/// account's email and display name and the configured minimum score.
pub async fn require_strong_password(
    state: &AppState,
    field: &'static str,
    password: &SecretString,
    email: &str,
    display_name: &str,
) -> Result<(), ApiError> {
    let inputs = user_inputs(email, display_name);
    let min_score = state.settings.min_password_score;
    check_strength_blocking(field, password.clone(), inputs, min_score)
        .await?
        .map_err(|error| ApiError::Validation(vec![error]))
}

/// Returns the words of an account that a strong password must not lean on:
/// the email, its local part and the display name.
pub fn user_inputs(email: &str, display_name: &str) -> Vec<String> {
    let local = email.split('@').next().unwrap_or(email);
    vec![email.to_owned(), local.to_owned(), display_name.to_owned()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn common_password_is_rejected_with_reason() {
        let error = check_strength("password", "password1", &[], 3).unwrap_err();
        assert_eq!(error.field, "password");
        assert!(
            error.message.starts_with("is too easy to guess"),
            "{}",
            error.message
        );
        assert!(
            error.message.len() > "is too easy to guess".len() + 40,
            "{}",
            error.message
        );
    }

    #[test]
    fn passphrase_is_accepted() {
        assert!(check_strength("password", "correct horse battery staple", &[], 3).is_ok());
    }

    #[test]
    fn user_details_weaken_password() {
        let password = "zephyrinus.quaglietta";
        assert!(check_strength("password", password, &[], 3).is_ok());
        let inputs = user_inputs("zephyrinus.quaglietta@example.test", "Zephyrinus");
        let inputs: Vec<&str> = inputs.iter().map(String::as_str).collect();
        assert!(check_strength("password", password, &inputs, 3).is_err());
    }

    #[test]
    fn score_zero_accepts_anything() {
        assert!(check_strength("password", "aaaaaaaa", &[], 0).is_ok());
    }
}
