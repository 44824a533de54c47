//! Every CPU op allocates its output afresh, and glibc serves large allocations (above 32 MiB,
//! like the masked-LM logits) with `mmap`: each one then costs a page fault per 4 KiB on first
//! write (64 ms for 78 MB on a 2-core VM, against 17 ms for the writes alone). Raising the
//! thresholds makes freed buffers stay in the heap for the next step's allocations.

/// Keeps freed buffers of any size in the process heap (glibc only; a no-op elsewhere).
pub fn keep_freed_buffers() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        static ONCE: std::sync::Once = std::sync::Once::new();
        ONCE.call_once(|| {
            extern "C" {
                fn mallopt(param: i32, value: i32) -> i32;
            }
            const M_TRIM_THRESHOLD: i32 = -1;
            const M_MMAP_THRESHOLD: i32 = -3;
            const LIMIT: i32 = 1 << 30;
            // SAFETY: mallopt only tunes the allocator; it is called before these settings matter
            // and takes plain integers.
            unsafe {
                mallopt(M_MMAP_THRESHOLD, LIMIT);
                mallopt(M_TRIM_THRESHOLD, LIMIT);
            }
        });
    }
}
