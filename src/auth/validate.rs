//! Rules for account input, as plain functions the handlers and tests share.

use std::str::FromStr;

use email_address::EmailAddress;
use unicode_normalization::UnicodeNormalization;

use crate::http::error::FieldError;

pub const PASSWORD_MIN_CHARS: usize = 8;
pub const PASSWORD_MAX_CHARS: usize = 128;
pub const DISPLAY_NAME_MAX_CHARS: usize = 64;
/// RFC 5321 limits a forward path to 254 characters.
pub const EMAIL_MAX_CHARS: usize = 254;

/// Returns the one form an email is stored and compared in: trimmed, Unicode
/// NFC, then lowercase, so `Alice@Example.test` and `alice@example.test` are
/// one account. Rejects anything that is not a valid address.
pub fn normalize_email(raw: &str) -> Result<String, FieldError> {
    let trimmed = raw.trim();
    if trimmed.is_empty() {
        return Err(FieldError::new("email", "is required"));
    }
    if trimmed.chars().count() > EMAIL_MAX_CHARS {
        return Err(FieldError::new(
            "email",
            format!("must be at most {EMAIL_MAX_CHARS} characters"),
        ));
    }
    let normalized: String = trimmed.nfc().collect::<String>().to_lowercase();
    // The crate accepts display-name forms such as `Name <a@b>`; only a bare address is wanted.
    let parsed = EmailAddress::from_str(&normalized).map_err(|error| {
        FieldError::new("email", format!("is not a valid email address ({error})"))
    })?;
    if parsed.as_str() != normalized || normalized.contains(char::is_whitespace) {
        return Err(FieldError::new("email", "is not a valid email address"));
    }
    Ok(normalized)
}

/// Checks password length in Unicode characters, not bytes.
pub fn check_password(field: &str, password: &str) -> Result<(), FieldError> {
    let length = password.chars().count();
    if length < PASSWORD_MIN_CHARS {
        return Err(FieldError::new(
            field,
            format!("must be at least {PASSWORD_MIN_CHARS} characters"),
        ));
    }
    if length > PASSWORD_MAX_CHARS {
        return Err(FieldError::new(
            field,
            format!("must be at most {PASSWORD_MAX_CHARS} characters"),
        ));
    }
    Ok(())
}

/// Trims and checks a display name: 1 to 64 characters, no control characters.
pub fn check_display_name(raw: &str) -> Result<String, FieldError> {
    let trimmed = raw.trim();
    let length = trimmed.chars().count();
    if length == 0 {
        return Err(FieldError::new("display_name", "must not be empty"));
    }
    if length > DISPLAY_NAME_MAX_CHARS {
        return Err(FieldError::new(
            "display_name",
            format!("must be at most {DISPLAY_NAME_MAX_CHARS} characters"),
        ));
    }
    if trimmed.chars().any(char::is_control) {
        return Err(FieldError::new(
            "display_name",
            "must not contain control characters",
        ));
    }
    if trimmed.chars().any(is_hidden_or_bidi) {
        return Err(FieldError::new(
            "display_name",
            "must not contain invisible or text-direction characters (such as U+200B or U+202E)",
        ));
    }
    if trimmed.chars().all(|c| c.is_whitespace() || is_joiner(c)) {
        return Err(FieldError::new(
            "display_name",
            "must contain a visible character",
        ));
    }
    Ok(trimmed.to_owned())
}

/// Returns whether `c` is a Unicode format character that hides text or
/// reorders it, which would let one name pass for another. The zero-width
/// joiners are not listed: emoji sequences and scripts such as Persian need
/// them.
fn is_hidden_or_bidi(c: char) -> bool {
    matches!(
        c,
        '\u{00AD}'
            | '\u{061C}'
            | '\u{180E}'
            | '\u{200B}'
            | '\u{200E}'..='\u{200F}'
            | '\u{202A}'..='\u{202E}'
            | '\u{2060}'..='\u{2064}'
            | '\u{2066}'..='\u{206F}'
            | '\u{FEFF}'
            | '\u{FFF9}'..='\u{FFFB}'
    )
}

/// Returns whether `c` is a zero-width joiner or non-joiner.
fn is_joiner(c: char) -> bool {
    matches!(c, '\u{200C}' | '\u{200D}')
}

/// Derives the default display name from an email's local part.
pub fn default_display_name(email: &str) -> String {
    let local = email.split('@').next().unwrap_or(email);
    local.chars().take(DISPLAY_NAME_MAX_CHARS).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn email_is_normalized() {
        assert_eq!(
            normalize_email("  Alice@Example.TEST ").unwrap(),
            "alice@example.test"
        );
        // "é" written as e + combining acute becomes the single NFC code point.
        assert_eq!(
            normalize_email("Re\u{301}mi@example.test").unwrap(),
            "r\u{e9}mi@example.test"
        );
    }

    #[test]
    fn bad_emails_are_rejected() {
        for bad in [
            "",
            "plain",
            "a@",
            "@b.test",
            "Name <a@b.test>",
            "a b@c.test",
        ] {
            assert!(normalize_email(bad).is_err(), "{bad:?} was accepted");
        }
    }

    #[test]
    fn password_counts_characters() {
        assert!(check_password("password", "ééééééé").is_err());
        assert!(check_password("password", "éééééééé").is_ok());
        assert!(check_password("password", &"a".repeat(129)).is_err());
    }

    #[test]
    fn display_name_rules() {
        assert_eq!(check_display_name("  Ann ").unwrap(), "Ann");
        assert!(check_display_name("   ").is_err());
        assert!(check_display_name("a\u{7}b").is_err());
        assert!(check_display_name(&"x".repeat(65)).is_err());
        assert_eq!(default_display_name("bob@example.test"), "bob");
    }

    #[test]
    fn display_name_rejects_hidden_characters() {
        assert!(check_display_name("\u{200B}").is_err());
        assert!(check_display_name("Bob\u{202E}evil").is_err());
        assert!(check_display_name("A\u{FEFF}nn").is_err());
        assert!(check_display_name("\u{200D}").is_err());
        // Joiners inside a visible name are legitimate.
        assert!(check_display_name("\u{0645}\u{06CC}\u{200C}\u{0634}\u{0648}\u{062F}").is_ok());
        assert!(check_display_name("\u{1F469}\u{200D}\u{1F4BB} Ann").is_ok());
    }
}
