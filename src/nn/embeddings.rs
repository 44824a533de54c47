use luminal::prelude::{symbolic::Expression, *};

use super::{
    dropout::Dropout,
    gather::gather_rows,
    layer_norm::LayerNorm,
    parameters::{new_parameter, parameter_ref, ParameterInit, ParameterRef, Parameters},
};
use crate::config::{BertConfig, BertSettings};

/// `embeddings.*`: word + position + token type embeddings, then LayerNorm.
pub struct BertEmbeddings<C: BertConfig> {
    pub word_embeddings: GraphTensor<(C::Vocab, C::Hidden)>,
    pub position_embeddings: GraphTensor<(C::MaxPositions, C::Hidden)>,
    pub token_type_embeddings: GraphTensor<(C::TypeVocab, C::Hidden)>,
    pub layer_norm: LayerNorm<C::Hidden>,
    pub dropout: Dropout,
}

impl<C: BertConfig> BertEmbeddings<C> {
    pub fn new(cx: &mut Graph, settings: &BertSettings) -> Self {
        Self {
            word_embeddings: new_parameter(cx, "word_embeddings.weight"),
            position_embeddings: new_parameter(cx, "position_embeddings.weight"),
            token_type_embeddings: new_parameter(cx, "token_type_embeddings.weight"),
            layer_norm: LayerNorm::new(cx, settings.layer_norm_eps),
            dropout: settings.dropout.clone(),
        }
    }

    pub fn forward(
        &self,
        input_ids: GraphTensor<(C::Batch, C::Seq)>,
        token_type_ids: GraphTensor<(C::Batch, C::Seq)>,
    ) -> GraphTensor<(C::Batch, C::Seq, C::Hidden)> {
        let words = gather_rows(self.word_embeddings, input_ids.reshape::<(C::Tokens,)>());
        let token_types = gather_rows(
            self.token_type_embeddings,
            token_type_ids.reshape::<(C::Tokens,)>(),
        );
        let seq_len = C::DIMS.seq_len;
        let positions = self
            .position_embeddings
            .slice((..Expression::from(seq_len), ..));
        // The slice keeps exactly `Seq` rows; luminal types a sliced axis as dynamic.
        let positions = GraphTensor::<(C::Seq, C::Hidden)>::from_id(
            positions.id,
            positions.shape,
            positions.graph_ref,
        );
        let summed = (words + token_types).reshape::<(C::Batch, C::Seq, C::Hidden)>()
            + positions.expand::<(C::Batch, C::Seq, C::Hidden), Axis<0>>();
        self.dropout.hidden(self.layer_norm.forward(summed))
    }
}

impl<C: BertConfig> Parameters for BertEmbeddings<C> {
    fn collect_parameters(&self, prefix: &str, out: &mut Vec<ParameterRef>) {
        out.push(parameter_ref(
            prefix,
            "word_embeddings.weight",
            self.word_embeddings,
            ParameterInit::Normal,
        ));
        out.push(parameter_ref(
            prefix,
            "position_embeddings.weight",
            self.position_embeddings,
            ParameterInit::Normal,
        ));
        out.push(parameter_ref(
            prefix,
            "token_type_embeddings.weight",
            self.token_type_embeddings,
            ParameterInit::Normal,
        ));
        self.layer_norm
            .collect_parameters(&format!("{prefix}LayerNorm."), out);
    }
}
