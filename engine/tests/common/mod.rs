//! Helpers shared by the engine's integration tests (not a test target itself).

use std::path::Path;

/// Writes `batches[first..]` as one JSON file each into `dir/in`, oldest first (modification
/// times one second apart), so a file source with `maxFilesPerTrigger = 1` reads one per
/// trigger. Rows are (event time in seconds, word); with `with_v` each row also carries
/// `v` = its event time in seconds.
pub fn write_event_files(dir: &Path, first: usize, batches: &[&[(i64, &str)]], with_v: bool) {
    let input = dir.join("in");
    std::fs::create_dir_all(&input).unwrap();
    for (i, rows) in batches.iter().enumerate().skip(first) {
        let path = input.join(format!("f{i:03}.json"));
        let text: String = rows
            .iter()
            .map(|(ts, w)| {
                let v = if with_v {
                    format!(",\"v\":{ts}")
                } else {
                    String::new()
                };
                format!(
                    "{{\"ts\":\"1970-01-01T00:{:02}:{:02}Z\",\"word\":\"{w}\"{v}}}\n",
                    ts / 60,
                    ts % 60
                )
            })
            .collect();
        std::fs::write(&path, text).unwrap();
        let mtime = std::time::UNIX_EPOCH + std::time::Duration::from_secs(1_000 + i as u64);
        std::fs::File::options()
            .write(true)
            .open(&path)
            .unwrap()
            .set_modified(mtime)
            .unwrap();
    }
}
