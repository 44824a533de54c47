use std::path::Path;

use luminal::prelude::*;

use super::Backend;
use crate::{
    config::{BertConfig, BertSettings},
    data::batch::TokenBatch,
    hf::{load_weights, HfBertConfig, LoadReport, MissingPolicy},
    nn::{BertInputs, ParameterRef},
    Result,
};

/// A compiled forward pass of some part of BERT: a token batch in, one tensor `O` out, with the
/// parameters resident in the graph between runs.
pub struct ForwardProgram<C: BertConfig, O: Shape> {
    // Boxed: graph tensors point at their graph, so it must not move.
    graph: Box<Graph>,
    inputs: BertInputs<C>,
    output: GraphTensor<O>,
    parameters: Vec<ParameterRef>,
}

impl<C: BertConfig, O: Shape> ForwardProgram<C, O> {
    /// Builds a graph with `build` (which returns the output and the parameters it created),
    /// compiles it for `backend`, and leaves the parameters unset.
    pub fn compile(
        backend: Backend,
        build: impl FnOnce(&mut Graph, &BertInputs<C>) -> (GraphTensor<O>, Vec<ParameterRef>),
    ) -> Result<Self> {
        let mut graph = Box::new(Graph::new());
        let mut inputs = BertInputs::<C>::new(&mut graph);
        let (output, mut parameters) = build(&mut graph, &inputs);
        let mut output = output.retrieve();
        let mut remap: Vec<&mut NodeIndex> = vec![
            &mut inputs.input_ids.id,
            &mut inputs.token_type_ids.id,
            &mut inputs.attention_mask.id,
            &mut output.id,
        ];
        remap.extend(parameters.iter_mut().map(|p| &mut p.id));
        backend.compile(&mut graph, remap)?;
        Ok(Self {
            graph,
            inputs,
            output,
            parameters,
        })
    }

    /// Reads `dir`'s `config.json` (refusing one that does not match `C`), builds and compiles the
    /// graph with the checkpoint's settings, and loads its weights.
    pub fn from_checkpoint(
        dir: &Path,
        backend: Backend,
        policy: MissingPolicy<'_>,
        build: impl FnOnce(
            &mut Graph,
            &BertInputs<C>,
            &BertSettings,
        ) -> (GraphTensor<O>, Vec<ParameterRef>),
    ) -> Result<(Self, LoadReport)> {
        let config = HfBertConfig::read(&dir.join("config.json"))?;
        config.check_matches::<C>()?;
        let settings = config.settings().for_inference();
        let mut program = Self::compile(backend, |graph, inputs| build(graph, inputs, &settings))?;
        let (values, report) = load_weights(dir, &program.parameters, &settings, policy)?;
        program.set_parameters(values);
        Ok((program, report))
    }

    pub fn parameters(&self) -> &[ParameterRef] {
        &self.parameters
    }

    /// Sets every parameter's values, in the order of [`parameters`](Self::parameters).
    pub fn set_parameters(&mut self, values: Vec<Vec<f32>>) {
        assert_eq!(values.len(), self.parameters.len());
        for (parameter, values) in self.parameters.iter().zip(values) {
            assert_eq!(values.len(), parameter.numel(), "{}", parameter.name);
            self.graph.set_tensor(parameter.id, 0, Tensor::new(values));
        }
    }

    /// The output for a full batch, row-major.
    pub fn run(&mut self, batch: &TokenBatch) -> Vec<f32> {
        self.inputs.feed(&mut self.graph, batch);
        self.graph.execute();
        let values = super::output_values(self.output);
        self.output.drop();
        values
    }
}
