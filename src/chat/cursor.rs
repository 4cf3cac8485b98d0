//! The opaque cursor of the chat list: base64url (no padding) of
//! `<last activity millis>.<chat id>`. Clients must not build or parse it.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;

use crate::http::error::FieldError;
use crate::store::chats::ActivityKey;

/// Maximum cursor length accepted. Two 19-digit numbers and a dot,
/// base64-encoded, fit in 52 characters.
const MAX_CURSOR_CHARS: usize = 64;

/// Encodes a list position as a cursor.
pub fn encode_cursor(key: ActivityKey) -> String {
    URL_SAFE_NO_PAD.encode(format!("{}.{}", key.last_activity_at, key.id))
}

/// Decodes a cursor made by `encode_cursor`. Anything else is rejected as invalid.
pub fn decode_cursor(cursor: &str) -> Result<ActivityKey, FieldError> {
    let invalid = || FieldError::new("cursor", "is not a cursor returned by this server");
    if cursor.len() > MAX_CURSOR_CHARS {
        return Err(invalid());
    }
    let bytes = URL_SAFE_NO_PAD.decode(cursor).map_err(|_| invalid())?;
    let text = String::from_utf8(bytes).map_err(|_| invalid())?;
    let (activity, id) = text.split_once('.').ok_or_else(invalid)?;
    let last_activity_at: i64 = activity.parse().map_err(|_| invalid())?;
    let id: i64 = id.parse().map_err(|_| invalid())?;
    if last_activity_at < 0 || id < 1 {
        return Err(invalid());
    }
    Ok(ActivityKey {
        last_activity_at,
        id,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursor_round_trips() {
        let key = ActivityKey {
            last_activity_at: 1_764_806_400_123,
            id: 42,
        };
        let cursor = encode_cursor(key);
        assert!(cursor
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'));
        assert_eq!(decode_cursor(&cursor).unwrap(), key);
    }

    #[test]
    fn malformed_cursors_are_rejected() {
        let encoded = |text: &str| URL_SAFE_NO_PAD.encode(text);
        for bad in [
            String::new(),
            "not base64!".to_owned(),
            encoded("12"),
            encoded("a.b"),
            encoded("-1.5"),
            encoded("5.0"),
            encoded("99999999999999999999.1"),
            "A".repeat(MAX_CURSOR_CHARS + 1),
        ] {
            let error = decode_cursor(&bad).unwrap_err();
            assert_eq!(error.field, "cursor", "{bad:?}");
        }
    }
}
