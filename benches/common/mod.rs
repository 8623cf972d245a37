//! Shared by the benches: criterion measured in the benchmark thread's CPU time.
#![allow(dead_code)]

use criterion::measurement::{Measurement, ValueFormatter, WallTime};

/// CPU time of the calling thread (`CLOCK_THREAD_CPUTIME_ID`, user + system), in nanoseconds:
/// time spent preempted by other processes on the shared machine is not counted.
pub struct ThreadCpu(pub WallTime);

impl Measurement for ThreadCpu {
    type Intermediate = u128;
    type Value = u128;
    fn start(&self) -> u128 {
        cpu_now()
    }
    fn end(&self, start: u128) -> u128 {
        cpu_now().saturating_sub(start)
    }
    fn add(&self, a: &u128, b: &u128) -> u128 {
        a + b
    }
    fn zero(&self) -> u128 {
        0
    }
    fn to_f64(&self, v: &u128) -> f64 {
        *v as f64
    }
    fn formatter(&self) -> &dyn ValueFormatter {
        // Nanoseconds, formatted like wall time.
        self.0.formatter()
    }
}

fn cpu_now() -> u128 {
    let t = rustix::time::clock_gettime(rustix::time::ClockId::ThreadCPUTime);
    t.tv_sec as u128 * 1_000_000_000 + t.tv_nsec as u128
}
