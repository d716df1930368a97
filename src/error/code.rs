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
    BadRequest = "bad_request", BAD_REQUEST, "the request is malformed";
    InvalidBody = "invalid_body", BAD_REQUEST, "the JSON body does not have the expected shape";
    InvalidJson = "invalid_json", BAD_REQUEST, "the body is not valid JSON";
    JsonTooDeep = "json_too_deep", BAD_REQUEST, "a JSON value nests deeper than `limits.max_json_depth`";
    InvalidGzip = "invalid_gzip", BAD_REQUEST, "the body is marked gzip but is not complete gzip";
    IncompleteBody = "incomplete_body", BAD_REQUEST, "the body ended before its declared length";
    InvalidPath = "invalid_path", BAD_REQUEST, "a path parameter has the wrong form";
    InvalidQuery = "invalid_query", BAD_REQUEST, "the query string has the wrong form";
    Unauthorized = "unauthorized", UNAUTHORIZED, "the request needs credentials";
    Forbidden = "forbidden", FORBIDDEN, "the credentials do not allow this request, or the database refused the write";
    NotFound = "not_found", NOT_FOUND, "no such resource, or the feature is not enabled";
    MethodNotAllowed = "method_not_allowed", METHOD_NOT_ALLOWED, "the path does not take this method";
    RequestTimeout = "request_timeout", REQUEST_TIMEOUT, "the body did not arrive within `server.body_timeout`";
    PayloadTooLarge = "payload_too_large", PAYLOAD_TOO_LARGE, "the body is larger than the limit";
    UnsupportedMediaType = "unsupported_media_type", UNSUPPORTED_MEDIA_TYPE, "the content type or content encoding is not accepted";
    RateLimited = "rate_limited", TOO_MANY_REQUESTS, "over a per-user or per-address rate limit; retry after `Retry-After`";
    Unavailable = "unavailable", SERVICE_UNAVAILABLE, "a dependency (database, storage, identity provider) is unavailable; retry";
    InternalError = "internal_error", INTERNAL_SERVER_ERROR, "an unexpected failure, logged by uplink";

    // Credentials.
    MissingToken = "missing_token", UNAUTHORIZED, "no `Authorization: Bearer` token was sent";
    InvalidToken = "invalid_token", UNAUTHORIZED, "the token is not a valid JWT for uplink";
    ExpiredToken = "expired_token", UNAUTHORIZED, "the token has expired";
    WrongAudience = "wrong_audience", UNAUTHORIZED, "the token's audience is not accepted";
    UnknownKey = "unknown_key", UNAUTHORIZED, "the token's `kid` is not among the known keys";
    InvalidUserId = "invalid_user_id", BAD_REQUEST, "the user id is empty or too long";

    // Admin API.
    MissingAdminKey = "missing_admin_key", UNAUTHORIZED, "the admin API needs `Authorization: Bearer <admin key>`";
    InvalidAdminKey = "invalid_admin_key", UNAUTHORIZED, "the admin key does not match `admin.api_key_sha256`";
    AlreadyReplayed = "already_replayed", CONFLICT, "the dead letter was replayed before";

    // Uploads: the whole request.
    InvalidEnvelope = "invalid_envelope", BAD_REQUEST, "the body or a transaction has a member uplink does not know";
    InvalidValue = "invalid_value", BAD_REQUEST, "a value does not fit its column";
    TooManyEntries = "too_many_entries", BAD_REQUEST, "more entries than `write.max_entries_per_batch`";
    DeadLetterLimit = "dead_letter_limit", TOO_MANY_REQUESTS, "the user's pending dead letters reached `write.dead_letters.max_per_user`";

    // Attachments.
    InvalidId = "invalid_id", BAD_REQUEST, "the attachment id is not valid";
    InvalidKey = "invalid_key", BAD_REQUEST, "the storage key is not valid";
    InvalidFilename = "invalid_filename", BAD_REQUEST, "the file name is not valid";
    InvalidContentType = "invalid_content_type", BAD_REQUEST, "the content type is not valid";
    InvalidSize = "invalid_size", BAD_REQUEST, "the declared size is not valid";
    InvalidChecksum = "invalid_checksum", BAD_REQUEST, "the declared checksum is not valid";
    SizeMismatch = "size_mismatch", BAD_REQUEST, "the stored file's size differs from the declared size";
    ChecksumMismatch = "checksum_mismatch", BAD_REQUEST, "the stored file's checksum differs from the declared one";
    BadDigest = "bad_digest", BAD_REQUEST, "the uploaded bytes do not match their declared checksum";
    NotUploaded = "not_uploaded", CONFLICT, "the attachment's file has not been uploaded yet";
    UploadClosed = "upload_closed", CONFLICT, "the attachment no longer takes an upload";

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

#[cfg(test)]
mod tests {
    use super::ErrorCode;

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
