//! What the benchmark reads from the operating system: peak RSS and CPU time of this process
//! (Linux `/proc` through the `procfs` crate; `None` elsewhere or when unreadable) and the UTC
//! date (`chrono`).

/// Process resident high-water mark (`VmHWM`), MiB.
pub fn peak_rss_mib() -> Option<f64> {
    #[cfg(target_os = "linux")]
    {
        let kib = procfs::process::Process::myself()
            .ok()?
            .status()
            .ok()?
            .vmhwm?;
        Some(kib as f64 / 1024.0)
    }
    #[cfg(not(target_os = "linux"))]
    {
        None
    }
}

/// CPU time of this process (user + system, all threads), seconds.
pub fn process_cpu_s() -> Option<f64> {
    #[cfg(target_os = "linux")]
    {
        let stat = procfs::process::Process::myself().ok()?.stat().ok()?;
        Some((stat.utime + stat.stime) as f64 / procfs::ticks_per_second() as f64)
    }
    #[cfg(not(target_os = "linux"))]
    {
        None
    }
}

/// CPU seconds since `start` (a [`process_cpu_s`] reading).
pub fn cpu_delta(start: Option<f64>) -> Option<f64> {
    Some(process_cpu_s()? - start?)
}

/// Current UTC time as `YYYY-MM-DDTHH:MM:SSZ`.
pub fn utc_now() -> String {
    chrono::Utc::now().format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;

    #[test]
    fn utc_date_is_well_formed() {
        let d = utc_now();
        assert_eq!(d.len(), 20, "{d}");
        assert!(d.starts_with("20") && d.ends_with('Z'), "{d}");
        assert!(chrono::DateTime::parse_from_rfc3339(&d).is_ok(), "{d}");
    }

    #[test]
    fn peak_rss_is_read_on_linux() {
        if cfg!(target_os = "linux") {
            let p = peak_rss_mib().expect("VmHWM in /proc/self/status");
            assert!(p > 1.0 && p < 1.0e6, "{p}");
        }
    }

    #[test]
    fn cpu_time_advances_with_work() {
        if !cfg!(target_os = "linux") {
            eprintln!("skipped: /proc/self/stat is Linux-only");
            return;
        }
        let c0 = process_cpu_s().expect("cpu time");
        let t = Instant::now();
        let mut x = 0u64;
        while t.elapsed().as_secs_f64() < 0.05 {
            x = x.wrapping_mul(6364136223846793005).wrapping_add(1);
        }
        std::hint::black_box(x);
        let c1 = process_cpu_s().expect("cpu time");
        assert!(c1 >= c0 && c1 - c0 < 10.0, "{c0} {c1}");
    }
}
