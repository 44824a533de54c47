//! Counts the ops of a compiled BERT-tiny training graph (forward and backward) by kind, and
//! lists those that still run luminal's interpreted kernels on large tensors: a quick check that
//! the CPU passes caught every contraction and elementwise op.
//! Run: `cargo run --release --example op_census`.
use std::collections::BTreeMap;

use dropbert::{
    config::BertSettings,
    nn::Dropout,
    runtime::{Backend, MaskedLmGraph},
};

dropbert::bert_config! {
    pub Probe {
        vocab: 8192, hidden: 128, layers: 2, heads: 2, intermediate: 512,
        max_positions: 512, type_vocab: 2, seq: 128, batch: 16,
        layout: PostLn, token_drop: off, layer_drop: off,
    }
}

const INTERPRETED: [&str; 8] = [
    "Add",
    "Mul",
    "Mod",
    "LessThan",
    "SumReduce",
    "MaxReduce",
    "Contiguous",
    "ViewAdjoint",
];

fn main() {
    let settings = BertSettings {
        dropout: Dropout::new(0.1, 0.1),
        ..BertSettings::default()
    };
    let mut program =
        MaskedLmGraph::<Probe>::build(&settings, true, &dropbert::drop::DropPlan::none()).unwrap();
    program.compile(Backend::Cpu, Vec::new()).unwrap();
    let graph = &program.graph;
    let mut counts: BTreeMap<String, usize> = BTreeMap::new();
    for node in graph.graph.node_indices() {
        let op = format!("{:?}", graph.graph.node_weight(node).unwrap());
        let kind: String = op.chars().take_while(|c| c.is_alphanumeric()).collect();
        *counts.entry(kind.clone()).or_default() += 1;
        let largest_input = graph
            .get_sources(node)
            .iter()
            .filter_map(|(_, _, view)| view.n_elements().to_usize())
            .max()
            .unwrap_or(0);
        if INTERPRETED.contains(&kind.as_str()) && largest_input > 100_000 {
            println!("interpreted: {kind} over {largest_input} elements");
        }
    }
    for (kind, count) in counts {
        println!("{kind:>16} x{count}");
    }
}
