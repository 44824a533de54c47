//! dropbert's own graph ops, beyond luminal's primitives: indexed row gathers and scatters
//! (embeddings, token dropping), the adjoint of a view (gradients through slices and pads), token
//! dropping's choice of kept tokens and importance update, the gates of switchable blocks (layer
//! dropping), dropout masks drawn from a random key, GELU, softmax, attention's probabilities
//! (scale, padding bias, softmax and dropout in one) and LayerNorm's normalization as single ops,
//! the masked-LM loss's cross-entropy and accuracy per prediction, and the optimizer's fused
//! steps (the gradients' sum of squares, AdamW over a group of tensors).
//! Each carries a CPU kernel; the differentiable ones have a backward rule in
//! [`crate::autograd`].
mod adamw_step;
mod attention_probabilities;
mod cross_entropy;
mod dropout_mask;
mod gate;
mod gather_rows;
mod gelu;
mod importance_update;
mod input_values;
mod label_column;
mod label_is_argmax;
mod last_axis;
mod normalize;
mod replace_rows;
mod scatter_add_rows;
mod select_kept_tokens;
mod softmax;
mod sum_of_squares;
mod view_adjoint;

pub use adamw_step::{
    adamw_element, AdamWConstants, AdamWScalars, AdamWStep, ADAMW_SCALAR_INPUTS, MAX_GROUP,
};
pub use attention_probabilities::{
    attention_probabilities, AttentionDropout, AttentionProbabilities,
    AttentionProbabilitiesGradient, AttentionRows,
};
pub use cross_entropy::{
    cross_entropy, cross_entropy_gradient_row, cross_entropy_row, CrossEntropy,
    CrossEntropyGradient, LogitRows,
};
pub use dropout_mask::{
    dropout_mask, key_from_values, key_values, mask_value, philox4x32, philox_key, random_bits,
    DropoutMask, RandomKey, ELEMENTS_PER_COUNTER, KEY_VALUES, PHILOX_KEY_STEPS, PHILOX_MULTIPLIERS,
    PHILOX_ROUNDS, RANDOM_BITS,
};
pub use gate::{answer_gated_inputs, gate_choose, GateChoose, GateMask, GatedInputs, GATED_INPUTS};
pub use gather_rows::{gather_rows, GatherRows};
pub use gelu::{
    bias_gelu, erf, gelu, gelu_derivative, gelu_value, Gelu, GeluGradient, ERF_A, ERF_P,
};
pub use importance_update::{importance_update, update_importance, ImportanceUpdate};
pub use input_values::{input_buffer, input_values};
pub use label_is_argmax::{label_is_argmax, label_is_argmax_row, LabelIsArgmax};
pub use normalize::{
    normalize_gradient_row, normalize_last_axis, normalize_row, row_statistics, Normalize,
    NormalizeGradient,
};
pub use replace_rows::{replace_rows, ReplaceRows, ZeroRows};
pub use scatter_add_rows::ScatterAddRows;
pub use select_kept_tokens::{select_kept_tokens, KeptTokenRule, SelectKeptTokens, SequenceTokens};
pub use softmax::{
    softmax_gradient_row, softmax_in_place, softmax_last_axis, softmax_row, Softmax,
    SoftmaxGradient,
};
pub use sum_of_squares::{sum_of_squares, SumOfSquares, MAX_SUMMED};
pub use view_adjoint::ViewAdjoint;
