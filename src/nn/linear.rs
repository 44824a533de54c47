use luminal::prelude::*;

use super::parameters::{new_parameter, parameter_ref, ParameterInit, ParameterRef, Parameters};

/// `y = x W^T + b`, with `W` stored `[out, in]` as PyTorch and Hugging Face store it.
pub struct Linear<In: Dimension, Out: Dimension> {
    pub weight: GraphTensor<(Out, In)>,
    pub bias: GraphTensor<(Out,)>,
}

impl<In: Dimension, Out: Dimension> Linear<In, Out> {
    pub fn new(cx: &mut Graph) -> Self {
        Self {
            weight: new_parameter(cx, "linear.weight"),
            bias: new_parameter(cx, "linear.bias"),
        }
    }

    pub fn forward<B: Dimension, S: Dimension>(
        &self,
        input: GraphTensor<(B, S, In)>,
    ) -> GraphTensor<(B, S, Out)> {
        self.product(input) + self.bias.expand::<(B, S, Out), Axes2<0, 1>>()
    }

    /// `x W^T` without the bias, for an op that adds the bias itself.
    pub fn product<B: Dimension, S: Dimension>(
        &self,
        input: GraphTensor<(B, S, In)>,
    ) -> GraphTensor<(B, S, Out)> {
        input.matmul(self.weight.permute::<(In, Out), Axes2<1, 0>>())
    }

    /// The same for a batch of vectors.
    pub fn forward_2d<B: Dimension>(&self, input: GraphTensor<(B, In)>) -> GraphTensor<(B, Out)> {
        input.matmul(self.weight.permute::<(In, Out), Axes2<1, 0>>())
            + self.bias.expand::<(B, Out), Axis<0>>()
    }
}

impl<In: Dimension, Out: Dimension> Parameters for Linear<In, Out> {
    fn collect_parameters(&self, prefix: &str, out: &mut Vec<ParameterRef>) {
        out.push(parameter_ref(
            prefix,
            "weight",
            self.weight,
            ParameterInit::Normal,
        ));
        out.push(parameter_ref(
            prefix,
            "bias",
            self.bias,
            ParameterInit::Zeros,
        ));
    }
}
