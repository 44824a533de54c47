use luminal::prelude::*;

use super::{
    dropout::Dropout,
    linear::Linear,
    parameters::{ParameterRef, Parameters},
};
use crate::config::BertConfig;
use crate::ops::bias_gelu;

/// `intermediate.dense`, GELU, `output.dense` (the block's LayerNorm is placed by
/// [`BertLayer`](super::BertLayer)). Its parameters sit at the block's top level, as in Hugging Face.
pub struct BertFeedForward<C: BertConfig> {
    pub intermediate: Linear<C::Hidden, C::Intermediate>,
    pub output: Linear<C::Intermediate, C::Hidden>,
    pub dropout: Dropout,
}

impl<C: BertConfig> BertFeedForward<C> {
    pub fn new(cx: &mut Graph, dropout: &Dropout) -> Self {
        Self {
            intermediate: Linear::new(cx),
            output: Linear::new(cx),
            dropout: dropout.clone(),
        }
    }

    pub fn forward<S: Dimension>(
        &self,
        input: GraphTensor<(C::Batch, S, C::Hidden)>,
    ) -> GraphTensor<(C::Batch, S, C::Hidden)> {
        let intermediate = &self.intermediate;
        let activated = bias_gelu(intermediate.product(input), intermediate.bias);
        self.dropout.hidden(self.output.forward(activated))
    }
}

impl<C: BertConfig> Parameters for BertFeedForward<C> {
    fn collect_parameters(&self, prefix: &str, out: &mut Vec<ParameterRef>) {
        self.intermediate
            .collect_parameters(&format!("{prefix}intermediate.dense."), out);
        self.output
            .collect_parameters(&format!("{prefix}output.dense."), out);
    }
}
