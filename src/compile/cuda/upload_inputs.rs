//! The uploads of a group of graph inputs (see `grouped_uploads`), as one op.
use std::sync::Arc;

use luminal::{
    op::{InputTensor, Operator},
    prelude::*,
};
use luminal_cudarc::driver::CudaDevice;

use super::device_buffer::{device_slice, device_tensor};

/// Output `i` is input `i` on the device: a buffer already there is handed on (moved where this
/// op holds the input's last use, as the optimizer's weights and state are), host values are
/// copied up.
#[derive(Debug, Clone)]
pub struct CudaUploadInputs {
    device: Arc<CudaDevice>,
}

impl CudaUploadInputs {
    pub fn new(device: &Arc<CudaDevice>) -> Self {
        Self {
            device: device.clone(),
        }
    }
}

impl PartialEq for CudaUploadInputs {
    fn eq(&self, _: &Self) -> bool {
        false
    }
}

impl Operator for CudaUploadInputs {
    fn process(&mut self, inputs: Vec<(InputTensor, ShapeTracker)>) -> Vec<Tensor> {
        inputs
            .into_iter()
            .map(|(input, _)| {
                if device_slice(input.borrowed()).is_some() {
                    return input.cloned();
                }
                let values = input
                    .borrowed()
                    .data
                    .as_any()
                    .downcast_ref::<Vec<f32>>()
                    .expect("a graph input holds host f32s or a GPU buffer");
                device_tensor(
                    self.device
                        .htod_copy(values.clone())
                        .expect("copying an input to the GPU"),
                )
            })
            .collect()
    }
}
