use luminal::prelude::{symbolic::Expression, *};

use super::{
    linear::Linear,
    parameters::{ParameterRef, Parameters},
};
use crate::config::BertConfig;

/// `pooler.*`: tanh of a dense layer over the first ([CLS]) token.
pub struct BertPooler<C: BertConfig> {
    pub dense: Linear<C::Hidden, C::Hidden>,
}

impl<C: BertConfig> BertPooler<C> {
    pub fn new(cx: &mut Graph) -> Self {
        Self {
            dense: Linear::new(cx),
        }
    }

    pub fn forward(
        &self,
        hidden: GraphTensor<(C::Batch, C::Seq, C::Hidden)>,
    ) -> GraphTensor<(C::Batch, C::Hidden)> {
        let first = hidden
            .slice((.., ..Expression::from(1), ..))
            .contiguous()
            .reshape::<(C::Batch, C::Hidden)>();
        self.dense.forward_2d(first).tanh()
    }
}

impl<C: BertConfig> Parameters for BertPooler<C> {
    fn collect_parameters(&self, prefix: &str, out: &mut Vec<ParameterRef>) {
        self.dense
            .collect_parameters(&format!("{prefix}dense."), out);
    }
}
