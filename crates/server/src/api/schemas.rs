//! JSON Schemas of the string fields whose grammar a validator checks, so
//! the published document accepts what the server accepts. Each names the
//! validator it mirrors; regex engines' `\s` differs from Rust's
//! `is_whitespace`, so the classes spell the characters out.

use utoipa::openapi::schema::{ObjectBuilder, SchemaType, Type};
use utoipa::openapi::{RefOr, Schema};

/// One character that is neither a control (`char::is_control`) nor
/// whitespace (`char::is_whitespace`).
const VISIBLE: &str =
    "[^\\u0000-\\u0020\\u007F-\\u00A0\\u1680\\u2000-\\u200A\\u2028\\u2029\\u202F\\u205F\\u3000]";
/// Any character but a control.
const NOT_CONTROL: &str = "[^\\u0000-\\u001F\\u007F-\\u009F]";
/// One character that is not whitespace (`char::is_whitespace`).
const NOT_WHITESPACE: &str =
    "[^\\u0009-\\u000D\\u0020\\u0085\\u00A0\\u1680\\u2000-\\u200A\\u2028\\u2029\\u202F\\u205F\\u3000]";

fn string(nullable: bool, description: &str) -> ObjectBuilder {
    let ty = if nullable {
        SchemaType::from_iter([Type::String, Type::Null])
    } else {
        SchemaType::from(Type::String)
    };
    ObjectBuilder::new()
        .schema_type(ty)
        .description(Some(description))
}

/// Text without control characters that is not only whitespace.
fn text(nullable: bool, max: usize, description: &str) -> RefOr<Schema> {
    string(nullable, description)
        .min_length(Some(1))
        .max_length(Some(max))
        .pattern(Some(format!("^{NOT_CONTROL}*{VISIBLE}{NOT_CONTROL}*$")))
        .into()
}

/// `session::validate_display_name`.
pub fn display_name() -> RefOr<Schema> {
    text(
        false,
        128,
        "1-128 characters, no control characters, not only whitespace.",
    )
}

/// `session::validate_display_name`, or null to keep the current one.
pub fn display_name_or_null() -> RefOr<Schema> {
    text(
        true,
        128,
        "1-128 characters, no control characters, not only whitespace; null keeps it.",
    )
}

/// `credentials::validate_label`.
pub fn label() -> RefOr<Schema> {
    text(
        false,
        64,
        "1-64 characters, no control characters, not only whitespace.",
    )
}

/// `session::validate_new_user_id` (which also refuses `me`).
pub fn user_id() -> RefOr<Schema> {
    string(false, "`[a-z][a-z0-9_-]{0,31}`; `me` is reserved.")
        .pattern(Some("^[a-z][a-z0-9_-]{0,31}$"))
        .into()
}

/// `names::validate_client_name`.
pub fn client_name() -> RefOr<Schema> {
    string(
        false,
        "1-63 letters, digits, `.`, `_` or `-`, starting with a letter or digit.",
    )
    .pattern(Some("^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$"))
    .into()
}

fn password_with(nullable: bool, description: &str) -> RefOr<Schema> {
    string(nullable, description)
        .min_length(Some(crate::passwords::MIN_LEN))
        .pattern(Some(NOT_WHITESPACE))
        .into()
}

/// `passwords::check_policy`, but for its byte limit, which a schema
/// cannot count.
pub fn password() -> RefOr<Schema> {
    password_with(
        false,
        "At least 12 characters, not only whitespace, at most 1024 bytes.",
    )
}

/// `passwords::check_policy`, or null (absent) for a generated one.
pub fn password_or_null() -> RefOr<Schema> {
    password_with(
        true,
        "At least 12 characters, not only whitespace, at most 1024 bytes; null or absent to generate a temporary one.",
    )
}

/// `names::validate_rule_name`; null for none.
pub fn rule_name_or_null() -> RefOr<Schema> {
    string(
        true,
        "1-63 letters, digits, `.`, `_` or `-`, starting with a letter or digit, unique on the client; null for none.",
    )
    .pattern(Some("^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$"))
    .into()
}

/// `names::validate_rule_note`, but for its byte limit, which a schema
/// cannot count; empty or null for none.
pub fn rule_note_or_null() -> RefOr<Schema> {
    string(
        true,
        "Free text without control characters, at most 1024 bytes; empty or null for none.",
    )
    .max_length(Some(portunus_domain::names::RULE_NOTE_MAX))
    .pattern(Some(format!("^{NOT_CONTROL}*$")))
    .into()
}
