//! Rules for chat input, as plain functions the handlers and tests share.
//! Each returns the cleaned value or a `FieldError` naming the field.

use std::collections::HashSet;

use crate::auth::validate::normalize_email;
use crate::http::error::FieldError;

/// Maximum message body length, in Unicode characters after trimming.
pub const BODY_MAX_CHARS: usize = 4000;
/// Maximum group title length, in Unicode characters after trimming.
pub const TITLE_MAX_CHARS: usize = 100;
/// Maximum client id length. A UUID in text form has 36 characters.
pub const CLIENT_ID_MAX_CHARS: usize = 128;
/// Most members of one group, owner included. Every event in a group goes to
/// each member and every chat object lists all members, so this bounds both
/// the fan-out of one message and the size of a chat response.
pub const MAX_GROUP_MEMBERS: usize = 1000;
/// Maximum user search query length: the maximum email length (RFC 5321).
pub const SEARCH_QUERY_MAX_CHARS: usize = 254;

/// Default and maximum page sizes of each listing.
pub const MESSAGE_PAGE: PageSize = PageSize {
    default: 50,
    max: 200,
};
pub const CHAT_PAGE: PageSize = PageSize {
    default: 20,
    max: 100,
};
pub const USER_SEARCH_PAGE: PageSize = PageSize {
    default: 10,
    max: 50,
};

/// Default and maximum number of items a listing returns.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PageSize {
    pub default: i64,
    pub max: i64,
}

/// A parsed `GET /users` search.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SearchQuery {
    /// Display-name prefix, trimmed.
    pub name_prefix: String,
    /// The query as a normalised email, when it is one.
    pub email: Option<String>,
}

/// Trims a message body and checks it: 1 to 4,000 characters, and no control
/// characters other than tab, line feed and carriage return. HTML and any
/// other text are kept verbatim.
pub fn check_body(raw: &str) -> Result<String, FieldError> {
    let trimmed = raw.trim();
    let length = trimmed.chars().count();
    if length == 0 {
        return Err(FieldError::new("body", "must not be empty"));
    }
    if length > BODY_MAX_CHARS {
        return Err(FieldError::new(
            "body",
            format!("must be at most {BODY_MAX_CHARS} characters, not {length}"),
        ));
    }
    if trimmed
        .chars()
        .any(|c| c.is_control() && !matches!(c, '\t' | '\n' | '\r'))
    {
        return Err(FieldError::new(
            "body",
            "must not contain control characters other than tab and line breaks",
        ));
    }
    Ok(trimmed.to_owned())
}

/// Trims a group title and checks it: 1 to 100 characters, no control
/// characters (line breaks included).
pub fn check_title(raw: &str) -> Result<String, FieldError> {
    let trimmed = raw.trim();
    let length = trimmed.chars().count();
    if length == 0 {
        return Err(FieldError::new("title", "must not be empty"));
    }
    if length > TITLE_MAX_CHARS {
        return Err(FieldError::new(
            "title",
            format!("must be at most {TITLE_MAX_CHARS} characters"),
        ));
    }
    if trimmed.chars().any(char::is_control) {
        return Err(FieldError::new(
            "title",
            "must not contain control characters",
        ));
    }
    Ok(trimmed.to_owned())
}

/// Checks a client id: 1 to 128 characters, no control characters. It is
/// compared exactly, so it is not trimmed.
pub fn check_client_id(raw: &str) -> Result<String, FieldError> {
    let length = raw.chars().count();
    if length == 0 {
        return Err(FieldError::new("client_id", "must not be empty"));
    }
    if length > CLIENT_ID_MAX_CHARS {
        return Err(FieldError::new(
            "client_id",
            format!("must be at most {CLIENT_ID_MAX_CHARS} characters"),
        ));
    }
    if raw.chars().any(char::is_control) {
        return Err(FieldError::new(
            "client_id",
            "must not contain control characters",
        ));
    }
    Ok(raw.to_owned())
}

/// Checks that an id is positive; ids start at 1.
pub fn check_id(field: &str, id: i64) -> Result<i64, FieldError> {
    if id < 1 {
        return Err(FieldError::new(field, "must be a positive integer id"));
    }
    Ok(id)
}

/// Checks an optional `before`/`after` message id: 0 or more, because
/// `after=0` reads from the first message.
pub fn check_message_bound(field: &str, bound: Option<i64>) -> Result<Option<i64>, FieldError> {
    match bound {
        Some(value) if value < 0 => Err(FieldError::new(
            field,
            "must be a message id (0 or a positive integer)",
        )),
        other => Ok(other),
    }
}

/// Resolves the `limit` parameter: the default when absent, at least 1, and
/// values above the maximum lowered to it.
pub fn page_limit(limit: Option<i64>, size: PageSize) -> Result<i64, FieldError> {
    match limit {
        None => Ok(size.default),
        Some(value) if value < 1 => Err(FieldError::new("limit", "must be at least 1")),
        Some(value) => Ok(value.min(size.max)),
    }
}

/// Cleans a new group's member list: ids must be positive, duplicates and the
/// creator are dropped (the creator joins as owner anyway), and the group may
/// not exceed `MAX_GROUP_MEMBERS`.
pub fn check_member_ids(creator: i64, member_ids: &[i64]) -> Result<Vec<i64>, FieldError> {
    if let Some(index) = member_ids.iter().position(|id| *id < 1) {
        return Err(FieldError::new(
            format!("member_ids[{index}]"),
            "must be a positive integer id",
        ));
    }
    let mut seen = HashSet::new();
    let unique: Vec<i64> = member_ids
        .iter()
        .copied()
        .filter(|id| *id != creator && seen.insert(*id))
        .collect();
    if unique.len() + 1 > MAX_GROUP_MEMBERS {
        return Err(FieldError::new(
            "member_ids",
            format!("a group has at most {MAX_GROUP_MEMBERS} members, the owner included"),
        ));
    }
    Ok(unique)
}

/// Reads a user search: 1 to 254 characters after trimming, no control
/// characters (PostgreSQL text cannot hold NUL). A query that is a valid email
/// address is also matched exactly against emails.
pub fn check_search_query(raw: &str) -> Result<SearchQuery, FieldError> {
    let trimmed = raw.trim();
    let length = trimmed.chars().count();
    if length == 0 {
        return Err(FieldError::new("query", "must not be empty"));
    }
    if length > SEARCH_QUERY_MAX_CHARS {
        return Err(FieldError::new(
            "query",
            format!("must be at most {SEARCH_QUERY_MAX_CHARS} characters"),
        ));
    }
    if trimmed.chars().any(char::is_control) {
        return Err(FieldError::new(
            "query",
            "must not contain control characters",
        ));
    }
    let email = trimmed
        .contains('@')
        .then(|| normalize_email(trimmed).ok())
        .flatten();
    Ok(SearchQuery {
        name_prefix: trimmed.to_owned(),
        email,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn body_is_trimmed_and_kept_verbatim() {
        assert_eq!(check_body("  hi \n").unwrap(), "hi");
        let html = "<script>alert(1)</script> & <b>";
        assert_eq!(check_body(html).unwrap(), html);
        assert_eq!(
            check_body("line 1\nline 2\tend").unwrap(),
            "line 1\nline 2\tend"
        );
    }

    #[test]
    fn body_length_counts_characters() {
        assert!(check_body(" \n\t ").is_err());
        assert!(check_body(&"é".repeat(BODY_MAX_CHARS)).is_ok());
        assert!(check_body(&"é".repeat(BODY_MAX_CHARS + 1)).is_err());
        // Surrounding spaces do not count towards the limit.
        assert!(check_body(&format!("  {}  ", "x".repeat(BODY_MAX_CHARS))).is_ok());
    }

    #[test]
    fn body_rejects_control_characters() {
        assert!(check_body("a\u{0}b").is_err());
        assert!(check_body("a\u{7}b").is_err());
    }

    #[test]
    fn title_rules() {
        assert_eq!(check_title("  Team  ").unwrap(), "Team");
        assert!(check_title("").is_err());
        assert!(check_title("two\nlines").is_err());
        assert!(check_title(&"t".repeat(TITLE_MAX_CHARS)).is_ok());
        assert!(check_title(&"t".repeat(TITLE_MAX_CHARS + 1)).is_err());
    }

    #[test]
    fn client_id_rules() {
        assert_eq!(check_client_id(" a ").unwrap(), " a ");
        assert!(check_client_id("").is_err());
        assert!(check_client_id("a\u{0}").is_err());
        assert!(check_client_id(&"c".repeat(CLIENT_ID_MAX_CHARS + 1)).is_err());
    }

    #[test]
    fn ids_must_be_positive() {
        assert_eq!(check_id("user_id", 1).unwrap(), 1);
        assert_eq!(check_id("user_id", 0).unwrap_err().field, "user_id");
        assert!(check_id("user_id", -3).is_err());
        assert_eq!(check_message_bound("after", Some(0)).unwrap(), Some(0));
        assert!(check_message_bound("before", Some(-1)).is_err());
    }

    #[test]
    fn limit_defaults_and_caps() {
        assert_eq!(page_limit(None, MESSAGE_PAGE).unwrap(), 50);
        assert_eq!(page_limit(Some(7), MESSAGE_PAGE).unwrap(), 7);
        assert_eq!(page_limit(Some(10_000), MESSAGE_PAGE).unwrap(), 200);
        assert_eq!(page_limit(Some(i64::MAX), MESSAGE_PAGE).unwrap(), 200);
        assert!(page_limit(Some(0), MESSAGE_PAGE).is_err());
        assert!(page_limit(Some(-5), MESSAGE_PAGE).is_err());
    }

    #[test]
    fn member_ids_are_deduplicated() {
        assert_eq!(check_member_ids(1, &[2, 3, 2, 1, 3]).unwrap(), vec![2, 3]);
        assert_eq!(
            check_member_ids(1, &[2, 0]).unwrap_err().field,
            "member_ids[1]"
        );
    }

    #[test]
    fn member_ids_respect_group_limit() {
        let at_limit: Vec<i64> = (2..=MAX_GROUP_MEMBERS as i64).collect();
        assert_eq!(
            check_member_ids(1, &at_limit).unwrap().len(),
            MAX_GROUP_MEMBERS - 1
        );
        let over: Vec<i64> = (2..=MAX_GROUP_MEMBERS as i64 + 1).collect();
        assert!(check_member_ids(1, &over).is_err());
    }

    #[test]
    fn search_query_detects_email() {
        let query = check_search_query(" Bob@Example.test ").unwrap();
        assert_eq!(query.email.as_deref(), Some("bob@example.test"));
        assert_eq!(check_search_query("bo").unwrap().email, None);
        assert!(check_search_query("  ").is_err());
        assert!(check_search_query("a\u{0}b").is_err());
    }
}
