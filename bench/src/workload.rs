//! The workloads a run can measure.

/// What one request of a workload carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Workload {
    /// Batches of PUTs of new todos.
    Put100,
    /// 60% PUT new / 30% PATCH / 10% DELETE of the client's earlier rows,
    /// several client transactions per batch, with a client id.
    Mixed,
    /// `put100` on a todos table whose owner is `created_by`.
    #[value(name = "put100-owner")]
    #[serde(rename = "put100-owner")]
    Put100Owner,
    /// `mixed` on a todos table with an owner (`created_by`) and a version
    /// column: each PATCH sends the version the client saw.
    #[value(name = "mixed-policies")]
    #[serde(rename = "mixed-policies")]
    MixedPolicies,
    /// `GET /api/auth/token` (dev identity).
    Tokens,
    /// `POST /api/attachments/upload-url`.
    Presign,
}

impl Workload {
    pub fn name(self) -> &'static str {
        match self {
            Self::Put100 => "put100",
            Self::Mixed => "mixed",
            Self::Put100Owner => "put100-owner",
            Self::MixedPolicies => "mixed-policies",
            Self::Tokens => "tokens",
            Self::Presign => "presign",
        }
    }

    pub fn writes(self) -> bool {
        matches!(
            self,
            Self::Put100 | Self::Mixed | Self::Put100Owner | Self::MixedPolicies
        )
    }

    /// Whether batches mix PUT, PATCH and DELETE (else: PUTs only).
    pub fn mixed(self) -> bool {
        matches!(self, Self::Mixed | Self::MixedPolicies)
    }

    /// The workload without policies that this one is compared with.
    pub fn plain(self) -> Option<Self> {
        match self {
            Self::Put100Owner => Some(Self::Put100),
            Self::MixedPolicies => Some(Self::Mixed),
            _ => None,
        }
    }
}
