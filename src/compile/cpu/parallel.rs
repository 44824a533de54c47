use std::sync::{
    atomic::{AtomicUsize, Ordering},
    OnceLock,
};

/// The threads this machine runs at once.
pub fn thread_count() -> usize {
    static THREADS: OnceLock<usize> = OnceLock::new();
    *THREADS.get_or_init(|| {
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
    })
}

/// Runs `task(i)` for every `i` in `0..count` on up to `threads` threads (the caller's among
/// them), each taking the next index as it finishes one: on a shared machine a thread that loses
/// its core then delays one task, not half the work.
pub fn run_tasks(count: usize, threads: usize, task: impl Fn(usize) + Sync) {
    let next = AtomicUsize::new(0);
    let work = || loop {
        let index = next.fetch_add(1, Ordering::Relaxed);
        if index >= count {
            break;
        }
        task(index);
    };
    std::thread::scope(|scope| {
        for _ in 1..threads.min(count) {
            scope.spawn(work);
        }
        work();
    });
}

/// A buffer pointer shared by the tasks of one op, each of which writes its own part only.
#[derive(Clone, Copy)]
pub struct Shared<T>(pub T);
// SAFETY: users write disjoint elements from different tasks and only read otherwise.
unsafe impl<T> Send for Shared<T> {}
unsafe impl<T> Sync for Shared<T> {}

/// A new buffer of `len` values filled in chunks of `chunk` on up to `threads` threads:
/// `fill(start, values)` writes `values`, the buffer's elements `start..start + values.len()`.
pub fn fill_in_chunks(
    len: usize,
    chunk: usize,
    threads: usize,
    fill: impl Fn(usize, &mut [f32]) + Sync,
) -> Vec<f32> {
    let mut out = vec![0f32; len];
    let target = Shared(out.as_mut_ptr());
    run_tasks(len.div_ceil(chunk), threads, |task| {
        let (start, end) = (task * chunk, ((task + 1) * chunk).min(len));
        let target = &target;
        // SAFETY: every task takes its own range of `out`, inside its length; `out` outlives
        // the tasks.
        let values = unsafe { std::slice::from_raw_parts_mut(target.0.add(start), end - start) };
        fill(start, values);
    });
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_cover_the_buffer_once() {
        let values = fill_in_chunks(1000, 64, 3, |start, values| {
            for (offset, value) in values.iter_mut().enumerate() {
                *value += (start + offset) as f32;
            }
        });
        assert_eq!(values, (0..1000).map(|i| i as f32).collect::<Vec<_>>());
    }

    #[test]
    fn every_task_runs_once() {
        let counts: Vec<AtomicUsize> = (0..100).map(|_| AtomicUsize::new(0)).collect();
        run_tasks(100, 3, |i| {
            counts[i].fetch_add(1, Ordering::Relaxed);
        });
        assert!(counts.iter().all(|c| c.load(Ordering::Relaxed) == 1));
    }
}
