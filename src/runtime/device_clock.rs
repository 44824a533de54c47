//! Measuring a step on the backend's own terms: the GPU's time by CUDA events and its memory pool
//! in use; the host's clock (and no device memory) on the CPU.
use std::time::Instant;

use super::Backend;

/// An interval being timed.
pub enum StepTimer {
    Host(Instant),
    #[cfg(feature = "cuda")]
    Device(crate::compile::cuda::DeviceTimer),
}

impl StepTimer {
    pub fn start(backend: Backend) -> Self {
        match backend {
            #[cfg(feature = "cuda")]
            Backend::Cuda => StepTimer::Device(crate::compile::cuda::DeviceTimer::start()),
            _ => StepTimer::Host(Instant::now()),
        }
    }

    /// The interval's length in seconds.
    pub fn stop(self) -> f64 {
        match self {
            StepTimer::Host(started) => started.elapsed().as_secs_f64(),
            #[cfg(feature = "cuda")]
            StepTimer::Device(timer) => timer.stop(),
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
