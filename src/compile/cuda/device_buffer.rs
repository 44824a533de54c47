//! luminal_cuda keeps a device tensor as `CudaData<f32>`, a newtype around a `CudaSlice<f32>`
//! whose field it does not export. dropbert's kernels need the slice of each input and must hand
//! their outputs back as `CudaData`, so that luminal_cuda's own ops can read them; this module is
//! the one place that reinterprets one as the other. Buffers only dropbert's kernels read (bf16
//! bits, packed dropout masks) are [`RawBuffer`]s.
use std::mem::{align_of, size_of};

use luminal::{op::InputTensor, prelude::*};
use luminal_cuda::CudaData;
use luminal_cudarc::driver::{CudaDevice, CudaSlice, DeviceRepr};

// A struct of one field has that field's layout; these fail the build should that ever change.
const _: () = assert!(size_of::<CudaData<f32>>() == size_of::<CudaSlice<f32>>());
const _: () = assert!(align_of::<CudaData<f32>>() == align_of::<CudaSlice<f32>>());

/// The device buffer of a tensor, if it lives on the device.
pub fn device_slice(tensor: &Tensor) -> Option<&CudaSlice<f32>> {
    let data = tensor.data.as_any().downcast_ref::<CudaData<f32>>()?;
    // SAFETY: `CudaData<f32>` is a struct whose only field is a `CudaSlice<f32>` (same size and
    // alignment, checked above).
    Some(unsafe { &*(data as *const CudaData<f32>).cast::<CudaSlice<f32>>() })
}

/// [`device_slice`], mutable.
pub fn device_slice_mut(tensor: &mut Tensor) -> Option<&mut CudaSlice<f32>> {
    let data = tensor.data.as_any_mut().downcast_mut::<CudaData<f32>>()?;
    // SAFETY: as in `device_slice`.
    Some(unsafe { &mut *(data as *mut CudaData<f32>).cast::<CudaSlice<f32>>() })
}

/// A device buffer as a tensor luminal_cuda's ops can read.
pub fn device_tensor(slice: CudaSlice<f32>) -> Tensor {
    // SAFETY: as in `device_slice`; the value moves, so the buffer keeps exactly one owner.
    let data: CudaData<f32> = unsafe { std::mem::transmute(slice) };
    Tensor {
        data: Box::new(data),
    }
}

/// The device buffer of an op input; panics where it is not on the device (a dropbert CUDA op fed
/// by a node the CUDA compiler left on the host).
pub fn input_slice<'a>(input: &'a InputTensor<'a>, what: &str) -> &'a CudaSlice<f32> {
    device_slice(input.borrowed()).unwrap_or_else(|| panic!("{what}: the input is not on the GPU"))
}

/// A tensor's values on the host, wherever it lives (waiting for the device where a download is
/// in flight): `None` only for data that is neither host `f32`s nor a device buffer.
pub fn copy_to_host(tensor: &Tensor) -> Option<Vec<f32>> {
    if let Some(values) = tensor.data.as_any().downcast_ref::<Vec<f32>>() {
        return Some(values.clone());
    }
    if let Some(pending) = tensor
        .data
        .as_any()
        .downcast_ref::<super::pinned_downloads::PendingDownload>()
    {
        return Some(pending.values());
    }
    let slice = device_slice(tensor)?;
    Some(
        slice
            .device()
            .dtoh_sync_copy(slice)
            .expect("copying a tensor from the GPU"),
    )
}

/// The first value of a scalar input (a gate), read from the host where it is there.
pub fn scalar_value(input: &InputTensor<'_>, device: &std::sync::Arc<CudaDevice>) -> f32 {
    let tensor = input.borrowed();
    if let Some(values) = tensor.data.as_any().downcast_ref::<Vec<f32>>() {
        return values[0];
    }
    let slice = device_slice(tensor).expect("a scalar on the host or the GPU");
    device
        .dtoh_sync_copy(&slice.slice(0..1))
        .expect("reading a scalar from the GPU")[0]
}

/// A device buffer of words only dropbert's kernels read, as a luminal tensor's data: bf16 values
/// as their bits (`u16`), a packed dropout mask's words (`u32`).
#[derive(Debug, Clone)]
pub struct RawBuffer<T: DeviceRepr>(pub CudaSlice<T>);

impl<T: DeviceRepr + Clone + std::fmt::Debug + 'static> Data for RawBuffer<T> {
    fn as_any(&self) -> &dyn std::any::Any {
        self
    }

    fn as_any_mut(&mut self) -> &mut dyn std::any::Any {
        self
    }
}

/// A raw device buffer as a tensor.
pub fn raw_tensor<T: DeviceRepr + Clone + std::fmt::Debug + 'static>(
    buffer: CudaSlice<T>,
) -> Tensor {
    Tensor {
        data: Box::new(RawBuffer(buffer)),
    }
}

/// The raw buffer of an op input, `kind` saying what it should be; panics where it is not one.
pub fn raw_input<'a, T: DeviceRepr + Clone + std::fmt::Debug + 'static>(
    input: &'a InputTensor<'a>,
    what: &str,
    kind: &str,
) -> &'a CudaSlice<T> {
    &input
        .borrowed()
        .data
        .as_any()
        .downcast_ref::<RawBuffer<T>>()
        .unwrap_or_else(|| panic!("{what}: the input is not {kind}"))
        .0
}
