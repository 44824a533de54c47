use luminal::prelude::{symbolic::Expression, *};

use super::{
    attention::attention_mask_bias,
    embeddings::BertEmbeddings,
    encoder::BertEncoder,
    encoder_drops::EncoderDrops,
    gather::gather_rows,
    masked_lm_loss::PredictionLogits,
    mlm_head::BertMlmHead,
    parameters::{ParameterRef, Parameters},
    pooler::BertPooler,
};
use crate::{
    config::{BertConfig, BertSettings},
    data::batch::TokenBatch,
};

/// The graph inputs of one batch: token ids, token type ids and the 0/1 padding mask, all
/// `[batch, seq]` (luminal tensors are float; ids are exact in f32 below 2^24).
pub struct BertInputs<C: BertConfig> {
    pub input_ids: GraphTensor<(C::Batch, C::Seq)>,
    pub token_type_ids: GraphTensor<(C::Batch, C::Seq)>,
    pub attention_mask: GraphTensor<(C::Batch, C::Seq)>,
}

impl<C: BertConfig> BertInputs<C> {
    pub fn new(cx: &mut Graph) -> Self {
        Self {
            input_ids: cx.named_tensor("input_ids"),
            token_type_ids: cx.named_tensor("token_type_ids"),
            attention_mask: cx.named_tensor("attention_mask"),
        }
    }

    /// Sets the three inputs to a full batch's values.
    pub fn feed(&self, cx: &mut Graph, batch: &TokenBatch) {
        assert_eq!(batch.input_ids.len(), C::DIMS.batch_size * C::DIMS.seq_len);
        for (tensor, values) in [
            (self.input_ids, &batch.input_ids),
            (self.token_type_ids, &batch.token_type_ids),
            (self.attention_mask, &batch.attention_mask),
        ] {
            let values: Vec<f32> = values.iter().map(|&v| v as f32).collect();
            cx.set_tensor(tensor.id, 0, Tensor::new(values));
        }
    }
}

/// `BertModel`: embeddings, encoder and (optionally) the pooler.
pub struct BertModel<C: BertConfig> {
    pub embeddings: BertEmbeddings<C>,
    pub encoder: BertEncoder<C>,
    pub pooler: Option<BertPooler<C>>,
}

impl<C: BertConfig> BertModel<C> {
    pub fn new(cx: &mut Graph, settings: &BertSettings, with_pooler: bool) -> Self {
        Self {
            embeddings: BertEmbeddings::new(cx, settings),
            encoder: BertEncoder::new(cx, settings),
            pooler: with_pooler.then(|| BertPooler::new(cx)),
        }
    }

    /// The last hidden state, `[batch, seq, hidden]`.
    pub fn forward(&self, inputs: &BertInputs<C>) -> GraphTensor<(C::Batch, C::Seq, C::Hidden)> {
        let hidden = self
            .embeddings
            .forward(inputs.input_ids, inputs.token_type_ids);
        self.encoder
            .forward(hidden, attention_mask_bias(inputs.attention_mask))
    }
}

impl<C: BertConfig> Parameters for BertModel<C> {
    fn collect_parameters(&self, prefix: &str, out: &mut Vec<ParameterRef>) {
        self.embeddings
            .collect_parameters(&format!("{prefix}embeddings."), out);
        self.encoder
            .collect_parameters(&format!("{prefix}encoder."), out);
        if let Some(pooler) = &self.pooler {
            pooler.collect_parameters(&format!("{prefix}pooler."), out);
        }
    }
}

/// `BertForMaskedLM`: the encoder under `bert.` and the MLM head under `cls.predictions.`.
pub struct BertForMaskedLM<C: BertConfig> {
    pub bert: BertModel<C>,
    pub mlm_head: BertMlmHead<C>,
}

impl<C: BertConfig> BertForMaskedLM<C> {
    pub fn new(cx: &mut Graph, settings: &BertSettings) -> Self {
        Self {
            bert: BertModel::new(cx, settings, false),
            mlm_head: BertMlmHead::new(cx, settings),
        }
    }

    /// Vocabulary logits of every position, `[batch, seq, vocab]`.
    pub fn forward(&self, inputs: &BertInputs<C>) -> GraphTensor<(C::Batch, C::Seq, C::Vocab)> {
        let padded = self.mlm_head.forward(
            self.bert.forward(inputs),
            self.bert.embeddings.word_embeddings,
        );
        if C::DIMS.logit_width() == C::DIMS.vocab_size {
            return GraphTensor::from_id(padded.id, padded.shape, padded.graph_ref);
        }
        let vocab = Expression::from(C::DIMS.vocab_size);
        let logits = padded.slice((.., .., ..vocab)).contiguous();
        // The slice keeps exactly `Vocab` columns; luminal types a sliced axis as dynamic.
        GraphTensor::from_id(logits.id, logits.shape, logits.graph_ref)
    }
}

impl<C: BertConfig> BertForMaskedLM<C> {
    /// Vocabulary logits at the predicted positions only, `[predictions, logit width]` (the columns
    /// past the vocabulary are padding, see [`BertMlmHead`]), as the decoder's product and its
    /// bias, which the loss adds: `positions` holds flat token indexes (`row * seq + column`) into
    /// the batch. Pretraining predicts about 15% of the positions, so this skips most of the MLM
    /// head's work. `drops` is the training step's dropping ([`EncoderDrops::none`] for the full
    /// model).
    pub fn forward_at(
        &self,
        inputs: &BertInputs<C>,
        positions: GraphTensor<(C::Predictions,)>,
        drops: &EncoderDrops<C>,
    ) -> PredictionLogits<C> {
        let embedded = self
            .bert
            .embeddings
            .forward(inputs.input_ids, inputs.token_type_ids);
        let hidden = self
            .bert
            .encoder
            .forward_dropping(embedded, attention_mask_bias(inputs.attention_mask), drops)
            .reshape::<(C::Tokens, C::Hidden)>();
        let predicted =
            gather_rows(hidden, positions).reshape::<(Const<1>, C::Predictions, C::Hidden)>();
        let terms = self
            .mlm_head
            .decoder_terms(predicted, self.bert.embeddings.word_embeddings);
        PredictionLogits::<C> {
            product: terms.product.reshape::<(C::Predictions, C::LogitWidth)>(),
            bias: terms.bias,
        }
    }
}

impl<C: BertConfig> Parameters for BertForMaskedLM<C> {
    fn collect_parameters(&self, prefix: &str, out: &mut Vec<ParameterRef>) {
        self.bert.collect_parameters(&format!("{prefix}bert."), out);
        self.mlm_head
            .collect_parameters(&format!("{prefix}cls.predictions."), out);
    }
}
