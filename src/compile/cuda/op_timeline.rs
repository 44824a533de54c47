//! The profiler's GPU clock: a CUDA event before and after each op, read only when the report
//! asks, so that timing does not stop the host from running ahead of the device. An op's time is
//! the device's time between its two events; the gap between one op's end and the next one's start
//! is time the device sat idle, waiting for the host to queue more work.
use std::{
    sync::{Arc, Mutex, OnceLock},
    time::Duration,
};

use luminal_cudarc::driver::{
    result::event,
    sys::{CUevent, CUevent_flags},
    CudaDevice,
};

use crate::runtime::profile::SettledTimes;

struct Interval {
    name: String,
    start: CUevent,
    end: CUevent,
}

// SAFETY: CUDA events are plain handles, valid from any thread of the context.
unsafe impl Send for Interval {}

static PENDING: Mutex<Vec<Interval>> = Mutex::new(Vec::new());

fn device() -> &'static Arc<CudaDevice> {
    static DEVICE: OnceLock<Arc<CudaDevice>> = OnceLock::new();
    DEVICE.get_or_init(|| CudaDevice::new(0).expect("no CUDA device"))
}

fn record() -> CUevent {
    let device = device();
    let mark = event::create(CUevent_flags::CU_EVENT_DEFAULT).expect("creating a CUDA event");
    // SAFETY: the event was just created; the stream is the device's (the default one), the one
    // every op launches on.
    unsafe { event::record(mark, *device.cu_stream()) }.expect("recording a CUDA event");
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
    // SAFETY: the event is live until destroyed below.
    unsafe { luminal_cudarc::driver::sys::cuEventSynchronize(last.end) }
        .result()
        .expect("waiting for a CUDA event");
    let millis = |from: CUevent, to: CUevent| {
        // SAFETY: both events are live and, recorded before `last.end`, complete.
        let ms = unsafe { event::elapsed(from, to) }.expect("reading a CUDA event");
        Duration::from_secs_f64(f64::from(ms.max(0.0)) / 1e3)
    };
    let mut idle = Duration::ZERO;
    let mut idle_after = Vec::new();
    let mut ops = Vec::with_capacity(intervals.len());
    for (i, interval) in intervals.iter().enumerate() {
        if i > 0 {
            let gap = millis(intervals[i - 1].end, interval.start);
            idle += gap;
            idle_after.push((intervals[i - 1].name.clone(), gap));
        }
        ops.push((interval.name.clone(), millis(interval.start, interval.end)));
    }
    for interval in intervals {
        // SAFETY: created in `record`, destroyed once here.
        unsafe {
            let _ = event::destroy(interval.start);
            let _ = event::destroy(interval.end);
        }
    }
    SettledTimes {
        ops,
        idle,
        idle_after,
    }
}
