//! Page-locked host memory, which the device copies to and from without the driver staging it
//! (and so without the host waiting for the copy).
use luminal_cudarc::driver::sys;

/// A page-locked host buffer of `f32`s.
pub struct PinnedBuffer {
    pub pointer: *mut f32,
    pub len: usize,
}

// SAFETY: the buffer is owned memory, reachable only through this value.
unsafe impl Send for PinnedBuffer {}

impl PinnedBuffer {
    pub fn new(len: usize) -> Self {
        let mut pointer = std::ptr::null_mut();
        // SAFETY: the driver writes the address of `len` floats of page-locked memory, freed in
        // `drop`; the caller bound the device's context to this thread.
        unsafe { sys::cuMemHostAlloc(&mut pointer, len.max(1) * 4, 0) }
            .result()
            .expect("page-locked host memory");
        Self {
            pointer: pointer.cast(),
            len,
        }
    }

    pub fn as_slice(&self) -> &[f32] {
        // SAFETY: `len` floats allocated in `new`.
        unsafe { std::slice::from_raw_parts(self.pointer, self.len) }
    }

    pub fn as_mut_slice(&mut self) -> &mut [f32] {
        // SAFETY: `len` floats allocated in `new`, owned by this buffer alone.
        unsafe { std::slice::from_raw_parts_mut(self.pointer, self.len) }
    }
}

impl Drop for PinnedBuffer {
    fn drop(&mut self) {
        // SAFETY: allocated in `new`, freed once here.
        unsafe {
            let _ = sys::cuMemFreeHost(self.pointer.cast());
        }
    }
}
