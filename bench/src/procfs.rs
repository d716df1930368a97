//! Memory and CPU time of local processes, from Linux's /proc. Everything
//! here is optional: elsewhere (or for a remote target) it reads `None`.

use std::fs;

/// Clock ticks per second of /proc/*/stat times (USER_HZ).
fn ticks_per_second() -> f64 {
    static HZ: std::sync::OnceLock<f64> = std::sync::OnceLock::new();
    *HZ.get_or_init(|| {
        std::process::Command::new("getconf")
            .arg("CLK_TCK")
            .output()
            .ok()
            .and_then(|o| String::from_utf8(o.stdout).ok())
            .and_then(|s| s.trim().parse::<f64>().ok())
            .filter(|hz| *hz > 0.0)
            .unwrap_or(100.0)
    })
}

/// The fields of /proc/PID/stat after the command name.
fn stat_fields(pid: &str) -> Option<Vec<String>> {
    let text = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may contain spaces and parentheses: split after the last ')'.
    let rest = &text[text.rfind(')')? + 1..];
    Some(rest.split_whitespace().map(str::to_owned).collect())
}

/// Field `n` of /proc/PID/stat as numbered in proc(5) (1-based, pid = 1).
fn field(fields: &[String], n: usize) -> Option<u64> {
    fields.get(n.checked_sub(3)?)?.parse().ok()
}

/// User + system CPU seconds of a process (all its threads); with
/// `children`, also those of its exited and waited-for children.
pub fn cpu_seconds(pid: u32, children: bool) -> Option<f64> {
    let f = stat_fields(&pid.to_string())?;
    let mut ticks = field(&f, 14)? + field(&f, 15)?;
    if children {
        ticks += field(&f, 16)? + field(&f, 17)?;
    }
    Some(ticks as f64 / ticks_per_second())
}

pub fn parent_pid(pid: u32) -> Option<u32> {
    stat_fields(&pid.to_string())
        .and_then(|f| field(&f, 4))
        .map(|p| p as u32)
}

/// CPU seconds of a whole database server: its main process with its
/// exited children, plus every live child (Postgres's backends, walwriter,
/// …; mysqld has threads only, all counted in its own time).
pub fn server_cpu_seconds(main: u32) -> Option<f64> {
    let mut total = cpu_seconds(main, true)?;
    for entry in fs::read_dir("/proc").ok()?.flatten() {
        let name = entry.file_name();
        let Some(pid) = name.to_str().and_then(|n| n.parse::<u32>().ok()) else {
            continue;
        };
        if parent_pid(pid) == Some(main) {
            total += cpu_seconds(pid, false).unwrap_or(0.0);
        }
    }
    Some(total)
}

/// A `VmXXX:` line of /proc/PID/status, in kB.
fn status_kb(pid: u32, key: &str) -> Option<u64> {
    let text = fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    text.lines()
        .find_map(|line| line.strip_prefix(key))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
}

/// Resident memory now.
pub fn rss_kb(pid: u32) -> Option<u64> {
    status_kb(pid, "VmRSS:")
}

/// Peak resident memory over the process's life (high-water mark).
pub fn peak_rss_kb(pid: u32) -> Option<u64> {
    status_kb(pid, "VmHWM:")
}

pub fn self_cpu_seconds() -> Option<f64> {
    cpu_seconds(std::process::id(), false)
}

/// A short description of the machine, for the report.
pub fn machine() -> serde_json::Value {
    let cpuinfo = fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find_map(|l| l.strip_prefix("model name"))
        .map(|rest| rest.trim_start_matches([' ', '\t', ':']).trim().to_owned());
    let memory_mb = fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|t| {
            t.lines()
                .find_map(|l| l.strip_prefix("MemTotal:"))
                .and_then(|r| r.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        })
        .map(|kb| kb / 1024);
    let kernel = fs::read_to_string("/proc/sys/kernel/osrelease")
        .ok()
        .map(|s| s.trim().to_owned());
    serde_json::json!({
        "cpus": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1),
        "cpu_model": model,
        "memory_mb": memory_mb,
        "os": std::env::consts::OS,
        "kernel": kernel,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_this_process() {
        if !std::path::Path::new("/proc/self/stat").exists() {
            return;
        }
        let pid = std::process::id();
        let rss = rss_kb(pid);
        assert!(rss.is_some_and(|kb| kb > 0));
        // Read after the RSS: the peak never decreases, other test threads
        // may have grown the process in between.
        assert!(peak_rss_kb(pid) >= rss);
        assert!(cpu_seconds(pid, false).is_some());
        assert!(parent_pid(pid).is_some());
    }
}
