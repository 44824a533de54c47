use std::{fmt, str::FromStr};

use luminal::prelude::*;

/// Where a compiled graph runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Cpu,
    /// An NVIDIA GPU through `luminal_cuda` (builds with `--features cuda`).
    Cuda,
}

impl Backend {
    /// CUDA where this binary was built with it, else the CPU.
    pub fn best_available() -> Self {
        if cfg!(feature = "cuda") {
            Backend::Cuda
        } else {
            Backend::Cpu
        }
    }

    /// Compiles `graph` for this backend; `remap` holds every node id the caller keeps using.
    pub fn compile<T: ToIdsMut>(self, graph: &mut Graph, remap: T) -> crate::Result<()> {
        match self {
            Backend::Cpu => {
                crate::compile::cpu::keep_freed_buffers();
                // Not luminal's whole CPUCompiler: its gather pass takes any
                // arange-compare-multiply-sum chain for an embedding lookup, and autograd emits
                // such chains; dropbert gathers with its own indexed op instead.
                graph.compile(
                    (
                        GenericCompiler::default(),
                        crate::compile::cpu::DropbertCpuCompiler::default(),
                        // Only unary chains the elementwise fusion left alone remain for it.
                        UnaryFusionCompiler,
                    ),
                    remap,
                );
                if std::env::var_os("DROPBERT_PROFILE").is_some() {
                    graph.compile(super::profile::Profiler::default(), ());
                }
                Ok(())
            }
            #[cfg(feature = "cuda")]
            Backend::Cuda => {
                graph.compile(
                    (
                        GenericCompiler::default(),
                        crate::compile::cuda::DropbertCudaCompiler,
                    ),
                    remap,
                );
                if std::env::var_os("DROPBERT_PROFILE").is_some() {
                    let profiler = super::profile::Profiler {
                        device: Some(super::profile::DeviceProfiling {
                            time_op: crate::compile::cuda::op_timeline::time_op,
                            settle: crate::compile::cuda::op_timeline::settle,
                        }),
                    };
                    graph.compile(profiler, ());
                }
                Ok(())
            }
            #[cfg(not(feature = "cuda"))]
            Backend::Cuda => Err(crate::DropbertError::InvalidInput(
                "this binary was built without CUDA: rebuild it with `--features cuda`".into(),
            )),
        }
    }
}

impl Backend {
    /// For a compiled `graph` whose `inputs` are replaced after every execution by values it
    /// computed (weights, optimizer state, the importance table): on the GPU, their readers read
    /// them where they stay, on the device, without an upload node each (see
    /// `compile::cuda::device_inputs`); each execution must then follow
    /// [`upload_host_values`](Self::upload_host_values). Nothing to do on the CPU.
    pub fn keep_inputs_on_device(self, graph: &mut Graph, inputs: &[NodeIndex]) {
        #[cfg(feature = "cuda")]
        if self == Backend::Cuda {
            graph.compile(crate::compile::cuda::read_in_place(inputs.to_vec()), ());
        }
        // Without CUDA, only CPU graphs exist (compiling for CUDA fails).
        #[cfg(not(feature = "cuda"))]
        let _ = (graph, inputs);
    }

    /// Before an execution of a graph with inputs kept on the device: uploads those of
    /// `inputs` that were set on the host since.
    pub fn upload_host_values(self, graph: &mut Graph, inputs: &[NodeIndex]) {
        #[cfg(feature = "cuda")]
        if self == Backend::Cuda {
            crate::compile::cuda::upload_host_values(graph, inputs);
        }
        #[cfg(not(feature = "cuda"))]
        let _ = (graph, inputs);
    }
}

impl FromStr for Backend {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text {
            "cpu" => Ok(Backend::Cpu),
            "cuda" => Ok(Backend::Cuda),
            other => Err(format!(
                "unknown backend {other:?}: expected \"cpu\" or \"cuda\""
            )),
        }
    }
}

impl fmt::Display for Backend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Backend::Cpu => "cpu",
            Backend::Cuda => "cuda",
        })
    }
}
