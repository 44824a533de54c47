use std::time::Instant;

use clap::Args;
use rand::{rngs::StdRng, SeedableRng};
use serde_json::json;

use crate::{
    config::{BertConfig, BertSettings},
    data::tokenizer::SpecialTokenIds,
    drop::{DropPlan, LayerDropSchedule, TokenDropSettings},
    hf::initial_values,
    nn::Dropout,
    optim::OptimizerSettings,
    runtime::{
        device_memory, reset_device_memory_peak, Backend, DeviceMemory, MatmulPrecision, StepClock,
    },
    train::{synthetic_batch, QueuedStep, TrainingProgram},
    Result,
};

#[derive(Debug, Args)]
pub struct BenchArgs {
    /// cpu or cuda (default: cuda where the binary was built with it).
    #[arg(long)]
    backend: Option<Backend>,
    /// Steps run before timing.
    #[arg(long, default_value_t = 2)]
    warmup: usize,
    /// Steps timed.
    #[arg(long, default_value_t = 10)]
    steps: usize,
    /// Steps counted as already taken: where the step sits in the schedules (layer dropping's
    /// keep probability falls from 1 toward theta_bar as training goes on).
    #[arg(long, default_value_t = 0)]
    at_step: u64,
    /// Matrix products on the GPU: fp32, or on the tensor cores with tf32 or bf16 inputs
    /// (float32 weights, activations and accumulation in every mode).
    #[arg(long, default_value_t = MatmulPrecision::Fp32)]
    matmul: MatmulPrecision,
    /// Print the result as one JSON object.
    #[arg(long)]
    json: bool,
    /// Read each step's results before queueing the next, so that the device waits for the host
    /// between steps (as every step did before run 76), for comparison.
    #[arg(long)]
    one_at_a_time: bool,
}

/// Times full training steps (forward, backward, clipping, AdamW) of the configuration on a
/// random batch, with its drops at their defaults and dropout 0.1: the median and mean step times
/// (CUDA events on the GPU), tokens per second, matmul FLOP rate, the process's peak host memory and,
/// on the GPU, the memory the program holds between steps and its peak during them.
pub fn run<C: BertConfig>(args: &BenchArgs) -> Result<()> {
    let dims = C::DIMS;
    let backend = args.backend.unwrap_or_else(Backend::best_available);
    args.matmul.select_for(backend)?;
    if args.steps == 0 {
        return Err(crate::DropbertError::InvalidInput(
            "--steps must be at least 1".into(),
        ));
    }
    let settings = BertSettings {
        dropout: Dropout::new(0.1, 0.1),
        ..BertSettings::default()
    };
    let special = SpecialTokenIds::for_random_ids(dims.vocab_size);
    let plan = DropPlan::for_training::<C>(
        dims.token_drop.map(|_| TokenDropSettings::default()),
        dims.layer_drop.map(LayerDropSchedule::from),
        special,
    )?;
    let compile_started = Instant::now();
    let mut program =
        TrainingProgram::<C>::compile(backend, &settings, OptimizerSettings::default(), 0, &plan)?;
    let compile_seconds = compile_started.elapsed().as_secs_f64();
    let mut rng = StdRng::seed_from_u64(0);
    let weights = program
        .parameters()
        .iter()
        .map(|p| initial_values(p, &settings, &mut rng))
        .collect();
    program.start_at(weights, args.at_step);
    if let Some((token_drop, special)) = &plan.token_drop {
        program.set_importance(token_drop.initial_table(dims.vocab_size, *special));
    }
    let batch = synthetic_batch(&dims, 0);
    for _ in 0..args.warmup {
        program.step(&batch)?;
    }
    let resident = device_memory(backend);
    reset_device_memory_peak(backend);
    // As `pretrain` runs them, each step is queued before the last one's results are read, so
    // that the device goes from one step to the next without waiting for the host to read and
    // prepare. One step is queued before the clock starts, so that every timed step starts
    // behind another.
    let mut filler = (!args.one_at_a_time)
        .then(|| program.queue_step(&batch))
        .transpose()?;
    let mut clock = StepClock::start(backend);
    let mut in_flight: Option<QueuedStep> = None;
    let mut timed = Vec::with_capacity(args.steps);
    let mut nodes_skipped = 0usize;
    for _ in 0..args.steps {
        let queued = program.queue_step(&batch)?;
        clock.mark();
        nodes_skipped += program.nodes_skipped();
        if let Some(filler) = filler.take() {
            filler.finish();
        }
        timed.extend(in_flight.take().map(QueuedStep::finish));
        if args.one_at_a_time {
            timed.push(queued.finish());
        } else {
            in_flight = Some(queued);
        }
    }
    timed.extend(in_flight.map(QueuedStep::finish));
    let seconds = clock.intervals();
    let host_seconds: Vec<f64> = timed.iter().map(|s| s.execute_host_seconds).collect();
    let prepare_seconds: Vec<f64> = timed.iter().map(|s| s.prepare_host_seconds).collect();
    let uploads_seconds: Vec<f64> = timed
        .iter()
        .filter_map(|s| s.uploads_host_seconds)
        .collect();
    let flops: f64 = timed.iter().map(|s| s.flops).sum();
    let blocks_run: usize = timed
        .iter()
        .map(|s| s.gates.iter().filter(|&&on| on).count())
        .sum();
    let peak = device_memory(backend);
    let gpu = resident.zip(peak).map(|(resident, peak)| DeviceMemory {
        in_use_bytes: resident.in_use_bytes,
        peak_bytes: peak.peak_bytes,
    });
    // Layer dropping's work changes from step to step: its speedup is the ratio of mean step
    // times, as its FLOP ratio is the ratio of mean FLOPs.
    let mean = seconds.iter().sum::<f64>() / seconds.len() as f64;
    let median = median_of(seconds);
    let median_host = median_of(host_seconds);
    let median_prepare = median_of(prepare_seconds);
    let median_uploads = (!uploads_seconds.is_empty()).then(|| median_of(uploads_seconds));
    let tokens = (dims.batch_size * dims.seq_len) as f64;
    let flops_per_step = flops / args.steps as f64;
    let peak_memory_bytes = peak_resident_bytes();
    if args.json {
        println!(
            "{}",
            json!({
                "configuration": C::NAME, "backend": backend.to_string(),
                "matmul": args.matmul.to_string(),
                "batch": dims.batch_size, "seq": dims.seq_len,
                "warmup": args.warmup, "steps": args.steps, "at_step": args.at_step,
                "queued_ahead": !args.one_at_a_time,
                "median_step_seconds": median, "mean_step_seconds": mean,
                "tokens_per_second": tokens / median,
                "median_execute_host_seconds": median_host,
                "median_prepare_host_seconds": median_prepare,
                "median_uploads_host_seconds": median_uploads,
                "flops_per_step": flops_per_step,
                "mean_blocks_run": blocks_run as f64 / args.steps as f64,
                "mean_nodes_skipped": nodes_skipped as f64 / args.steps as f64,
                "tflops_per_second": flops_per_step / median / 1e12,
                "compile_seconds": compile_seconds,
                "peak_host_memory_bytes": peak_memory_bytes,
                "gpu_resident_bytes": gpu.map(|m| m.in_use_bytes),
                "peak_gpu_memory_bytes": gpu.map(|m| m.peak_bytes),
            })
        );
    } else {
        println!(
            "{} on {backend} ({} matmuls): median step {:.4} s (mean {:.4} s) over {} steps {} ({} warm-up; the host queued it in {:.4} s), {:.0} tokens/s, {:.3} TFLOP/s of matmuls; compiled in {:.1} s; peak host memory {}{}",
            C::NAME,
            args.matmul,
            median,
            mean,
            args.steps,
            if args.one_at_a_time {
                "one at a time"
            } else {
                "queued ahead"
            },
            args.warmup,
            median_host,
            tokens / median,
            flops_per_step / median / 1e12,
            compile_seconds,
            peak_memory_bytes.map_or("unknown".into(), mebibytes),
            gpu.map_or(String::new(), |m| format!(
                "; GPU memory {} held between steps, peak {} during them",
                mebibytes(m.in_use_bytes),
                mebibytes(m.peak_bytes)
            )),
        );
    }
    Ok(())
}

fn mebibytes(bytes: u64) -> String {
    format!("{:.0} MiB", bytes as f64 / 1048576.0)
}

/// The process's peak resident memory (Linux's VmHWM), where the system says it.
fn peak_resident_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

fn median_of(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}
