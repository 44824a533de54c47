use clap::Args;

use crate::{config::BertConfig, drop::CostReport, Result};

#[derive(Debug, Args)]
pub struct InfoArgs {
    /// Print the cost report as one JSON object (for scripts and `cargo xtask sweep`).
    #[arg(long)]
    json: bool,
}

pub fn run<C: BertConfig>(args: &InfoArgs) -> Result<()> {
    let dims = C::DIMS;
    let cost = CostReport::of::<C>(parameter_count(&dims))?;
    if args.json {
        println!(
            "{}",
            serde_json::to_string(&cost).expect("the cost report serializes")
        );
        return Ok(());
    }
    println!("configuration: {}", C::NAME);
    println!(
        "layers {} hidden {} heads {} (head size {}) intermediate {}",
        dims.num_layers,
        dims.hidden_size,
        dims.num_heads,
        dims.head_dim(),
        dims.intermediate_size
    );
    println!(
        "vocab {} max positions {} token types {}",
        dims.vocab_size, dims.max_positions, dims.type_vocab_size
    );
    println!(
        "batch {} x seq {} | block layout {}",
        dims.batch_size, dims.seq_len, dims.layout
    );
    match dims.token_drop {
        Some(drop) => println!(
            "token dropping: split layer {}, {} of {} tokens kept",
            drop.drop_layer, drop.kept_tokens, dims.seq_len
        ),
        None => println!("token dropping: off"),
    }
    match dims.layer_drop {
        Some(drop) => println!(
            "progressive layer dropping: theta_bar {}, gamma {}",
            drop.theta_bar, drop.gamma
        ),
        None => println!("progressive layer dropping: off"),
    }
    println!("parameters: {}", cost.parameters);
    println!(
        "matmul FLOPs of one training step: {:.4e} (counted off the graph: {:.4e}); without dropping {:.4e}, ratio {:.3}",
        cost.flops_per_step, cost.flops_per_step_counted, cost.flops_per_step_full, cost.flop_ratio
    );
    if let Some(expected) = cost.expected_flops_at_theta_bar {
        println!(
            "  expected once layer dropping reaches theta_bar: {expected:.4e} (ratio {:.3})",
            cost.flops_per_step_full / expected
        );
    }
    println!(
        "activations kept for the backward pass: {:.1} MiB (float32)",
        cost.activation_bytes as f64 / (1024.0 * 1024.0)
    );
    Ok(())
}

/// Trainable parameters of `BertForMaskedLM` with these dimensions (tied decoder counted once).
pub fn parameter_count(dims: &crate::config::BertDims) -> usize {
    let h = dims.hidden_size;
    let embeddings = (dims.vocab_size + dims.max_positions + dims.type_vocab_size) * h + 2 * h;
    let block =
        4 * (h * h + h) + 2 * (h * dims.intermediate_size) + dims.intermediate_size + h + 4 * h;
    let final_norm = match dims.layout {
        crate::config::BlockLayout::PostLn => 0,
        crate::config::BlockLayout::PreLn => 2 * h,
    };
    let mlm_head = h * h + h + 2 * h + dims.vocab_size;
    embeddings + dims.num_layers * block + final_norm + mlm_head
}
