//! A CUDA event owned by one value: recorded on the stream every op runs on, waited for or timed
//! against another, and destroyed when dropped (the driver releases an event still pending in the
//! stream once the stream passes it).
use luminal_cudarc::driver::{
    result::event,
    sys::{self, CUevent, CUevent_flags, CUstream},
};

pub struct StreamEvent(CUevent);

// SAFETY: a CUDA event is a handle valid from any thread of its context, and the driver's calls
// on it are thread-safe.
unsafe impl Send for StreamEvent {}
unsafe impl Sync for StreamEvent {}

impl StreamEvent {
    /// An event that can be timed against another ([`seconds_since`](Self::seconds_since)).
    pub fn timed() -> Self {
        Self::with_flags(CUevent_flags::CU_EVENT_DEFAULT)
    }

    /// An event only waited for, which costs the driver less to record.
    pub fn untimed() -> Self {
        Self::with_flags(CUevent_flags::CU_EVENT_DISABLE_TIMING)
    }

    fn with_flags(flags: CUevent_flags) -> Self {
        Self(event::create(flags).expect("creating a CUDA event"))
    }

    /// Records the event after the work queued on `stream` so far.
    pub fn record(&self, stream: CUstream) {
        // SAFETY: the event is live until dropped; `stream` is a stream of its context.
        unsafe { event::record(self.0, stream) }.expect("recording a CUDA event");
    }

    /// Waits until the device has passed the event's last recording (at once where it was never
    /// recorded).
    pub fn wait(&self) {
        // SAFETY: the event is live until dropped.
        unsafe { sys::cuEventSynchronize(self.0) }
            .result()
            .expect("waiting for a CUDA event");
    }

    /// The device's seconds from `earlier` to this event, both timed and passed.
    pub fn seconds_since(&self, earlier: &StreamEvent) -> f64 {
        // SAFETY: both events are live until dropped.
        let millis = unsafe { event::elapsed(earlier.0, self.0) }.expect("reading a CUDA event");
        f64::from(millis) / 1e3
    }
}

impl Drop for StreamEvent {
    fn drop(&mut self) {
        // SAFETY: created in `with_flags`, destroyed once here.
        unsafe {
            let _ = event::destroy(self.0);
        }
    }
}
