//! uplink's own tables, one file each: plain values in, `DbFailure` out.

pub mod attachments;
