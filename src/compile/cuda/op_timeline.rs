//! The profiler's GPU clock: a CUDA event before and after each op, read only when the report
//! asks, so that timing does not stop the host from running ahead of the device. An op's time is
//! the device's time between its two events; the gap between one op's end and the next one's start
//! is time the device sat idle, waiting for the host to queue more work.
use std::{
    sync::{Arc, Mutex, OnceLock},
    time::Duration,
};

use luminal_cudarc::driver::CudaDevice;

use super::stream_event::StreamEvent;
use crate::runtime::profile::SettledTimes;

struct Interval {
    name: String,
    start: StreamEvent,
    end: StreamEvent,
}

static PENDING: Mutex<Vec<Interval>> = Mutex::new(Vec::new());

fn device() -> &'static Arc<CudaDevice> {
    static DEVICE: OnceLock<Arc<CudaDevice>> = OnceLock::new();
    DEVICE.get_or_init(|| CudaDevice::new(0).expect("no CUDA device"))
}

/// A timed event recorded on the device's stream (the default one), the one every op launches on.
fn record() -> StreamEvent {
    let mark = StreamEvent::timed();
    mark.record(*device().cu_stream());
    mark
}

/// Runs `op` between two events and files the interval under `name` until [`settle`].
pub fn time_op(name: &str, op: &mut dyn FnMut()) {
    let start = record();
    op();
    let end = record();
    PENDING.lock().unwrap().push(Interval {
        name: name.to_string(),
        start,
        end,
    });
}

/// Waits for the device, then gives each op interval filed since the last call (name, device
/// time) and the device's idle time between consecutive ops.
pub fn settle() -> SettledTimes {
    let intervals = std::mem::take(&mut *PENDING.lock().unwrap());
    let Some(last) = intervals.last() else {
        return SettledTimes::default();
    };
    last.end.wait();
    // Both events were recorded before `last.end`, so both have passed.
    let between = |from: &StreamEvent, to: &StreamEvent| {
        Duration::from_secs_f64(to.seconds_since(from).max(0.0))
    };
    let mut idle = Duration::ZERO;
    let mut idle_after = Vec::new();
    let mut ops = Vec::with_capacity(intervals.len());
    for (i, interval) in intervals.iter().enumerate() {
        if i > 0 {
            let gap = between(&intervals[i - 1].end, &interval.start);
            idle += gap;
            idle_after.push((intervals[i - 1].name.clone(), gap));
        }
        ops.push((
            interval.name.clone(),
            between(&interval.start, &interval.end),
        ));
    }
    SettledTimes {
        ops,
        idle,
        idle_after,
    }
}
