//! What a process cost, read from Linux's `/proc/<pid>`: CPU seconds (user + system), peak
//! resident memory (VmHWM) and threads (by name: librdkafka's `rdk:*`, tokio's), for the
//! bench's own process and the ones it started (Kafka, SMSC).

/// Clock ticks per second of `/proc/<pid>/stat` (USER_HZ, 100 on every Linux the bench runs).
const TICKS_PER_SECOND: f64 = 100.0;

/// A process to account for: a name for the table, and its pid (`None`: this process).
#[derive(Debug, Clone)]
pub struct Watched {
    pub name: String,
    pub pid: Option<u32>,
}

impl Watched {
    pub fn this_process(name: &str) -> Self {
        Watched {
            name: name.into(),
            pid: None,
        }
    }

    pub fn other(name: &str, pid: u32) -> Self {
        Watched {
            name: name.into(),
            pid: Some(pid),
        }
    }

    fn dir(&self) -> String {
        match self.pid {
            Some(pid) => format!("/proc/{pid}"),
            None => "/proc/self".into(),
        }
    }

    /// CPU seconds used so far (user + system), or 0 when the process is gone.
    pub fn cpu_seconds(&self) -> f64 {
        let Ok(stat) = std::fs::read_to_string(format!("{}/stat", self.dir())) else {
            return 0.0;
        };
        // Fields after the command name (which may hold spaces) in parentheses: state is the
        // 3rd field of the line, utime the 14th and stime the 15th.
        let Some((_, rest)) = stat.rsplit_once(')') else {
            return 0.0;
        };
        let fields: Vec<&str> = rest.split_whitespace().collect();
        let ticks = |i: usize| {
            fields
                .get(i)
                .and_then(|v| v.parse::<f64>().ok())
                .unwrap_or(0.0)
        };
        (ticks(11) + ticks(12)) / TICKS_PER_SECOND
    }

    /// The process's threads now, by kind (empty when the process is gone).
    pub fn threads(&self) -> Threads {
        let Ok(tasks) = std::fs::read_dir(format!("{}/task", self.dir())) else {
            return Threads::default();
        };
        let names: Vec<String> = tasks
            .filter_map(Result::ok)
            .map(|task| {
                std::fs::read_to_string(task.path().join("comm"))
                    .map(|comm| comm.trim_end().to_string())
                    .unwrap_or_default()
            })
            .collect();
        Threads::of(names.iter().map(String::as_str))
    }

    /// Peak resident memory in MiB (VmHWM), or 0 when the process is gone.
    pub fn peak_rss_mib(&self) -> f64 {
        self.status_kib("VmHWM:") / 1024.0
    }

    fn status_kib(&self, field: &str) -> f64 {
        std::fs::read_to_string(format!("{}/status", self.dir()))
            .ok()
            .and_then(|status| {
                status
                    .lines()
                    .find(|l| l.starts_with(field))
                    .and_then(|l| l.split_whitespace().nth(1))
                    .and_then(|kb| kb.parse::<f64>().ok())
            })
            .unwrap_or(0.0)
    }
}

/// A process's threads, by what their names (`/proc/<pid>/task/*/comm`) say they are.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Threads {
    pub total: usize,
    /// librdkafka's (`rdk:main`, `rdk:broker1`, …): a handful per Kafka client.
    pub librdkafka: usize,
    /// tokio's (`tokio-runtime-worker`, cut to 15 characters): workers and the blocking pool.
    pub tokio: usize,
}

impl Threads {
    /// Count threads by name.
    pub fn of<'a>(names: impl Iterator<Item = &'a str>) -> Self {
        let mut threads = Threads::default();
        for name in names {
            threads.total += 1;
            if name.starts_with("rdk:") {
                threads.librdkafka += 1;
            } else if name.starts_with("tokio-") {
                threads.tokio += 1;
            }
        }
        threads
    }

    /// `143 (librdkafka 96, tokio 9, other 38)`, or just the total when none is librdkafka's
    /// or tokio's (a JVM, node).
    pub fn describe(&self) -> String {
        if self.librdkafka + self.tokio == 0 {
            return self.total.to_string();
        }
        format!(
            "{} (librdkafka {}, tokio {}, other {})",
            self.total,
            self.librdkafka,
            self.tokio,
            self.total - self.librdkafka - self.tokio
        )
    }
}

/// CPU seconds of each watched process at one moment.
#[derive(Debug, Clone)]
pub struct CpuSnapshot(Vec<f64>);

impl CpuSnapshot {
    /// CPU seconds each process used from `before` to this snapshot.
    pub fn since(&self, before: &CpuSnapshot) -> Vec<f64> {
        self.0.iter().zip(&before.0).map(|(a, b)| a - b).collect()
    }
}

/// Take a snapshot of `watched`.
pub fn cpu_snapshot(watched: &[Watched]) -> CpuSnapshot {
    CpuSnapshot(watched.iter().map(Watched::cpu_seconds).collect())
}

/// Per watched process: CPU seconds between `before` and now, and peak RSS.
pub fn print_costs(watched: &[Watched], before: &CpuSnapshot, wall_seconds: f64) {
    let after = cpu_snapshot(watched);
    let mut total = 0.0;
    for ((w, b), a) in watched.iter().zip(&before.0).zip(&after.0) {
        let cpu = a - b;
        total += cpu;
        println!(
            "    {:<34} CPU {:>6.1} s ({:>4.0}% of one core)   peak RSS {:>7.1} MiB",
            w.name,
            cpu,
            cpu / wall_seconds.max(1e-9) * 100.0,
            w.peak_rss_mib()
        );
    }
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get()) as f64;
    println!(
        "    {:<34} CPU {:>6.1} s ({:>4.0}% of the {cores} cores' {:.1} s)",
        "all",
        total,
        total / (cores * wall_seconds.max(1e-9)) * 100.0,
        cores * wall_seconds
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn threads_are_counted_by_name() {
        let names = [
            "bench",
            "rdk:main",
            "rdk:broker1",
            "rdk:broker-1",
            "tokio-runtime-w",
            "tokio-runtime-w",
            "sqlite-writer",
        ];
        let threads = Threads::of(names.into_iter());
        assert_eq!(
            threads,
            Threads {
                total: 7,
                librdkafka: 3,
                tokio: 2
            }
        );
        assert_eq!(threads.describe(), "7 (librdkafka 3, tokio 2, other 2)");
        assert_eq!(
            Threads::of(["java", "GC Thread#0"].into_iter()).describe(),
            "2"
        );
    }

    #[test]
    fn this_process_has_threads_and_cpu() {
        let me = Watched::this_process("test");
        assert!(me.threads().total >= 1);
        let before = cpu_snapshot(std::slice::from_ref(&me));
        let after = cpu_snapshot(std::slice::from_ref(&me));
        assert!(after.since(&before)[0] >= 0.0);
    }
}
