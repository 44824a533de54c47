use std::path::Path;

use super::{Backend, ForwardProgram};
use crate::{
    config::BertConfig,
    hf::{LoadReport, MissingPolicy},
    nn::{BertModel, Parameters},
    Result,
};

/// The encoder of a checkpoint: token batches in, last hidden states `[batch, seq, hidden]` out.
/// No dropping: dropping is a training-time thing.
pub type HiddenStateProgram<C> = ForwardProgram<
    C,
    (
        <C as BertConfig>::Batch,
        <C as BertConfig>::Seq,
        <C as BertConfig>::Hidden,
    ),
>;

/// Compiles the encoder of the checkpoint in `dir` for `backend` and loads its weights.
pub fn hidden_state_program<C: BertConfig>(
    dir: &Path,
    backend: Backend,
) -> Result<(HiddenStateProgram<C>, LoadReport)> {
    ForwardProgram::from_checkpoint(
        dir,
        backend,
        MissingPolicy::Refuse,
        |graph, inputs, settings| {
            let model = BertModel::<C>::new(graph, settings, false);
            (model.forward(inputs), model.parameters(""))
        },
    )
}
