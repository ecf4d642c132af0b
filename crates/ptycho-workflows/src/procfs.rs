//! Numbers from Linux `/proc` files (`None` where `/proc` is unavailable).

/// The value of the `key` line (e.g. `"MemAvailable:"`) of a `/proc` file such as
/// `/proc/meminfo` or `/proc/self/status`, in KiB.
pub(crate) fn kib(path: &str, key: &str) -> Option<u64> {
    let text = std::fs::read_to_string(path).ok()?;
    let line = text.lines().find(|l| l.starts_with(key))?;
    line.split_whitespace().nth(1)?.parse().ok()
}
