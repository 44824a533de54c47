//! Time measured by the GPU itself: CUDA events recorded on the stream every op runs on (the
//! default stream), so the intervals between them are what the device spent, not when the host
//! queued the work.
use std::sync::Arc;

use luminal_cudarc::driver::CudaDevice;

use super::stream_event::StreamEvent;

/// Points in the device's stream of work, each recorded after the work queued before it.
pub struct DeviceMarks {
    marks: Vec<StreamEvent>,
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
        let mark = StreamEvent::timed();
        mark.record(*self.device.cu_stream());
        self.marks.push(mark);
    }

    /// Waits for the last mark and gives the seconds between each mark and the next.
    pub fn intervals(&self) -> Vec<f64> {
        let Some(last) = self.marks.last() else {
            return Vec::new();
        };
        last.wait();
        self.marks
            .windows(2)
            .map(|pair| pair[1].seconds_since(&pair[0]))
            .collect()
    }
}
