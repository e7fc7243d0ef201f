//! Service logs in files (`--log-dir`): one file a day,
//! `scopegate.YYYY-MM-DD.log`, deleted once older than the retention
//! (`--log-retention-days`, default 7) by the date in its name. The outbound
//! log is not a service log: it lives in the registry, governed by the
//! retention of terminated firms.

use std::path::Path;
use tracing_appender::rolling::{RollingFileAppender, Rotation};

const PREFIX: &str = "scopegate";
const SUFFIX: &str = "log";

/// A writer that appends to today's file in `dir` (created when missing).
pub fn daily_writer(dir: &Path) -> Result<RollingFileAppender, String> {
    std::fs::create_dir_all(dir)
        .map_err(|e| format!("cannot create the log folder {}: {e}", dir.display()))?;
    RollingFileAppender::builder()
        .rotation(Rotation::DAILY)
        .filename_prefix(PREFIX)
        .filename_suffix(SUFFIX)
        .build(dir)
        .map_err(|e| format!("cannot write logs to {}: {e}", dir.display()))
}

/// The day a service-log file's name says, if it is one.
fn day_of(name: &str) -> Option<chrono::NaiveDate> {
    let date = name
        .strip_prefix(PREFIX)?
        .strip_prefix('.')?
        .strip_suffix(SUFFIX)?
        .strip_suffix('.')?;
    chrono::NaiveDate::parse_from_str(date, "%Y-%m-%d").ok()
}

/// Deletes the service-log files in `dir` from before the last `keep_days`
/// days (today counts as one); returns how many. Other files are left alone.
pub fn prune(dir: &Path, keep_days: u64, today: chrono::NaiveDate) -> std::io::Result<usize> {
    let oldest_kept = today - chrono::Days::new(keep_days.saturating_sub(1));
    let mut deleted = 0;
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name();
        let Some(day) = name.to_str().and_then(day_of) else {
            continue;
        };
        if day < oldest_kept {
            std::fs::remove_file(entry.path())?;
            deleted += 1;
        }
    }
    Ok(deleted)
}

/// Prunes `dir` now and then every hour, for as long as the gateway runs.
pub async fn prune_periodically(dir: std::path::PathBuf, keep_days: u64) {
    let mut tick = tokio::time::interval(std::time::Duration::from_secs(3600));
    loop {
        tick.tick().await;
        let today = chrono::Utc::now().date_naive();
        let target = dir.clone();
        match tokio::task::spawn_blocking(move || prune(&target, keep_days, today)).await {
            Ok(Ok(0)) => {}
            Ok(Ok(n)) => {
                tracing::info!(deleted = n, "service logs older than the retention deleted")
            }
            Ok(Err(e)) => tracing::warn!(error = %e, "could not prune the service logs"),
            Err(e) => tracing::warn!(error = %e, "the service-log pruning task failed"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_older_than_the_retention_are_deleted_by_the_date_in_their_name() {
        let dir = tempfile::tempdir().unwrap();
        let today = chrono::NaiveDate::from_ymd_opt(2026, 11, 24).unwrap();
        for day in 0..10u64 {
            let date = today - chrono::Days::new(day);
            std::fs::write(dir.path().join(format!("scopegate.{date}.log")), "line\n").unwrap();
        }
        std::fs::write(dir.path().join("notes.txt"), "kept").unwrap();
        std::fs::write(dir.path().join("scopegate.not-a-date.log"), "kept").unwrap();
        assert_eq!(prune(dir.path(), 7, today).unwrap(), 3);
        let mut left: Vec<String> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        left.sort();
        assert_eq!(left.len(), 9, "{left:?}");
        assert!(
            left.contains(&"scopegate.2026-11-18.log".to_string()),
            "7 days kept: {left:?}"
        );
        assert!(
            !left.contains(&"scopegate.2026-11-17.log".to_string()),
            "{left:?}"
        );
        assert_eq!(prune(dir.path(), 7, today).unwrap(), 0);
    }
}
