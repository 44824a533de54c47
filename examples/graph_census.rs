//! The ops of a compiled BERT-base training graph (forward and backward, batch 32 x 128) by kind,
//! and the largest by the elements they read: shows which contractions a backend's passes left as
//! an elementwise product and a sum (a product over all three matrix dimensions), and any op whose
//! view outgrows 32-bit indexing.
//! Run: `cargo run --release --example graph_census [--features cuda] -- [cpu|cuda]`.
use std::collections::BTreeMap;

use dropbert::{
    config::BertSettings,
    drop::DropPlan,
    runtime::{profile::input_shapes, Backend, MaskedLmGraph},
};

dropbert::bert_config! {
    pub BertBase {
        vocab: 30522, hidden: 768, layers: 12, heads: 12, intermediate: 3072,
        max_positions: 512, type_vocab: 2, seq: 128, batch: 32,
        layout: PostLn, token_drop: off, layer_drop: off,
    }
}

fn main() {
    let backend: Backend = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "cpu".into())
        .parse()
        .expect("cpu or cuda");
    let mut program =
        MaskedLmGraph::<BertBase>::build(&BertSettings::default(), true, &DropPlan::none())
            .expect("the graph builds");
    program
        .compile(backend, Vec::new())
        .expect("the graph compiles");
    let graph = &program.graph;
    let mut counts: BTreeMap<String, usize> = BTreeMap::new();
    let mut sized = Vec::new();
    for node in graph.graph.node_indices() {
        let op = format!("{:?}", graph.graph.node_weight(node).expect("live node"));
        let kind: String = op
            .chars()
            .take_while(|c| !c.is_whitespace() && *c != '{')
            .collect();
        *counts.entry(kind.clone()).or_default() += 1;
        let views = input_shapes(graph, node);
        let largest = graph
            .get_sources(node)
            .iter()
            .filter_map(|(_, _, view)| view.n_elements().to_usize())
            .max()
            .unwrap_or(0);
        sized.push((largest, kind, views));
    }
    sized.sort_by_key(|s| std::cmp::Reverse(s.0));
    println!("largest inputs ({backend}):");
    for (elements, kind, views) in sized.iter().take(20) {
        let marker = if *elements > i32::MAX as usize {
            " > 2^31"
        } else {
            ""
        };
        println!("{elements:>14}{marker} {kind} {}", views.join(" "));
    }
    println!(
        "{} ops read views of more than 2^31 elements",
        sized.iter().filter(|s| s.0 > i32::MAX as usize).count()
    );
    for node in graph.graph.node_indices() {
        let op = format!("{:?}", graph.graph.node_weight(node).expect("live node"));
        if op.starts_with("CudaContraction(kernel)") {
            println!("{op}");
        }
    }
    for (kind, count) in counts {
        println!("{kind:>24} x{count}");
    }
}
