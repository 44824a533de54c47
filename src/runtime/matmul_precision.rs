use super::Backend;
use std::{
    fmt,
    str::FromStr,
    sync::atomic::{AtomicU8, Ordering},
};

/// How matrix products run on the GPU. Every mode reads and writes float32 buffers and
/// accumulates in float32, so the weights (the master copies), activations and optimizer state
/// stay float32; the modes differ in what the tensor cores multiply. The CPU always computes in
/// float32.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum MatmulPrecision {
    /// Strict float32 (no tensor cores).
    #[default]
    Fp32,
    /// Inputs rounded to TF32 (a 10-bit mantissa), as PyTorch's
    /// `torch.backends.cuda.matmul.allow_tf32`.
    Tf32,
    /// Inputs rounded to bf16 (a 7-bit mantissa) on the way into the tensor cores, which run at
    /// twice their TF32 rate: the matmul half of PyTorch's bf16 autocast.
    Bf16,
}

// Process-wide, like the cuBLAS math mode it selects: a program compiled after
// `MatmulPrecision::select_for` uses it.
static SELECTED: AtomicU8 = AtomicU8::new(0);

impl MatmulPrecision {
    /// Selects the precision of the programs compiled from now on for `backend`; fails for a
    /// GPU mode on the CPU.
    pub fn select_for(self, backend: Backend) -> crate::Result<()> {
        if backend == Backend::Cpu && self != MatmulPrecision::Fp32 {
            return Err(crate::DropbertError::InvalidInput(format!(
                "--matmul {self} is a GPU mode; the CPU computes in fp32"
            )));
        }
        SELECTED.store(self as u8, Ordering::Relaxed);
        Ok(())
    }

    /// The precision programs are compiled with now.
    pub fn selected() -> Self {
        match SELECTED.load(Ordering::Relaxed) {
            0 => MatmulPrecision::Fp32,
            1 => MatmulPrecision::Tf32,
            _ => MatmulPrecision::Bf16,
        }
    }
}

impl FromStr for MatmulPrecision {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text {
            "fp32" => Ok(MatmulPrecision::Fp32),
            "tf32" => Ok(MatmulPrecision::Tf32),
            "bf16" => Ok(MatmulPrecision::Bf16),
            other => Err(format!(
                "unknown matmul precision {other:?}: expected \"fp32\", \"tf32\" or \"bf16\""
            )),
        }
    }
}

impl fmt::Display for MatmulPrecision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            MatmulPrecision::Fp32 => "fp32",
            MatmulPrecision::Tf32 => "tf32",
            MatmulPrecision::Bf16 => "bf16",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_what_it_prints() {
        for precision in [
            MatmulPrecision::Fp32,
            MatmulPrecision::Tf32,
            MatmulPrecision::Bf16,
        ] {
            assert_eq!(precision.to_string().parse(), Ok(precision));
        }
        assert!("fp16".parse::<MatmulPrecision>().is_err());
    }

    #[test]
    fn the_cpu_refuses_the_gpu_modes() {
        for precision in [MatmulPrecision::Tf32, MatmulPrecision::Bf16] {
            let error = precision.select_for(Backend::Cpu).unwrap_err();
            assert!(error.to_string().contains("GPU mode"), "{error}");
            assert_eq!(MatmulPrecision::selected(), MatmulPrecision::Fp32);
        }
    }
}
