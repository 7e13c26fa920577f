//! Where a bench's time went, from Linux's `/proc`: the CPU seconds of one process, of a
//! process with its children (a PostgreSQL postmaster and its backends), of the whole
//! machine (busy, idle, waiting on I/O), and the cache flushes a disk completed (each durable
//! commit of SQLite or PostgreSQL ends in one).
//!
//! Every reading is a cumulative counter: take one before and one after, and subtract.
//! Process times come in clock ticks (`getconf CLK_TCK`, 100 on Linux), so they are exact to
//! 10 ms: read them over seconds, not milliseconds.

use std::path::Path;
use std::process::Command;

/// Clock ticks per second of `/proc`'s times (`getconf CLK_TCK`; 100 if it cannot be asked).
pub fn clock_ticks() -> f64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| {
            String::from_utf8_lossy(&o.stdout)
                .trim()
                .parse::<f64>()
                .ok()
        })
        .filter(|&t| t > 0.0)
        .unwrap_or(100.0)
}

/// The times of one process (all its threads) from `/proc/PID/stat`, in seconds.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ProcessTimes {
    /// Its command name (at most 15 bytes, as the kernel keeps it).
    pub command: String,
    /// Its parent's process id.
    pub parent: u32,
    /// CPU in user mode.
    pub user: f64,
    /// CPU in the kernel on its behalf.
    pub system: f64,
    /// CPU of its children that have exited and that it has waited for (user + kernel).
    pub reaped_children: f64,
}

impl ProcessTimes {
    /// The times of process `pid` (`None` if it is gone), with `ticks` clock ticks a second.
    pub fn read(pid: u32, ticks: f64) -> Option<Self> {
        Self::parse(
            &std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?,
            ticks,
        )
    }

    /// The times of this process.
    pub fn own(ticks: f64) -> Option<Self> {
        Self::parse(&std::fs::read_to_string("/proc/self/stat").ok()?, ticks)
    }

    /// Parses a `/proc/PID/stat` line: the fields after the command name (which may hold
    /// spaces and parentheses, so the last `)` ends it) are state, parent, ..., utime (the
    /// 12th), stime, cutime, cstime.
    pub fn parse(stat: &str, ticks: f64) -> Option<Self> {
        let (head, rest) = stat.rsplit_once(')')?;
        let (_, command) = head.split_once('(')?;
        let fields: Vec<&str> = rest.split_whitespace().collect();
        let number = |i: usize| fields.get(i).and_then(|f| f.parse::<u64>().ok());
        let seconds = |i: usize| number(i).map(|t| t as f64 / ticks);
        Some(ProcessTimes {
            command: command.to_string(),
            parent: u32::try_from(number(1)?).ok()?,
            user: seconds(11)?,
            system: seconds(12)?,
            reaped_children: seconds(13)? + seconds(14)?,
        })
    }

    /// Its own CPU: user + kernel.
    pub fn cpu(&self) -> f64 {
        self.user + self.system
    }
}

/// CPU seconds of process `pid` itself, all its threads (`None` if it is gone).
pub fn process_cpu(pid: u32, ticks: f64) -> Option<f64> {
    ProcessTimes::read(pid, ticks).map(|t| t.cpu())
}

/// Every process in `/proc` (kernel threads too) and its times.
pub fn processes(ticks: f64) -> Vec<(u32, ProcessTimes)> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(Result::ok)
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter_map(|pid| Some((pid, ProcessTimes::read(pid, ticks)?)))
        .collect()
}

/// The live children of `pid`: every process in `/proc` whose parent it is.
pub fn children_of(pid: u32, ticks: f64) -> Vec<(u32, ProcessTimes)> {
    let mut all = processes(ticks);
    all.retain(|(_, t)| t.parent == pid);
    all
}

/// CPU seconds of process `pid`, of the children it has reaped, and of its live children
/// (one level down: a PostgreSQL postmaster forks every backend and background worker
/// itself). A child that exits between two readings moves from the live sum to the reaped
/// one once its parent waits for it, so the difference of two readings counts it once.
pub fn tree_cpu(pid: u32, ticks: f64) -> Option<f64> {
    let parent = ProcessTimes::read(pid, ticks)?;
    let live: f64 = children_of(pid, ticks).iter().map(|(_, t)| t.cpu()).sum();
    Some(parent.cpu() + parent.reaped_children + live)
}

/// The whole machine's CPU time from `/proc/stat`, summed over every core, in seconds.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct MachineCpu {
    /// Busy: user, nice, system, interrupts, soft interrupts, steal.
    pub busy: f64,
    /// Idle, not waiting on I/O.
    pub idle: f64,
    /// Idle while some I/O this CPU issued was outstanding.
    pub iowait: f64,
}

impl MachineCpu {
    /// The counters now (`None` where there is no readable `/proc/stat`).
    pub fn read(ticks: f64) -> Option<Self> {
        Self::parse(&std::fs::read_to_string("/proc/stat").ok()?, ticks)
    }

    /// Parses the first (`cpu`) line of `/proc/stat`.
    pub fn parse(stat: &str, ticks: f64) -> Option<Self> {
        let line = stat.lines().find(|l| l.starts_with("cpu "))?;
        let v: Vec<f64> = line
            .split_whitespace()
            .skip(1)
            .filter_map(|f| f.parse::<u64>().ok())
            .map(|t| t as f64 / ticks)
            .collect();
        let at = |i: usize| v.get(i).copied().unwrap_or(0.0);
        // user nice system idle iowait irq softirq steal (guest time is inside user).
        Some(MachineCpu {
            busy: at(0) + at(1) + at(2) + at(5) + at(6) + at(7),
            idle: at(3),
            iowait: at(4),
        })
    }

    /// What was spent between `before` and this reading.
    pub fn since(&self, before: &MachineCpu) -> MachineCpu {
        MachineCpu {
            busy: self.busy - before.busy,
            idle: self.idle - before.idle,
            iowait: self.iowait - before.iowait,
        }
    }
}

/// Cache flushes completed by one disk (`/proc/diskstats`, fields 16 and 17).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DiskFlushes {
    /// The disk's name (`vda`).
    pub device: String,
    /// Flush requests completed.
    pub completed: u64,
    /// Milliseconds spent on them (summed over requests, which may overlap).
    pub millis: u64,
}

impl DiskFlushes {
    /// The counters of the disk that holds `path`: the `/proc/diskstats` line of the major and
    /// minor number of its file system's device. `None` when there is no such line (a file
    /// system on no block device, an overlay) or the kernel counts no flushes (before 5.5).
    pub fn of_path(path: &Path) -> Option<Self> {
        use std::os::unix::fs::MetadataExt as _;
        let dev = std::fs::metadata(path).ok()?.dev();
        let major = ((dev >> 8) & 0xfff) | ((dev >> 32) & !0xfff);
        let minor = (dev & 0xff) | ((dev >> 12) & !0xff);
        Self::parse(
            &std::fs::read_to_string("/proc/diskstats").ok()?,
            major,
            minor,
        )
    }

    /// The flush counters of device `major:minor` in a `/proc/diskstats` text.
    pub fn parse(diskstats: &str, major: u64, minor: u64) -> Option<Self> {
        diskstats.lines().find_map(|line| {
            let f: Vec<&str> = line.split_whitespace().collect();
            let number = |i: usize| f.get(i).and_then(|x| x.parse::<u64>().ok());
            if number(0)? != major || number(1)? != minor {
                return None;
            }
            Some(DiskFlushes {
                device: (*f.get(2)?).to_string(),
                completed: number(18)?,
                millis: number(19)?,
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stat_line_with_a_strange_command_name_parses() {
        let line = "4242 (post gres: zt (x)) S 17 4242 4242 0 -1 4194560 120 0 0 0 \
                    250 75 30 20 20 0 1 0 100 1000 10";
        let t = ProcessTimes::parse(line, 100.0);
        assert_eq!(
            t,
            Some(ProcessTimes {
                command: "post gres: zt (x)".into(),
                parent: 17,
                user: 2.5,
                system: 0.75,
                reaped_children: 0.5,
            })
        );
    }

    #[test]
    fn machine_and_disk_counters_parse() {
        let stat = "cpu  100 10 50 1000 40 5 5 0 0 0\ncpu0 1 2 3 4 5 6 7 8 9 10\n";
        let m = MachineCpu::parse(stat, 100.0).unwrap_or_default();
        let close = |a: f64, b: f64| (a - b).abs() < 1e-9;
        assert!(
            close(m.busy, 1.7) && close(m.idle, 10.0) && close(m.iowait, 0.4),
            "{m:?}"
        );
        let disks = "   7       0 loop0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0\n \
                     254       0 vda 6224050 156734 195652154 19517622 1923664 1356127 768302096 \
                     4105851 0 795548 23793555 1100488 51 650631760 149710 528345 20370\n";
        assert_eq!(
            DiskFlushes::parse(disks, 254, 0),
            Some(DiskFlushes {
                device: "vda".into(),
                completed: 528_345,
                millis: 20_370,
            })
        );
        assert_eq!(DiskFlushes::parse(disks, 8, 0), None);
    }

    #[test]
    fn this_process_and_machine_can_be_read() {
        let ticks = clock_ticks();
        assert!(ProcessTimes::own(ticks).is_some());
        assert!(MachineCpu::read(ticks).is_some_and(|m| m.busy > 0.0));
        let me = std::process::id();
        assert!(tree_cpu(me, ticks).is_some());
    }
}
