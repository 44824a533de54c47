//! Lists the ops of a compiled training graph that still run luminal's interpreted kernels.
use dropbert::{config::BertSettings, nn::Dropout, optim::OptimizerSettings, runtime::{Backend, MaskedLmGraph}};

dropbert::bert_config! {
    pub Probe {
        vocab: 8192, hidden: 128, layers: 2, heads: 2, intermediate: 512,
        max_positions: 512, type_vocab: 2, seq: 128, batch: 16,
        layout: PostLn, token_drop: off, layer_drop: off,
    }
}

fn main() {
    let mut settings = BertSettings::default();
    settings.dropout = Dropout::new(0.1, 0.1);
    let mut graph = MaskedLmGraph::<Probe>::build(&settings, true).unwrap();
    let _ = OptimizerSettings::default();
    graph.compile(Backend::Cpu, Vec::new()).unwrap();
    let mut counts = std::collections::BTreeMap::new();
    for node in graph.graph.graph.node_indices() {
        let op = format!("{:?}", graph.graph.graph.node_weight(node).unwrap());
        let name: String = op.chars().take_while(|c| c.is_alphanumeric()).collect();
        let sources = graph.graph.get_sources(node);
        let elements: usize = sources.iter().map(|(_, _, v)| v.n_elements().to_usize().unwrap_or(0)).max().unwrap_or(0);
        let entry = counts.entry(name.clone()).or_insert((0usize, 0usize));
        entry.0 += 1;
        entry.1 += elements;
        if name == "Contraction" && elements > 1_000_000 {
            println!("{op}");
        }
        if ["Add", "Mul", "SumReduce", "MaxReduce", "LessThan", "Contiguous", "Mod", "ViewAdjoint"].contains(&name.as_str()) && elements > 100_000 {
            println!("interpreted {name}: {elements} elements, views {:?}", sources.iter().map(|(_, _, v)| (v.shape(), v.fake, v.is_sliced(), v.is_padded())).collect::<Vec<_>>());
        }
    }
    for (name, (count, elements)) in counts {
        println!("{name:>20} x{count:<5} {elements} elements");
    }
}
