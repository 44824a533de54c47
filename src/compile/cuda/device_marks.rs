//! Time measured by the GPU itself: CUDA events recorded on the stream every op runs on (the
//! default stream), so the intervals between them are what the device spent, not when the host
//! queued the work.
use std::sync::Arc;

use luminal_cudarc::driver::{
    result::event,
    sys::{self, CUevent, CUevent_flags},
    CudaDevice,
};

/// Points in the device's stream of work, each recorded after the work queued before it.
pub struct DeviceMarks {
    marks: Vec<CUevent>,
    // Held from the start so that a mark does no device setup.
    device: Arc<CudaDevice>,
}

impl DeviceMarks {
    /// Records the first mark.
    pub fn start() -> Self {
        // Binds the device's context to this thread before the event calls.
        let device = CudaDevice::new(0).expect("no CUDA device");
        let mut marks = Self {
            marks: Vec::new(),
            device,
        };
        marks.mark();
        marks
    }

    /// Records a mark after the work queued so far; does not wait for it.
    pub fn mark(&mut self) {
        let mark = event::create(CUevent_flags::CU_EVENT_DEFAULT).expect("creating a CUDA event");
        // SAFETY: the event was just created; the stream is the device's (the default one).
        unsafe { event::record(mark, *self.device.cu_stream()) }.expect("recording a CUDA event");
        self.marks.push(mark);
    }

    /// Waits for the last mark and gives the seconds between each mark and the next.
    pub fn intervals(&self) -> Vec<f64> {
        let Some(&last) = self.marks.last() else {
            return Vec::new();
        };
        // SAFETY: the events are live until `drop`.
        unsafe {
            sys::cuEventSynchronize(last)
                .result()
                .expect("waiting for a CUDA event");
            self.marks
                .windows(2)
                .map(|pair| {
                    f64::from(event::elapsed(pair[0], pair[1]).expect("reading a CUDA event")) / 1e3
                })
                .collect()
        }
    }
}

impl Drop for DeviceMarks {
    fn drop(&mut self) {
        // SAFETY: created in `mark`, destroyed once here.
        unsafe {
            for &mark in &self.marks {
                let _ = event::destroy(mark);
            }
        }
    }
}
