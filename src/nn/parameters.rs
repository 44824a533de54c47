use luminal::prelude::*;

/// How a parameter is initialised when a checkpoint does not provide it (BERT's scheme).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum ParameterInit {
    /// Normal(0, initializer_range): weight matrices and embeddings.
    Normal,
    Zeros,
    Ones,
}

/// A trainable tensor of the graph under its Hugging Face name.
#[derive(Debug, Clone)]
pub struct ParameterRef {
    pub name: String,
    pub id: NodeIndex,
    pub shape: Vec<usize>,
    pub init: ParameterInit,
}

impl ParameterRef {
    pub fn numel(&self) -> usize {
        self.shape.iter().product()
    }
}

/// A module that owns parameters, listed under their checkpoint names.
pub trait Parameters {
    /// Appends this module's parameters, each name prefixed by `prefix` (which ends in '.' or is empty).
    fn collect_parameters(&self, prefix: &str, out: &mut Vec<ParameterRef>);

    fn parameters(&self, prefix: &str) -> Vec<ParameterRef> {
        let mut out = Vec::new();
        self.collect_parameters(prefix, &mut out);
        out
    }
}

/// Creates a named graph input for a parameter of shape `S`.
pub(crate) fn new_parameter<S: Shape>(cx: &mut Graph, name: &str) -> GraphTensor<S> {
    let tensor = cx.named_tensor::<S>(name);
    tensor.keep();
    tensor
}

pub(crate) fn parameter_ref<S: Shape>(
    prefix: &str,
    name: &str,
    tensor: GraphTensor<S>,
    init: ParameterInit,
) -> ParameterRef {
    ParameterRef {
        name: format!("{prefix}{name}"),
        id: tensor.id,
        shape: S::realized_shape()
            .iter()
            .map(|d| d.to_usize().expect("parameters have static shapes"))
            .collect(),
        init,
    }
}
