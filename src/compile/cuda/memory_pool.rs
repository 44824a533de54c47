//! The device's default memory pool, which every buffer of a program comes from (luminal_cudarc
//! allocates stream-ordered, `cuMemAllocAsync`). By default the pool hands its free memory back to
//! the driver at every synchronization, and a training step synchronizes at least once (to read
//! the loss), so each step would map its whole working set afresh; `keep_freed_memory` makes the
//! pool keep it, as PyTorch's caching allocator does.
use std::{ffi::c_void, sync::Arc};

use luminal_cudarc::driver::{
    sys::{self, CUmemPool_attribute},
    CudaDevice,
};

fn default_pool(device: &CudaDevice) -> sys::CUmemoryPool {
    let mut pool = std::ptr::null_mut();
    // SAFETY: the device handle is valid for the device's lifetime; the call writes one handle.
    let status = unsafe { sys::cuDeviceGetDefaultMemPool(&mut pool, *device.cu_device()) };
    assert_eq!(
        status,
        sys::CUresult::CUDA_SUCCESS,
        "reading the default memory pool"
    );
    pool
}

fn set_attribute(device: &CudaDevice, attribute: CUmemPool_attribute, mut value: u64) {
    // SAFETY: these attributes take a `cuuint64_t`.
    let status = unsafe {
        sys::cuMemPoolSetAttribute(
            default_pool(device),
            attribute,
            (&mut value as *mut u64).cast::<c_void>(),
        )
    };
    assert_eq!(status, sys::CUresult::CUDA_SUCCESS, "setting {attribute:?}");
}

fn attribute(device: &CudaDevice, attribute: CUmemPool_attribute) -> u64 {
    let mut value = 0u64;
    // SAFETY: these attributes are a `cuuint64_t`.
    let status = unsafe {
        sys::cuMemPoolGetAttribute(
            default_pool(device),
            attribute,
            (&mut value as *mut u64).cast::<c_void>(),
        )
    };
    assert_eq!(status, sys::CUresult::CUDA_SUCCESS, "reading {attribute:?}");
    value
}

/// Makes the pool keep freed memory for the next allocations instead of releasing it.
pub fn keep_freed_memory(device: &CudaDevice) {
    set_attribute(
        device,
        CUmemPool_attribute::CU_MEMPOOL_ATTR_RELEASE_THRESHOLD,
        u64::MAX,
    );
}

/// Bytes of the pool in use now, and the most in use since the last [`reset_peak`].
pub fn bytes_in_use() -> (u64, u64) {
    let device = device();
    (
        attribute(
            &device,
            CUmemPool_attribute::CU_MEMPOOL_ATTR_USED_MEM_CURRENT,
        ),
        attribute(&device, CUmemPool_attribute::CU_MEMPOOL_ATTR_USED_MEM_HIGH),
    )
}

/// Starts the peak of [`bytes_in_use`] afresh from the bytes in use now.
pub fn reset_peak() {
    set_attribute(
        &device(),
        CUmemPool_attribute::CU_MEMPOOL_ATTR_USED_MEM_HIGH,
        0,
    );
}

fn device() -> Arc<CudaDevice> {
    CudaDevice::new(0).expect("no CUDA device")
}
