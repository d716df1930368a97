//! Admin API under `/api/admin/`: dead letters, write conflicts, schema
//! reload. Protected by one key whose SHA-256 is `admin.api_key_sha256`;
//! without it the API does not exist (404). The CLI shares the
//! implementation (`store::dead_letters`, `Writer::replay_dead_letter`).

mod key;
pub mod routes;
pub mod schemas;

pub use key::{Admin, AdminKey};
pub use routes::configure;
