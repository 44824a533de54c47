use luminal::prelude::*;

use super::{
    encoder_block::BertLayer,
    layer_norm::LayerNorm,
    parameters::{ParameterRef, Parameters},
};
use crate::config::{BertConfig, BertSettings, BlockLayout};

/// `encoder.*`: the stack of blocks; Pre-LN adds `encoder.FinalLayerNorm` after the last block.
pub struct BertEncoder<C: BertConfig> {
    pub layers: Vec<BertLayer<C>>,
    pub final_norm: Option<LayerNorm<C::Hidden>>,
}

impl<C: BertConfig> BertEncoder<C> {
    pub fn new(cx: &mut Graph, settings: &BertSettings) -> Self {
        Self {
            layers: (0..C::DIMS.num_layers)
                .map(|_| BertLayer::new(cx, settings))
                .collect(),
            final_norm: match C::DIMS.layout {
                BlockLayout::PostLn => None,
                BlockLayout::PreLn => Some(LayerNorm::new(cx, settings.layer_norm_eps)),
            },
        }
    }

    pub fn forward(
        &self,
        hidden: GraphTensor<(C::Batch, C::Seq, C::Hidden)>,
        mask_bias: GraphTensor<(C::Batch, C::Seq)>,
    ) -> GraphTensor<(C::Batch, C::Seq, C::Hidden)> {
        let hidden = self
            .layers
            .iter()
            .fold(hidden, |hidden, layer| layer.forward(hidden, mask_bias));
        self.finish(hidden)
    }

    /// Applies the final LayerNorm of the Pre-LN layout (nothing for Post-LN).
    pub fn finish<S: Dimension>(
        &self,
        hidden: GraphTensor<(C::Batch, S, C::Hidden)>,
    ) -> GraphTensor<(C::Batch, S, C::Hidden)> {
        match &self.final_norm {
            Some(norm) => norm.forward(hidden),
            None => hidden,
        }
    }
}

impl<C: BertConfig> Parameters for BertEncoder<C> {
    fn collect_parameters(&self, prefix: &str, out: &mut Vec<ParameterRef>) {
        for (index, layer) in self.layers.iter().enumerate() {
            layer.collect_parameters(&format!("{prefix}layer.{index}."), out);
        }
        if let Some(norm) = &self.final_norm {
            norm.collect_parameters(&format!("{prefix}FinalLayerNorm."), out);
        }
    }
}
