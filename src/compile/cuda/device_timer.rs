//! Time measured by the GPU itself: CUDA events recorded on the stream every op runs on (the
//! default stream), so the interval is what the device spent, not when the host returned.
use std::sync::Arc;

use luminal_cudarc::driver::{
    result::event,
    sys::{CUevent, CUevent_flags},
    CudaDevice,
};

pub struct DeviceTimer {
    start: CUevent,
    end: CUevent,
    // Held from `start` so that `stop` does no device setup inside the interval it times.
    device: Arc<CudaDevice>,
}

impl DeviceTimer {
    /// Records the start of an interval.
    pub fn start() -> Self {
        // Binds the device's context to this thread before the event calls.
        let device = CudaDevice::new(0).expect("no CUDA device");
        let start = event::create(CUevent_flags::CU_EVENT_DEFAULT).expect("creating a CUDA event");
        let end = event::create(CUevent_flags::CU_EVENT_DEFAULT).expect("creating a CUDA event");
        // SAFETY: both events were just created; the stream is the device's (the default one).
        unsafe { event::record(start, *device.cu_stream()) }.expect("recording a CUDA event");
        Self { start, end, device }
    }

    /// Records the end of the interval, waits for it and gives its length in seconds.
    pub fn stop(self) -> f64 {
        // SAFETY: the events are live until `drop`; the stream is the default one.
        unsafe {
            event::record(self.end, *self.device.cu_stream()).expect("recording a CUDA event");
            luminal_cudarc::driver::sys::cuEventSynchronize(self.end)
                .result()
                .expect("waiting for a CUDA event");
            f64::from(event::elapsed(self.start, self.end).expect("reading a CUDA event")) / 1e3
        }
    }
}

impl Drop for DeviceTimer {
    fn drop(&mut self) {
        // SAFETY: created in `start`, destroyed once here.
        unsafe {
            let _ = event::destroy(self.start);
            let _ = event::destroy(self.end);
        }
    }
}
