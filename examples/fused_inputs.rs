//! The fused elementwise kernels of a compiled training graph (dropout on): how many there are,
//! the inputs they read in all, and the most one reads. Pre-LN, with and without layer dropping.
//! Run: `cargo run --release --example fused_inputs`.
use dropbert::{
    compile::cpu::FusedElementwise,
    config::{BertConfig, BertSettings},
    data::tokenizer::SpecialTokenIds,
    drop::{DropPlan, LayerDropSchedule},
    nn::Dropout,
    runtime::{Backend, MaskedLmGraph},
};

dropbert::bert_config! {
    pub PreLnProbe {
        vocab: 8192, hidden: 128, layers: 12, heads: 2, intermediate: 512,
        max_positions: 512, type_vocab: 2, seq: 128, batch: 4,
        layout: PreLn, token_drop: off, layer_drop: off,
    }
}

dropbert::bert_config! {
    pub LayerDropProbe {
        vocab: 8192, hidden: 128, layers: 12, heads: 2, intermediate: 512,
        max_positions: 512, type_vocab: 2, seq: 128, batch: 4,
        layout: PreLn, token_drop: off, layer_drop: { theta_bar: 0.5, gamma: 0.001 },
    }
}

fn census<C: BertConfig>(name: &str, plan: &DropPlan) {
    let settings = BertSettings {
        dropout: Dropout::new(0.1, 0.1),
        ..BertSettings::default()
    };
    let mut program = MaskedLmGraph::<C>::build(&settings, true, plan).unwrap();
    program.compile(Backend::Cpu, Vec::new()).unwrap();
    let graph = &program.graph;
    let reads: Vec<usize> = graph
        .graph
        .node_indices()
        .filter(|&n| {
            graph
                .graph
                .node_weight(n)
                .unwrap()
                .as_any()
                .is::<FusedElementwise>()
        })
        .map(|n| graph.get_sources(n).len())
        .collect();
    println!(
        "{name}: {} fused kernels, {} inputs in all, at most {}",
        reads.len(),
        reads.iter().sum::<usize>(),
        reads.iter().max().unwrap_or(&0)
    );
}

fn main() {
    census::<PreLnProbe>("Pre-LN", &DropPlan::none());
    let plan = DropPlan::for_training::<LayerDropProbe>(
        None,
        LayerDropProbe::DIMS.layer_drop.map(LayerDropSchedule::from),
        SpecialTokenIds::BERT_UNCASED,
    )
    .unwrap();
    census::<LayerDropProbe>("layer dropping", &plan);
}
