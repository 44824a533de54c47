use luminal::prelude::*;

use super::parameters::{new_parameter, parameter_ref, ParameterInit, ParameterRef, Parameters};
use crate::ops::normalize_last_axis;

/// LayerNorm over the last (hidden) axis, with the checkpoint's epsilon.
pub struct LayerNorm<H: Dimension> {
    pub weight: GraphTensor<(H,)>,
    pub bias: GraphTensor<(H,)>,
    pub epsilon: f32,
}

impl<H: Dimension> LayerNorm<H> {
    pub fn new(cx: &mut Graph, epsilon: f32) -> Self {
        Self {
            weight: new_parameter(cx, "LayerNorm.weight"),
            bias: new_parameter(cx, "LayerNorm.bias"),
            epsilon,
        }
    }

    pub fn forward<B: Dimension, S: Dimension>(
        &self,
        input: GraphTensor<(B, S, H)>,
    ) -> GraphTensor<(B, S, H)> {
        normalize_last_axis(input, self.epsilon) * self.weight.expand::<(B, S, H), Axes2<0, 1>>()
            + self.bias.expand::<(B, S, H), Axes2<0, 1>>()
    }
}

impl<H: Dimension> Parameters for LayerNorm<H> {
    fn collect_parameters(&self, prefix: &str, out: &mut Vec<ParameterRef>) {
        out.push(parameter_ref(
            prefix,
            "weight",
            self.weight,
            ParameterInit::Ones,
        ));
        out.push(parameter_ref(
            prefix,
            "bias",
            self.bias,
            ParameterInit::Zeros,
        ));
    }
}
