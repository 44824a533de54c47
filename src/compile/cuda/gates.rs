//! The gates of switchable blocks on the GPU. The gate is read on the host (the compiler wires it
//! to the host input the trainer sets); the op then hands on the device buffer of the branch
//! taken, and never touches the other one, which may be an empty placeholder for work skipped.
use std::sync::Arc;

use luminal::{
    op::{InputTensor, Operator},
    prelude::*,
};
use luminal_cudarc::driver::CudaDevice;

use super::device_buffer::{device_tensor, scalar_value};
use crate::ops::{answer_gated_inputs, GateChoose, GateMask};

/// [`GateChoose`]: `gate ? on : off`.
#[derive(Debug, Clone, LuminalEqFalse)]
pub struct CudaGateChoose {
    device: Arc<CudaDevice>,
}

impl CudaGateChoose {
    pub fn new(_: GateChoose, device: &Arc<CudaDevice>) -> Self {
        Self {
            device: device.clone(),
        }
    }
}

impl Operator for CudaGateChoose {
    fn process(&mut self, mut inputs: Vec<(InputTensor, ShapeTracker)>) -> Vec<Tensor> {
        let on = scalar_value(&inputs[GateChoose::GATE as usize].0, &self.device) != 0.0;
        let taken = if on { GateChoose::ON } else { GateChoose::OFF };
        // The taken input itself where this op holds its last use, else a copy on the device.
        vec![inputs.swap_remove(taken as usize).0.cloned()]
    }

    fn custom(&mut self, key: &str, _: Box<dyn std::any::Any>) -> Option<Box<dyn std::any::Any>> {
        answer_gated_inputs(key, GateChoose::gated_inputs())
    }
}

/// [`GateMask`]: `gate == pass_when ? value : 0`.
#[derive(Debug, Clone, LuminalEqFalse)]
pub struct CudaGateMask {
    op: GateMask,
    device: Arc<CudaDevice>,
}

impl CudaGateMask {
    pub fn new(op: GateMask, device: &Arc<CudaDevice>) -> Self {
        Self {
            op,
            device: device.clone(),
        }
    }
}

impl Operator for CudaGateMask {
    fn process(&mut self, mut inputs: Vec<(InputTensor, ShapeTracker)>) -> Vec<Tensor> {
        let on = scalar_value(&inputs[GateMask::GATE as usize].0, &self.device) != 0.0;
        if on == self.op.pass_when {
            vec![inputs.swap_remove(GateMask::VALUE as usize).0.cloned()]
        } else {
            let zeros = self
                .device
                .alloc_zeros::<f32>(self.op.len)
                .expect("GPU allocation");
            vec![device_tensor(zeros)]
        }
    }

    fn custom(&mut self, key: &str, _: Box<dyn std::any::Any>) -> Option<Box<dyn std::any::Any>> {
        answer_gated_inputs(key, self.op.gated_inputs())
    }
}
