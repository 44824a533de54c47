//! Downloads of a step's results (the loss, the per-prediction losses, the gradient norm, token
//! dropping's kept positions) that the host does not wait for. luminal_cuda's download copies
//! synchronously, so the host waits at the end of every step for the device to finish it, and
//! the device then idles while the host prepares the next step and queues its first kernels
//! (0.6-1.1 ms a step at BERT-base in runs 72-75). [`CudaPinnedDownload`] queues the copy into a
//! page-locked buffer and records an event; its output, a [`PendingDownload`], waits for that
//! event only when the host reads it. A trainer that queues the next step before reading the last
//! one's results keeps the device busy across the steps' boundary.
use std::sync::{Arc, Mutex};

use luminal::{
    op::{InputTensor, Operator},
    prelude::*,
};
use luminal_cudarc::driver::{sys, CudaDevice, DevicePtr, DeviceSlice};

use super::{device_buffer::device_slice, pinned_buffer::PinnedBuffer, stream_event::StreamEvent};

/// Page-locked buffers no pending download holds, for the next downloads of one op.
type BufferPool = Arc<Mutex<Vec<PinnedBuffer>>>;

/// A device-to-host copy in flight: its values, once its event has passed.
#[derive(Debug, Clone)]
pub struct PendingDownload(Arc<InFlight>);

struct InFlight {
    /// `Some` until dropped, then back in `pool`.
    buffer: Option<PinnedBuffer>,
    len: usize,
    copied: StreamEvent,
    pool: BufferPool,
}

// SAFETY: the buffer belongs to this copy alone, and is only read.
unsafe impl Sync for InFlight {}

impl std::fmt::Debug for InFlight {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "InFlight({} floats)", self.len)
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        // The buffer may go back to the pool while the copy into it is in flight: the next copy
        // into it is queued after this one, on the same stream, and nothing reads it on the host
        // before that copy's own event.
        if let Some(buffer) = self.buffer.take() {
            self.pool.lock().expect("a plain list").push(buffer);
        }
    }
}

impl PendingDownload {
    /// The copied values: waits for the copy (and so for every kernel queued before it).
    pub fn values(&self) -> Vec<f32> {
        let in_flight = &self.0;
        // Recorded right after the copy was queued.
        in_flight.copied.wait();
        let buffer = in_flight.buffer.as_ref().expect("held until dropped");
        buffer.as_slice()[..in_flight.len].to_vec()
    }
}

impl Data for PendingDownload {
    fn as_any(&self) -> &dyn std::any::Any {
        self
    }

    fn as_any_mut(&mut self) -> &mut dyn std::any::Any {
        self
    }
}

/// A download of a step's result into page-locked memory (see the module's notes).
#[derive(Clone)]
pub struct CudaPinnedDownload {
    device: Arc<CudaDevice>,
    pool: BufferPool,
}

impl CudaPinnedDownload {
    pub fn new(device: &Arc<CudaDevice>) -> Self {
        Self {
            device: device.clone(),
            pool: Arc::default(),
        }
    }
}

impl std::fmt::Debug for CudaPinnedDownload {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CudaPinnedDownload")
    }
}

impl PartialEq for CudaPinnedDownload {
    fn eq(&self, _: &Self) -> bool {
        false
    }
}

impl Operator for CudaPinnedDownload {
    fn process(&mut self, mut inputs: Vec<(InputTensor, ShapeTracker)>) -> Vec<Tensor> {
        let (input, _) = inputs.pop().expect("one input");
        let Some(slice) = device_slice(input.borrowed()) else {
            // Already on the host.
            return vec![input.cloned()];
        };
        let len = slice.len();
        self.device
            .bind_to_thread()
            .expect("binding the CUDA context");
        let reused = {
            let mut pool = self.pool.lock().expect("a plain list");
            let fitting = pool.iter().position(|buffer| buffer.len >= len);
            fitting.map(|index| pool.swap_remove(index))
        };
        let buffer = reused.unwrap_or_else(|| PinnedBuffer::new(len));
        let copied = StreamEvent::untimed();
        let stream = *self.device.cu_stream();
        // SAFETY: `len` floats from the device buffer, which the input keeps alive until the copy
        // is queued and the stream's order keeps unfreed until it has run, into a page-locked
        // buffer of at least `len` floats that nothing reads before the event recorded next.
        unsafe {
            sys::cuMemcpyDtoHAsync_v2(buffer.pointer.cast(), *slice.device_ptr(), len * 4, stream)
                .result()
                .expect("queueing a download");
        }
        copied.record(stream);
        vec![Tensor {
            data: Box::new(PendingDownload(Arc::new(InFlight {
                buffer: Some(buffer),
                len,
                copied,
                pool: self.pool.clone(),
            }))),
        }]
    }
}

/// Every download of the compiled `graph` (luminal_cuda's) as a [`CudaPinnedDownload`].
pub fn pin_downloads(graph: &mut Graph, device: &Arc<CudaDevice>) {
    let downloads: Vec<NodeIndex> = graph
        .graph
        .node_indices()
        .filter(|&node| {
            super::copy_ops::is_download(graph.graph.node_weight(node).expect("live node").as_ref())
        })
        .collect();
    for node in downloads {
        *graph.graph.node_weight_mut(node).expect("live node") =
            Box::new(CudaPinnedDownload::new(device));
    }
}
