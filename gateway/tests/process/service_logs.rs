//! `serve --log-dir`: service logs go to a file a day in that folder, not to
//! stderr, and files older than the retention are deleted (at start, then
//! hourly), while anything else in the folder is left alone.

use crate::common::*;

#[test]
fn serve_logs_to_daily_files_and_deletes_the_old_ones() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let creds = accounting_vendor(d, "alpha-law");
    let logs = d.join("logs");
    std::fs::create_dir_all(&logs).unwrap();
    let today = chrono::Utc::now().date_naive();
    for days_ago in 1..=9u64 {
        let day = today - chrono::Days::new(days_ago);
        std::fs::write(logs.join(format!("scopegate.{day}.log")), "an old line\n").unwrap();
    }
    std::fs::write(logs.join("README"), "not a log").unwrap();
    let key = master_key();
    let server = Server::start(
        d,
        &[
            ("SCOPEGATE_MASTER_KEY", &key),
            ("SCOPEGATE_LOG_DIR", logs.to_str().unwrap()),
            ("SCOPEGATE_LOG_RETENTION_DAYS", "7"),
        ],
        None,
    );
    let token = vendor_token(&server.base, &creds);
    let (status, _) = curl_get(
        &format!("{}/v1/transactions?limit=1", server.base),
        &[&format!("Authorization: Bearer {token}")],
    );
    assert_eq!(status, 200);
    // The pruning runs at start; give it a moment.
    let mut names = Vec::new();
    for _ in 0..100 {
        names = std::fs::read_dir(&logs)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect::<Vec<_>>();
        if names.len() == 8 {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert!(server.terminate().success());
    names.sort();
    let oldest_kept = format!("scopegate.{}.log", today - chrono::Days::new(6));
    let first_gone = format!("scopegate.{}.log", today - chrono::Days::new(7));
    assert!(names.contains(&oldest_kept), "{names:?}");
    assert!(!names.contains(&first_gone), "{names:?}");
    assert!(names.contains(&"README".to_string()), "{names:?}");
    assert_eq!(names.len(), 8, "README, 6 kept days and today's: {names:?}");
    let todays = std::fs::read_to_string(logs.join(format!("scopegate.{today}.log"))).unwrap();
    assert!(todays.contains("scopegate listening"), "{todays}");
    assert!(!todays.contains(&token), "no token in the service log");
}
