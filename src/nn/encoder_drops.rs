use std::{cell::RefCell, collections::HashSet, rc::Rc};

use luminal::prelude::{petgraph::visit::NodeIndexable, *};

use crate::{autograd::GatedRegion, config::BertConfig};

/// What drives the dropping of one training step, as graph inputs fed by the host.
pub struct EncoderDrops<C: BertConfig> {
    /// Token dropping: the kept tokens of every sequence, as flat token indexes
    /// (`row * seq + position`), ascending within each row.
    pub kept_positions: Option<GraphTensor<(C::KeptTokens,)>>,
    /// Progressive layer dropping: one gate per block.
    pub layer_gates: Option<LayerGates>,
}

impl<C: BertConfig> EncoderDrops<C> {
    pub fn none() -> Self {
        Self {
            kept_positions: None,
            layer_gates: None,
        }
    }
}

/// The gates of switchable blocks: per block a gate (1 runs it, 0 makes it the identity) and the
/// scale of its sub-layer outputs (`1 / keep probability` in training, as DeepSpeed's Pre-LN
/// layer-drop model does), both scalars fed every step. Building the encoder records each
/// block's nodes, for the backward pass to gate.
pub struct LayerGates {
    pub gates: Vec<GraphTensor<()>>,
    pub scales: Vec<GraphTensor<()>>,
    regions: Rc<RefCell<Vec<GatedRegion>>>,
}

impl LayerGates {
    pub fn new(cx: &mut Graph, layers: usize) -> Self {
        Self {
            gates: (0..layers).map(|_| cx.named_tensor("layer gate")).collect(),
            scales: (0..layers)
                .map(|_| cx.named_tensor("layer scale"))
                .collect(),
            regions: Rc::default(),
        }
    }

    /// Runs `block` as a switchable block `layer`: its nodes are recorded as a gated region,
    /// and the result is `gate ? block(scale) : skip`.
    pub fn switchable<S: Shape>(
        &self,
        layer: usize,
        skip: GraphTensor<S>,
        block: impl FnOnce(GraphTensor<()>) -> GraphTensor<S>,
    ) -> GraphTensor<S> {
        let graph = skip.graph();
        let first = graph.graph.node_count();
        assert_eq!(
            first,
            graph.graph.node_bound(),
            "node indexes are dense while a model is built"
        );
        let output = block(self.scales[layer]);
        let last = skip.graph().graph.node_count();
        self.regions.borrow_mut().push(GatedRegion {
            gate: self.gates[layer].id,
            nodes: (first..last).map(NodeIndex::new).collect::<HashSet<_>>(),
        });
        crate::ops::gate_choose(self.gates[layer], output, skip)
    }

    /// The blocks built so far, for [`crate::autograd::add_backward`].
    pub fn regions(&self) -> Vec<GatedRegion> {
        self.regions.borrow().clone()
    }
}
