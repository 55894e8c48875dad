//! Seconds since the Unix epoch.

use serde::{Deserialize, Serialize};

/// Seconds since the Unix epoch; the unit of every expiry (and of the DynamoDB TTL attribute).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Timestamp(pub i64);

impl Timestamp {
    pub fn plus_secs(self, secs: i64) -> Self {
        Self(self.0.saturating_add(secs))
    }

    /// The day in UTC, as `YYYY-MM-DD`.
    pub fn date(self) -> String {
        let rfc3339 = self.to_rfc3339();
        rfc3339.split_once('T').map_or(rfc3339.clone(), |(day, _)| day.to_owned())
    }

    /// RFC 3339, for people and logs.
    pub fn to_rfc3339(self) -> String {
        time::OffsetDateTime::from_unix_timestamp(self.0)
            .ok()
            .and_then(|t| t.format(&time::format_description::well_known::Rfc3339).ok())
            .unwrap_or_else(|| self.0.to_string())
    }
}
