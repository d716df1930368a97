//! Every error code uplink answers with: the one table behind API errors,
//! per-entry outcomes of an upload and `docs/troubleshooting.md` (a test
//! checks that the document names every code here).
//!
//! Add a code here, then use it: the HTTP status of an API error comes from
//! this table, never from the call site.

use actix_web::http::StatusCode;

macro_rules! error_codes {
    ($($(#[$attr:meta])* $variant:ident = $code:literal, $status:ident, $description:literal;)+) => {
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        pub enum ErrorCode {
            $($(#[$attr])* #[doc = $description] $variant,)+
        }

        impl ErrorCode {
            /// Every code, in the order of the table.
            pub const ALL: &[ErrorCode] = &[$(ErrorCode::$variant,)+];

            /// The code as the client sees it (`snake_case`).
            pub fn as_str(self) -> &'static str {
                match self {
                    $(Self::$variant => $code,)+
                }
            }

            /// The status of a response refused with this code. Codes that
            /// only describe one entry of an upload report travel in a `200`
            /// response and say so here.
            pub fn status(self) -> StatusCode {
                match self {
                    $(Self::$variant => StatusCode::$status,)+
                }
            }

            /// One line on what the code means.
            pub fn description(self) -> &'static str {
                match self {
                    $(Self::$variant => $description,)+
                }
            }
        }
    };
}

error_codes! {
    // Any request.
    BadRequest = "bad_request", BAD_REQUEST, "a 400 from the HTTP layer without a more specific code (a malformed request line or header)";
    InvalidBody = "invalid_body", BAD_REQUEST, "the body does not fit the route: a member missing, of the wrong type or unknown, or the body could not be read";
    InvalidJson = "invalid_json", BAD_REQUEST, "the body is not valid JSON";
    JsonTooDeep = "json_too_deep", BAD_REQUEST, "a JSON value nests deeper than `limits.max_json_depth`";
    InvalidGzip = "invalid_gzip", BAD_REQUEST, "the body is sent with `Content-Encoding: gzip` but is not complete gzip";
    IncompleteBody = "incomplete_body", BAD_REQUEST, "an attachment upload's body could not be read, or ended before its `Content-Length`";
    InvalidPath = "invalid_path", BAD_REQUEST, "a path parameter has the wrong form (an id that is not a number or a uuid)";
    InvalidQuery = "invalid_query", BAD_REQUEST, "the query string has the wrong form or a value out of range";
    Unauthorized = "unauthorized", UNAUTHORIZED, "a 401 without a more specific code: the request needs credentials";
    Forbidden = "forbidden", FORBIDDEN, "not allowed: another user's attachment, `attachments.read_policy`, an expired or wrongly signed URL; per entry, an owner that is not the user or the database's permissions or row-level security";
    NotFound = "not_found", NOT_FOUND, "no such route or resource, or the feature (admin API, local storage, metrics) is not enabled";
    MethodNotAllowed = "method_not_allowed", METHOD_NOT_ALLOWED, "the path does not take this method";
    RequestTimeout = "request_timeout", REQUEST_TIMEOUT, "the body did not arrive within `server.body_timeout` (a local attachment upload: `attachments.local.upload_timeout`)";
    PayloadTooLarge = "payload_too_large", PAYLOAD_TOO_LARGE, "the body is larger than `server.max_body_bytes`, or an attachment larger than `attachments.max_size` or its signed size";
    UnsupportedMediaType = "unsupported_media_type", UNSUPPORTED_MEDIA_TYPE, "the body is not JSON, has a content encoding other than gzip, or an attachment's type is not in `attachments.allowed_content_types`";
    RateLimited = "rate_limited", TOO_MANY_REQUESTS, "over a per-user or per-address rate limit; retry after `Retry-After`";
    Unavailable = "unavailable", SERVICE_UNAVAILABLE, "a dependency (database, storage, identity provider) is unavailable or uplink is still starting; retry after `Retry-After`";
    InternalError = "internal_error", INTERNAL_SERVER_ERROR, "an unexpected failure; uplink logs its cause, the response never carries it";

    // Credentials.
    MissingToken = "missing_token", UNAUTHORIZED, "no `Authorization: Bearer` token was sent";
    InvalidToken = "invalid_token", UNAUTHORIZED, "the token or API key is not valid: malformed, too large, wrongly signed, of an algorithm not accepted, or without the claim naming the user";
    ExpiredToken = "expired_token", UNAUTHORIZED, "the token has expired";
    WrongAudience = "wrong_audience", UNAUTHORIZED, "the token's audience is not accepted";
    UnknownKey = "unknown_key", UNAUTHORIZED, "the token is signed with a key uplink does not (or no longer) trust: its `kid` is not among the known keys";
    InvalidUserId = "invalid_user_id", BAD_REQUEST, "the user id is empty, longer than 255 bytes, or has control characters or whitespace at either end";

    // Admin API.
    MissingAdminKey = "missing_admin_key", UNAUTHORIZED, "the admin API needs the admin key in `X-Admin-Key` or `Authorization: Bearer`";
    InvalidAdminKey = "invalid_admin_key", UNAUTHORIZED, "the admin key's SHA-256 is not `admin.api_key_sha256`";
    AlreadyReplayed = "already_replayed", CONFLICT, "the dead letter was replayed before";

    // Uploads: the whole request.
    InvalidEnvelope = "invalid_envelope", BAD_REQUEST, "the upload body's envelope is malformed: no `batch` or `transactions` (or both), an entry without `op`, `type` or `id`, or an unknown member of the body or a transaction";
    InvalidClientId = "invalid_client_id", BAD_REQUEST, "the `client_id` (body or `PowerSync-Client-Id`) is over 256 bytes, or has control characters or whitespace at either end";
    InvalidValue = "invalid_value", BAD_REQUEST, "a value does not fit its column, or the request carries text Postgres cannot store";
    TooManyEntries = "too_many_entries", BAD_REQUEST, "more entries than `write.max_entries_per_batch`";
    DeadLetterLimit = "dead_letter_limit", TOO_MANY_REQUESTS, "a client transaction was rejected while the user's pending dead letters are at `write.dead_letters.max_per_user` or `max_bytes_per_user`; nothing was applied";

    // Attachments.
    InvalidId = "invalid_id", BAD_REQUEST, "the attachment id is not 1 to 128 letters, digits, `-` or `_`";
    InvalidKey = "invalid_key", BAD_REQUEST, "a local storage URL names a key that is not an attachment's";
    InvalidFilename = "invalid_filename", BAD_REQUEST, "the file name is empty";
    InvalidContentType = "invalid_content_type", BAD_REQUEST, "the declared content type is not of the form `type/subtype`";
    InvalidSize = "invalid_size", BAD_REQUEST, "the declared size is out of range";
    InvalidChecksum = "invalid_checksum", BAD_REQUEST, "the declared checksum is not a SHA-256 digest in base64 or hex";
    SizeMismatch = "size_mismatch", BAD_REQUEST, "the uploaded object's size differs from the declared size";
    ChecksumMismatch = "checksum_mismatch", BAD_REQUEST, "the uploaded object's SHA-256 differs from the declared one";
    BadDigest = "bad_digest", BAD_REQUEST, "a local upload's bytes do not match its `x-amz-checksum-sha256` header";
    NotUploaded = "not_uploaded", CONFLICT, "the attachment's upload has not been completed yet";
    AmbiguousAttachment = "ambiguous_attachment", CONFLICT, "several users have an attachment with this id that the caller may read (`attachments.read_policy: authenticated`, or a `read_sql` that does not bind the owner: `$3`, the third `?` on MySQL)";
    UploadClosed = "upload_closed", CONFLICT, "the attachment no longer takes an upload: completed, deleted or abandoned since the URL was issued";
    InvalidPart = "invalid_part", BAD_REQUEST, "a multipart request names a part number outside the upload's parts, asks for more than 100 part URLs at once, or lists the parts of `complete` out of ascending order or twice";
    PartMismatch = "part_mismatch", CONFLICT, "`complete` of a multipart upload lists a part that storage does not hold, with another ETag, or of the wrong size; upload the part again (list the stored parts with `GET /api/attachments/{id}/multipart`)";

    // Uploads: one client transaction of the report (in a 200 response). The
    // database's refusals first.
    NotNullViolation = "not_null_violation", OK, "a column that needs a value got none";
    ForeignKeyViolation = "foreign_key_violation", OK, "a referenced row does not exist";
    UniqueViolation = "unique_violation", OK, "another row already has the value of a unique column";
    CheckViolation = "check_violation", OK, "a value breaks a check constraint";
    ExclusionViolation = "exclusion_violation", OK, "the row overlaps another under an exclusion constraint";
    ConstraintViolation = "constraint_violation", OK, "the row breaks a constraint of the table";
    SchemaMismatch = "schema_mismatch", CONFLICT, "the write does not fit the table's current schema";
    RejectedByDatabase = "rejected_by_database", OK, "a trigger or rule of the database refused the write";
    DatabaseError = "database_error", OK, "the database refused the write with an error uplink has no specific code for; the message carries the database's own text";
    // The write path's own per-entry codes.
    Duplicate = "duplicate", OK, "the entry's op_id is at or below the client's progress: it was applied before";
    TransactionRejected = "transaction_rejected", OK, "another entry of the same client transaction was rejected";
    UnknownField = "unknown_field", OK, "the entry has a member uplink does not know; it is not applied without it";
    UnknownTable = "unknown_table", OK, "the table is not in `write.tables`";
    UnknownColumn = "unknown_column", OK, "the column is not writable by clients";
    InvalidOpId = "invalid_op_id", OK, "the op_id is not a positive integer";
    OpIdNotIncreasing = "op_id_not_increasing", OK, "the op_id does not increase within the request";
    ReadOnlyColumn = "read_only_column", OK, "read-only columns were dropped; the rest of the entry was applied";
    InsertOnly = "insert_only", OK, "the table accepts only PUTs of new rows";
    AlreadyExists = "already_exists", OK, "a PUT on an insert-only table found the row existing; it is kept";
    ClientIdRequired = "client_id_required", OK, "delta columns need a client id to apply exactly once";
    InvalidTransition = "invalid_transition", OK, "the state machine column may not change to (or start as) this state";
    RowLocked = "row_locked", OK, "the row's state (`locked_when`) accepts no change";
    StaleVersion = "stale_version", OK, "the row's version differs from the one the client saw";
    VersionRequired = "version_required", OK, "the update does not say which version of the row the client saw";
    StaleUpdate = "stale_update", OK, "the server's row was modified after the client's write (timestamp)";
    TimestampRequired = "timestamp_required", OK, "the update does not carry a time uplink can compare with the row's (timestamp strategy)";
    StaleField = "stale_field", OK, "newer server values of some fields were kept (field timestamps)";
}

impl std::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl serde::Serialize for ErrorCode {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

/// The OpenAPI schema of a code: a string, not an enum, since a status the
/// framework answers without a code of ours reads `error` and clients must
/// take new codes in their stride. The description lists every code.
impl utoipa::PartialSchema for ErrorCode {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        let codes: Vec<String> = Self::ALL.iter().map(|code| format!("`{code}`")).collect();
        utoipa::openapi::schema::ObjectBuilder::new()
            .schema_type(utoipa::openapi::schema::Type::String)
            .description(Some(format!(
                "Stable snake_case code; docs/troubleshooting.md explains each: {}.",
                codes.join(", ")
            )))
            .examples([serde_json::json!("invalid_envelope")])
            .into()
    }
}

impl utoipa::ToSchema for ErrorCode {}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::ErrorCode;

    const TROUBLESHOOTING: &str = include_str!("../../docs/troubleshooting.md");

    /// A backticked span as a code: `409 upload_closed` names
    /// `upload_closed`; anything but a snake_case word (a config key such
    /// as `write.tables`, a header, a command) names none.
    fn as_code(span: &str) -> Option<&str> {
        let word = match span.split_once(' ') {
            Some((status, rest))
                if status.len() == 3 && status.bytes().all(|b| b.is_ascii_digit()) =>
            {
                rest
            }
            _ => span,
        };
        let snake = !word.is_empty()
            && !word.starts_with('_')
            && !word.ends_with('_')
            && word.bytes().all(|b| b.is_ascii_lowercase() || b == b'_');
        snake.then_some(word)
    }

    fn backticked(text: &str) -> impl Iterator<Item = &str> {
        text.split('`').skip(1).step_by(2)
    }

    /// The first cell of every table row, header and separator rows left out.
    fn first_cells(text: &str) -> Vec<&str> {
        let lines: Vec<&str> = text.lines().collect();
        let mut cells = Vec::new();
        for (at, line) in lines.iter().enumerate() {
            let is_row = line.starts_with('|');
            let is_separator = line.starts_with("|---");
            let is_header = lines
                .get(at + 1)
                .is_some_and(|next| next.starts_with("|---"));
            if is_row && !is_separator && !is_header {
                cells.push(line.split('|').nth(1).unwrap_or_default());
            }
        }
        cells
    }

    #[test]
    fn troubleshooting_names_every_code() {
        let named: BTreeSet<&str> = backticked(TROUBLESHOOTING).filter_map(as_code).collect();
        let missing: Vec<&str> = ErrorCode::ALL
            .iter()
            .map(|code| code.as_str())
            .filter(|code| !named.contains(code))
            .collect();
        assert!(
            missing.is_empty(),
            "docs/troubleshooting.md does not explain {missing:?}"
        );
    }

    #[test]
    fn troubleshooting_names_no_code_that_does_not_exist() {
        let known: BTreeSet<&str> = ErrorCode::ALL.iter().map(|code| code.as_str()).collect();
        let unknown: BTreeSet<&str> = first_cells(TROUBLESHOOTING)
            .into_iter()
            .flat_map(backticked)
            .filter_map(as_code)
            .filter(|code| !known.contains(code))
            .collect();
        assert!(
            unknown.is_empty(),
            "docs/troubleshooting.md names codes that are not in the table: {unknown:?}"
        );
    }

    #[test]
    fn codes_are_unique_snake_case() {
        let mut seen = std::collections::HashSet::new();
        for code in ErrorCode::ALL {
            let text = code.as_str();
            assert!(seen.insert(text), "{text} twice");
            assert!(
                text.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'),
                "{text} is not snake_case"
            );
        }
    }
}
