//! One full training step (forward, backward, AdamW update) of BERT-tiny and BERT-mini at
//! batch 32 x 128 on the CPU. `benches/torch_cpu_step.py` measures PyTorch on the same model,
//! batch and machine; `benches/compare_cpu.sh` runs both (docs/perf-cpu.md has the results).
use criterion::{criterion_group, criterion_main, Criterion};
use dropbert::{
    config::{BertConfig, BertSettings},
    data::{batch::TokenBatch, mlm_batches::MlmBatch},
    drop::DropPlan,
    hf::initial_values,
    nn::Dropout,
    optim::OptimizerSettings,
    runtime::Backend,
    train::TrainingProgram,
};
use rand::{rngs::StdRng, Rng, SeedableRng};

dropbert::bert_config! {
    pub BertTinyBench {
        vocab: 30522, hidden: 128, layers: 2, heads: 2, intermediate: 512,
        max_positions: 512, type_vocab: 2, seq: 128, batch: 32,
        layout: PostLn, token_drop: off, layer_drop: off,
    }
}

dropbert::bert_config! {
    pub BertMiniBench {
        vocab: 30522, hidden: 256, layers: 4, heads: 4, intermediate: 1024,
        max_positions: 512, type_vocab: 2, seq: 128, batch: 32,
        layout: PostLn, token_drop: off, layer_drop: off,
    }
}

/// Random token ids, every position real, 15% of them predicted (the PyTorch script does the same).
fn synthetic_batch<C: BertConfig>() -> MlmBatch {
    let dims = C::DIMS;
    let tokens = dims.batch_size * dims.seq_len;
    let mut rng = StdRng::seed_from_u64(0);
    let input_ids: Vec<u32> = (0..tokens)
        .map(|_| rng.gen_range(1000..dims.vocab_size as u32))
        .collect();
    let labels = input_ids
        .iter()
        .map(|&id| {
            if rng.gen::<f64>() < 0.15 {
                id as i64
            } else {
                -100
            }
        })
        .collect();
    MlmBatch {
        tokens: TokenBatch {
            input_ids,
            token_type_ids: vec![0; tokens],
            attention_mask: vec![1; tokens],
            rows: dims.batch_size,
        },
        labels,
    }
}

fn bench_step<C: BertConfig>(c: &mut Criterion, name: &str) {
    let settings = BertSettings {
        dropout: Dropout::new(0.1, 0.1),
        ..BertSettings::default()
    };
    let mut program = TrainingProgram::<C>::compile(
        Backend::Cpu,
        &settings,
        OptimizerSettings::default(),
        0,
        &DropPlan::none(),
    )
    .unwrap();
    let mut rng = StdRng::seed_from_u64(0);
    let weights = program
        .parameters()
        .iter()
        .map(|p| initial_values(p, &settings, &mut rng))
        .collect();
    program.start(weights);
    let batch = synthetic_batch::<C>();
    let mut group = c.benchmark_group("train_step");
    group.sample_size(10);
    group.bench_function(name, |b| b.iter(|| program.step(&batch).unwrap()));
    group.finish();
}

fn train_step(c: &mut Criterion) {
    bench_step::<BertTinyBench>(c, "bert-tiny 32x128");
    bench_step::<BertMiniBench>(c, "bert-mini 32x128");
}

criterion_group!(benches, train_step);
criterion_main!(benches);
