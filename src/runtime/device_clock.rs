//! Measuring a step on the backend's own terms: the GPU's time by CUDA events and its memory pool
//! in use; the host's clock (and no device memory) on the CPU.
use std::time::Instant;

use super::Backend;

/// Marks between steps, on the backend's clock: on the GPU, events in its stream of work, so
/// that the interval between two marks is the device's time for the steps queued between them
/// (including any time it waited for the host), even where the host queued them ahead.
pub enum StepClock {
    Host(Vec<Instant>),
    #[cfg(feature = "cuda")]
    Device(crate::compile::cuda::DeviceMarks),
}

impl StepClock {
    /// Starts the clock with a first mark.
    pub fn start(backend: Backend) -> Self {
        match backend {
            #[cfg(feature = "cuda")]
            Backend::Cuda => StepClock::Device(crate::compile::cuda::DeviceMarks::start()),
            _ => StepClock::Host(vec![Instant::now()]),
        }
    }

    /// Marks the end of the work queued so far.
    pub fn mark(&mut self) {
        match self {
            StepClock::Host(marks) => marks.push(Instant::now()),
            #[cfg(feature = "cuda")]
            StepClock::Device(marks) => marks.mark(),
        }
    }

    /// The seconds between each mark and the next, once the device has passed the last.
    pub fn intervals(&self) -> Vec<f64> {
        match self {
            StepClock::Host(marks) => marks
                .windows(2)
                .map(|pair| (pair[1] - pair[0]).as_secs_f64())
                .collect(),
            #[cfg(feature = "cuda")]
            StepClock::Device(marks) => marks.intervals(),
        }
    }
}

/// The GPU memory a program's buffers take, from the pool they are allocated from (cuBLAS's
/// workspace and the CUDA context are not in it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DeviceMemory {
    pub in_use_bytes: u64,
    /// The most in use since [`reset_device_memory_peak`].
    pub peak_bytes: u64,
}

/// `None` on the CPU.
pub fn device_memory(backend: Backend) -> Option<DeviceMemory> {
    match backend {
        #[cfg(feature = "cuda")]
        Backend::Cuda => {
            let (in_use_bytes, peak_bytes) = crate::compile::cuda::memory_pool::bytes_in_use();
            Some(DeviceMemory {
                in_use_bytes,
                peak_bytes,
            })
        }
        _ => None,
    }
}

pub fn reset_device_memory_peak(backend: Backend) {
    #[cfg(feature = "cuda")]
    if backend == Backend::Cuda {
        crate::compile::cuda::memory_pool::reset_peak();
    }
    #[cfg(not(feature = "cuda"))]
    let _ = backend;
}
