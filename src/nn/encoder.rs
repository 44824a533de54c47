use luminal::prelude::*;

use super::{
    encoder_block::BertLayer,
    encoder_drops::EncoderDrops,
    gather::gather_rows,
    layer_norm::LayerNorm,
    parameters::{ParameterRef, Parameters},
};
use crate::{
    config::{BertConfig, BertSettings, BlockLayout},
    ops::replace_rows,
};

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

    /// The training forward pass with the step's dropping: token dropping from the split layer
    /// (its queries the kept tokens, its keys and values all tokens; the following layers the
    /// kept tokens only; the last layer all tokens again, the dropped ones as they were when
    /// dropped), and switchable blocks under progressive layer dropping. With neither, it is
    /// [`forward`](Self::forward).
    pub fn forward_dropping(
        &self,
        hidden: GraphTensor<(C::Batch, C::Seq, C::Hidden)>,
        mask_bias: GraphTensor<(C::Batch, C::Seq)>,
        drops: &EncoderDrops<C>,
    ) -> GraphTensor<(C::Batch, C::Seq, C::Hidden)> {
        let split = match (C::DIMS.token_drop, drops.kept_positions) {
            (Some(token_drop), Some(kept)) => Some((token_drop.drop_layer, kept)),
            _ => None,
        };
        let mut hidden = hidden;
        for index in 0..self.layers.len() {
            if let Some((drop_layer, kept)) = split {
                if index == drop_layer {
                    let last = self.layers.len() - 1;
                    hidden =
                        self.forward_token_dropping(hidden, mask_bias, kept, index..last, drops);
                    return self.finish(self.block(last, hidden, hidden, mask_bias, drops));
                }
            }
            hidden = self.block(index, hidden, hidden, mask_bias, drops);
        }
        self.finish(hidden)
    }

    /// Layers `middle` (the split layer first) on the kept tokens; returns all tokens again,
    /// the kept ones put back at their positions.
    fn forward_token_dropping(
        &self,
        hidden: GraphTensor<(C::Batch, C::Seq, C::Hidden)>,
        mask_bias: GraphTensor<(C::Batch, C::Seq)>,
        kept: GraphTensor<(C::KeptTokens,)>,
        middle: std::ops::Range<usize>,
        drops: &EncoderDrops<C>,
    ) -> GraphTensor<(C::Batch, C::Seq, C::Hidden)> {
        let flat = hidden.reshape::<(C::Tokens, C::Hidden)>();
        let queries = gather_rows(flat, kept).reshape::<(C::Batch, C::Kept, C::Hidden)>();
        let kept_mask = gather_rows(mask_bias.reshape::<(C::Tokens, Const<1>)>(), kept)
            .reshape::<(C::Batch, C::Kept)>();
        let mut kept_hidden = self.block(middle.start, queries, hidden, mask_bias, drops);
        for index in middle.start + 1..middle.end {
            kept_hidden = self.block(index, kept_hidden, kept_hidden, kept_mask, drops);
        }
        replace_rows(
            flat,
            kept_hidden.reshape::<(C::KeptTokens, C::Hidden)>(),
            kept,
        )
        .reshape::<(C::Batch, C::Seq, C::Hidden)>()
    }

    /// Block `index`, switchable where layer dropping is on.
    fn block<Q: Dimension, K: Dimension>(
        &self,
        index: usize,
        queries: GraphTensor<(C::Batch, Q, C::Hidden)>,
        keys_values: GraphTensor<(C::Batch, K, C::Hidden)>,
        mask_bias: GraphTensor<(C::Batch, K)>,
        drops: &EncoderDrops<C>,
    ) -> GraphTensor<(C::Batch, Q, C::Hidden)> {
        let layer = &self.layers[index];
        match &drops.layer_gates {
            Some(gates) => gates.switchable(index, queries, |scale| {
                layer.forward_scaled(queries, keys_values, mask_bias, Some(scale))
            }),
            None => layer.forward_queries(queries, keys_values, mask_bias),
        }
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
