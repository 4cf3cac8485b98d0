//! Readings from /proc (CPU time, resident memory, machine load) and the
//! open-file limit.

use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};
use serde::Serialize;

/// Clock ticks per second in /proc/PID/stat. Linux fixes this `USER_HZ` at
/// 100 on x86 and ARM, whatever the kernel's internal tick rate.
const USER_HZ: f64 = 100.0;

/// Reads a process's resident memory (`VmRSS`) in bytes from /proc/PID/status.
pub fn resident_bytes(pid: u32) -> anyhow::Result<u64> {
    let path = format!("/proc/{pid}/status");
    let status = std::fs::read_to_string(&path)
        .with_context(|| format!("failed to read {path}; is {pid} the server's PID?"))?;
    let Some(line) = status.lines().find(|line| line.starts_with("VmRSS:")) else {
        bail!("{path} has no VmRSS line");
    };
    let kib: u64 = line
        .split_whitespace()
        .nth(1)
        .and_then(|value| value.parse().ok())
        .with_context(|| format!("invalid VmRSS line in {path}: {line:?}"))?;
    Ok(kib * 1024)
}

/// Reads user plus system CPU time of a process (`self` for this one).
fn cpu_time(pid: &str) -> Option<Duration> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name in field 2 may contain spaces, so count fields after its `)`.
    let after_name = &stat[stat.rfind(')')? + 1..];
    let mut fields = after_name.split_whitespace();
    // Fields 14 and 15 of the file are the 12th and 13th after the name.
    let user: f64 = fields.nth(11)?.parse().ok()?;
    let system: f64 = fields.next()?.parse().ok()?;
    Some(Duration::from_secs_f64((user + system) / USER_HZ))
}

/// Reads /proc/loadavg's one-minute average, a sign of other work on the machine.
pub fn load_average() -> Option<f64> {
    std::fs::read_to_string("/proc/loadavg")
        .ok()?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// Reads the kernel's TCP buffer memory (`TCP: ... mem N`, in pages) from
/// /proc/net/sockstat, in bytes. It covers every TCP socket on the machine,
/// the client ends included, and is not part of any process's VmRSS.
pub fn kernel_tcp_bytes() -> Option<u64> {
    let sockstat = std::fs::read_to_string("/proc/net/sockstat").ok()?;
    let line = sockstat.lines().find(|line| line.starts_with("TCP:"))?;
    let mut words = line.split_whitespace();
    words.find(|word| *word == "mem")?;
    let pages: u64 = words.next()?.parse().ok()?;
    Some(pages * 4096)
}

/// CPU use of this tool and of the server over a phase, in cores busy.
#[derive(Clone, Debug, Serialize)]
pub struct CpuUse {
    pub tool_cores: Option<f64>,
    pub server_cores: Option<f64>,
    pub load_average_1m: Option<f64>,
}

/// Starting point of a [`CpuUse`] measurement.
pub struct CpuMeter {
    server_pid: Option<u32>,
    started: Instant,
    tool: Option<Duration>,
    server: Option<Duration>,
}

impl CpuMeter {
    pub fn start(server_pid: Option<u32>) -> Self {
        Self {
            server_pid,
            started: Instant::now(),
            tool: cpu_time("self"),
            server: server_pid.and_then(|pid| cpu_time(&pid.to_string())),
        }
    }

    pub fn stop(&self) -> CpuUse {
        let wall = self.started.elapsed().as_secs_f64();
        let cores = |before: Option<Duration>, after: Option<Duration>| {
            Some(after?.saturating_sub(before?).as_secs_f64() / wall)
        };
        let server_now = self.server_pid.and_then(|pid| cpu_time(&pid.to_string()));
        CpuUse {
            tool_cores: cores(self.tool, cpu_time("self")),
            server_cores: cores(self.server, server_now),
            load_average_1m: load_average(),
        }
    }
}

/// Raises this process's open-file limit to at least `needed`: the soft limit
/// goes up to the hard limit, and past it when the process may raise the hard
/// limit (root). Fails with the command to run when neither is enough.
pub fn raise_open_file_limit(needed: u64) -> anyhow::Result<u64> {
    let (soft, hard) = rlimit::getrlimit(rlimit::Resource::NOFILE)?;
    if needed > hard && rlimit::setrlimit(rlimit::Resource::NOFILE, needed, needed).is_ok() {
        return Ok(needed);
    }
    if soft < hard {
        rlimit::setrlimit(rlimit::Resource::NOFILE, hard, hard)?;
    }
    if hard < needed {
        bail!(
            "this run needs about {needed} open files but the hard limit is {hard}; \
             raise it with `ulimit -n {needed}` (as root) in the shell that starts confab-load, \
             or lower the socket count"
        );
    }
    Ok(hard.max(soft))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn own_memory_and_cpu_readable() {
        assert!(resident_bytes(std::process::id()).unwrap() > 0);
        assert!(cpu_time("self").is_some());
    }

    #[test]
    fn missing_process_reported() {
        let error = resident_bytes(u32::MAX).unwrap_err().to_string();
        assert!(error.contains("failed to read"), "{error}");
    }
}
