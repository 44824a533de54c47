//! The CUDA C of a fused elementwise program ([`FusedElementwise`]), specialized to its shapes:
//! one thread per element of the iteration space (in a grid-stride loop), the flat index split
//! into coordinates and each load's offset computed from them with sizes, strides and immediates
//! as constants. [`ElementwiseSource::eval`] runs the same plan on the CPU, element by element as
//! a thread does, so that tests can hold the kernel's arithmetic against the CPU kernel.
use super::{
    bf16_rounding::{output_buffers, output_parameters, Store, BF16_BITS, BF16_VALUE},
    flat_index::{Coordinates, IndexType, Offset},
};
use crate::compile::cpu::{BinaryKind, FusedElementwise, Operand, Step, UnaryKind};

/// One step of the kernel, as [`Step`] with each load's offset resolved over the coordinates.
#[derive(Debug, Clone, PartialEq)]
enum Line {
    Load {
        input: usize,
        at: Offset,
        dst: usize,
    },
    Unary {
        kind: UnaryKind,
        src: usize,
        dst: usize,
    },
    Binary {
        kind: BinaryKind,
        a: Operand,
        b: Operand,
        dst: usize,
    },
}

#[derive(Debug, Clone, PartialEq)]
pub struct ElementwiseSource {
    coordinates: Coordinates,
    len: usize,
    index: IndexType,
    inputs: usize,
    registers: usize,
    lines: Vec<Line>,
    /// The register of each output.
    outputs: Vec<usize>,
    /// How each output is stored.
    stores: Vec<Store>,
    /// How each input is held in memory.
    input_kinds: Vec<InputKind>,
}

/// How a kernel input is held in memory. Every kind is loaded as the float32 value it stands
/// for, so the arithmetic after the load is the same whatever the kinds.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum InputKind {
    Float,
    /// A product cuBLAS writes in bf16 (see `bf16_products`).
    Bf16,
    /// A dropout mask packed one bit a value, 32 values a word (see `packed_dropout_masks`):
    /// a set bit stands for `scale`, a clear one for 0.
    MaskBits {
        scale: f32,
    },
}

impl ElementwiseSource {
    /// The kernel of `op`, which has `inputs` inputs.
    pub fn new(op: &FusedElementwise, inputs: usize) -> Self {
        let sizes = op.sizes();
        let coordinates = Coordinates::new(sizes);
        assert_eq!(
            coordinates.len(),
            op.len(),
            "merged axes keep every element"
        );
        let lines: Vec<Line> = op
            .steps()
            .iter()
            .map(|step| match step {
                Step::Load {
                    input,
                    strides,
                    offset,
                    dst,
                } => Line::Load {
                    input: *input,
                    at: Offset {
                        offset: *offset,
                        strides: strides.clone(),
                    },
                    dst: *dst,
                },
                Step::Unary { kind, src, dst } => Line::Unary {
                    kind: *kind,
                    src: *src,
                    dst: *dst,
                },
                Step::Binary { kind, a, b, dst } => Line::Binary {
                    kind: *kind,
                    a: *a,
                    b: *b,
                    dst: *dst,
                },
            })
            .collect();
        let largest_offset = lines
            .iter()
            .filter_map(|line| match line {
                Line::Load { at, .. } => Some(at.max(sizes)),
                _ => None,
            })
            .max()
            .unwrap_or(0);
        Self {
            coordinates,
            len: op.len(),
            index: IndexType::for_max(op.len().max(largest_offset + 1)),
            inputs,
            registers: op.registers(),
            lines,
            outputs: op.output_registers().to_vec(),
            stores: vec![Store::Float; op.output_registers().len()],
            input_kinds: vec![InputKind::Float; inputs],
        }
    }

    /// The same kernel reading `inputs` in bf16 too.
    pub fn reading_bf16(self, inputs: &[u8]) -> Self {
        inputs.iter().fold(self, |source, &input| {
            source.reading(input as usize, InputKind::Bf16)
        })
    }

    /// The same kernel reading input `input` as `kind` says.
    pub fn reading(mut self, input: usize, kind: InputKind) -> Self {
        assert!(
            input < self.inputs,
            "the kernel reads {} inputs",
            self.inputs
        );
        self.input_kinds[input] = kind;
        self
    }

    /// How each input is held in memory.
    pub fn input_kinds(&self) -> &[InputKind] {
        &self.input_kinds
    }

    /// Input `input`'s element `at` as a float.
    fn load(&self, input: usize, at: &str) -> String {
        match self.input_kinds[input] {
            InputKind::Float => format!("in{input}[{at}]"),
            InputKind::Bf16 => format!("bf16_value(in{input}[{at}])"),
            InputKind::MaskBits { scale } => format!(
                "(((in{input}[({at}) >> 5] >> (({at}) & 31u)) & 1u) ? {} : 0.0f)",
                float_literal(scale)
            ),
        }
    }

    /// The same kernel storing its outputs as `stores` say (one per output).
    pub fn with_stores(mut self, stores: Vec<Store>) -> Self {
        assert_eq!(stores.len(), self.outputs.len(), "one store per output");
        self.stores = stores;
        self
    }

    /// The buffers the kernel writes, in order: each one's output and whether it is bf16.
    pub fn output_buffers(&self) -> Vec<(usize, bool)> {
        output_buffers(&self.stores)
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn output_count(&self) -> usize {
        self.outputs.len()
    }

    /// The kernel: `dropbert_kernel(out0.., copies.., in0..)` (see [`Store`]).
    pub fn source(&self) -> String {
        let ty = self.index.c_name();
        let parameters: Vec<String> = output_parameters(&self.stores)
            .into_iter()
            .chain((0..self.inputs).map(|i| {
                let ty = match self.input_kinds[i] {
                    InputKind::Float => "float",
                    InputKind::Bf16 => "unsigned short",
                    InputKind::MaskBits { .. } => "unsigned int",
                };
                format!("const {ty} *__restrict__ in{i}")
            }))
            .collect();
        let mut body = self.coordinates.render("i", "c", self.index);
        if self.registers > 0 {
            let registers: Vec<String> = (0..self.registers).map(|r| format!("r{r}")).collect();
            body.push(format!("float {};", registers.join(", ")));
        }
        for line in &self.lines {
            body.push(match line {
                Line::Load { input, at, dst } => {
                    format!(
                        "r{dst} = {};",
                        self.load(*input, &at.render("c", self.index))
                    )
                }
                Line::Unary { kind, src, dst } => {
                    format!("r{dst} = {};", unary(*kind, &format!("r{src}")))
                }
                Line::Binary { kind, a, b, dst } => {
                    let (a, b) = (self.operand(*a), self.operand(*b));
                    format!("r{dst} = {};", binary(*kind, &a, &b))
                }
            });
        }
        for (output, (register, store)) in self.outputs.iter().zip(&self.stores).enumerate() {
            body.push(store.statement(output, "i", &format!("r{register}")));
        }
        let mut helpers = String::new();
        if self.stores.iter().any(|&store| store != Store::Float) {
            helpers.push_str(BF16_BITS);
        }
        if self.input_kinds.contains(&InputKind::Bf16) {
            helpers.push_str(BF16_VALUE);
        }
        format!(
            r#"{helpers}
extern "C" __global__ void dropbert_kernel({parameters}) {{
    for ({ty} i = ({ty})blockIdx.x * blockDim.x + threadIdx.x; i < {len};
         i += ({ty})gridDim.x * blockDim.x) {{
        {body}
    }}
}}"#,
            parameters = parameters.join(", "),
            len = self.index.literal(self.len),
            body = body.join("\n        "),
        )
    }

    /// The outputs, computed as the kernel's threads compute them (an input read in bf16 given as
    /// the values its bf16 buffer holds).
    #[cfg(test)]
    pub fn eval(&self, inputs: &[&[f32]]) -> Vec<Vec<f32>> {
        let mut outs = vec![Vec::with_capacity(self.len); self.outputs.len()];
        let mut registers = vec![0.0f32; self.registers];
        for i in 0..self.len {
            let coordinates = self.coordinates.eval(i);
            for line in &self.lines {
                let (dst, value) = match line {
                    Line::Load { input, at, dst } => (dst, inputs[*input][at.eval(&coordinates)]),
                    Line::Unary { kind, src, dst } => (dst, kind.apply(registers[*src])),
                    Line::Binary { kind, a, b, dst } => {
                        let value = |o: &Operand| match *o {
                            Operand::Reg(r) => registers[r],
                            Operand::Imm(x) => x,
                            Operand::Scalar(input) => inputs[input][0],
                        };
                        (dst, kind.apply(value(a), value(b)))
                    }
                };
                registers[*dst] = value;
            }
            for (out, &register) in outs.iter_mut().zip(&self.outputs) {
                out.push(registers[register]);
            }
        }
        outs
    }

    /// An operand as C: a register, an immediate by its exact bits, or element 0 of an input.
    fn operand(&self, operand: Operand) -> String {
        match operand {
            Operand::Reg(r) => format!("r{r}"),
            Operand::Imm(x) => float_literal(x),
            Operand::Scalar(input) => self.load(input, "0"),
        }
    }
}

/// `x` as C, by its exact bits.
fn float_literal(x: f32) -> String {
    format!("__uint_as_float(0x{:08x}u) /* {x:?} */", x.to_bits())
}

/// [`UnaryKind::apply`] in CUDA C (IEEE-rounded division and square root: NVRTC's defaults).
fn unary(kind: UnaryKind, x: &str) -> String {
    match kind {
        UnaryKind::Exp2 => format!("exp2f({x})"),
        UnaryKind::Log2 => format!("log2f({x})"),
        UnaryKind::Sin => format!("sinf({x})"),
        UnaryKind::Sqrt => format!("sqrtf({x})"),
        UnaryKind::Recip => format!("1.0f / {x}"),
    }
}

/// [`BinaryKind::apply`] in CUDA C: Rust's `%` on floats truncates, as `fmodf` does.
fn binary(kind: BinaryKind, a: &str, b: &str) -> String {
    match kind {
        BinaryKind::Add => format!("{a} + {b}"),
        BinaryKind::Mul => format!("{a} * {b}"),
        BinaryKind::Mod => format!("fmodf({a}, {b})"),
        BinaryKind::LessThan => format!("({a} < {b}) ? 1.0f : 0.0f"),
    }
}

/// Fused programs for tests: one per feature the source generator handles.
#[cfg(test)]
pub(super) mod examples {
    use crate::compile::cpu::{BinaryKind, FusedElementwise, Operand, Program, UnaryKind};

    const UNARY: [UnaryKind; 5] = [
        UnaryKind::Exp2,
        UnaryKind::Log2,
        UnaryKind::Sin,
        UnaryKind::Sqrt,
        UnaryKind::Recip,
    ];
    const BINARY: [BinaryKind; 4] = [
        BinaryKind::Add,
        BinaryKind::Mul,
        BinaryKind::Mod,
        BinaryKind::LessThan,
    ];

    /// `(kernel, its inputs' lengths)`.
    pub fn programs() -> Vec<(FusedElementwise, Vec<usize>)> {
        let mut programs = Vec::new();

        // GELU-like over [6, 10] with a bias broadcast over rows: contiguous, broadcast and
        // immediate operands, two outputs.
        let mut p = Program::default();
        let x = p.load(0, vec![10, 1], 0);
        let bias = p.load(1, vec![0, 1], 0);
        let shifted = p.binary(BinaryKind::Add, x, bias);
        let half = p.binary(BinaryKind::Mul, shifted, Operand::Imm(0.5));
        let scaled = p.binary(
            BinaryKind::Mul,
            shifted,
            Operand::Imm(-std::f32::consts::LOG2_E),
        );
        let e = p.unary(UnaryKind::Exp2, scaled);
        let one_plus = p.binary(BinaryKind::Add, e, Operand::Imm(1.0));
        let r = p.unary(UnaryKind::Recip, one_plus);
        let out = p.binary(BinaryKind::Mul, half, r);
        let outputs = [p.materialized(out), p.materialized(shifted)];
        programs.push((FusedElementwise::new(&[6, 10], p, &outputs), vec![60, 10]));

        // A permuted read ([4, 5, 3] read as [3, 4, 5] with axes rotated) with an offset into a
        // larger buffer, a scalar input, every unary and binary kind, and ten outputs.
        let mut p = Program::default();
        let a = p.load(0, vec![1, 15, 3], 2);
        let b = p.load(1, vec![20, 5, 1], 0);
        let s = p.load(2, vec![0, 0, 0], 0);
        assert!(matches!(s, Operand::Scalar(2)));
        let mut value = p.binary(BinaryKind::Mul, a, s);
        for (k, kind) in UNARY.into_iter().enumerate() {
            let positive = p.binary(BinaryKind::Mul, value, value);
            let positive = p.binary(BinaryKind::Add, positive, Operand::Imm(0.25 + k as f32));
            value = p.unary(kind, positive);
        }
        let mut outputs = vec![];
        for kind in BINARY {
            let combined = p.binary(kind, value, b);
            outputs.push(p.materialized(combined));
            let flipped = p.binary(kind, b, Operand::Imm(0.75));
            outputs.push(p.materialized(flipped));
        }
        // A unary op of the scalar (a load of element 0 of its own) and a constant output.
        let root = p.unary(UnaryKind::Sqrt, s);
        let root = p.binary(BinaryKind::Add, root, a);
        outputs.push(p.materialized(root));
        outputs.push(p.materialized(Operand::Imm(3.0)));
        programs.push((
            FusedElementwise::new(&[3, 4, 5], p, &outputs),
            vec![62, 60, 1],
        ));

        // Axes that merge ([2, 1, 3, 4] all contiguous but for a broadcast over the first) and
        // a transposed read.
        let mut p = Program::default();
        let a = p.load(0, vec![12, 12, 4, 1], 0);
        let b = p.load(1, vec![0, 0, 4, 1], 0);
        let t = p.load(2, vec![1, 0, 8, 2], 0);
        let ab = p.binary(BinaryKind::Add, a, b);
        let out = p.binary(BinaryKind::LessThan, ab, t);
        let outputs = [p.materialized(out)];
        programs.push((
            FusedElementwise::new(&[2, 1, 3, 4], p, &outputs),
            vec![24, 12, 24],
        ));
        programs
    }

    /// Beyond 2^31 elements: 64-bit indices (for NVRTC only: too large to evaluate).
    pub fn huge() -> Vec<(FusedElementwise, Vec<usize>)> {
        let mut p = Program::default();
        let a = p.load(0, vec![1, 70_000], 0);
        let b = p.load(1, vec![0, 1], 0);
        let sum = p.binary(BinaryKind::Add, a, b);
        let outputs = [p.materialized(sum)];
        let op = FusedElementwise::new(&[70_000, 40_000], p, &outputs);
        vec![(op, vec![70_000 * 40_000, 40_000])]
    }
}

#[cfg(test)]
mod tests {
    use luminal::{
        op::{InputTensor, Operator},
        prelude::*,
    };
    use rand::{rngs::StdRng, Rng, SeedableRng};

    use super::*;

    fn cpu_kernel(op: &FusedElementwise, inputs: &[Vec<f32>]) -> Vec<Vec<f32>> {
        let mut op = op.clone();
        let inputs = inputs
            .iter()
            .map(|values| {
                (
                    InputTensor::Owned(Tensor::new(values.clone())),
                    ShapeTracker::new(&[]),
                )
            })
            .collect();
        op.process(inputs)
            .into_iter()
            .map(|t| t.data.as_any().downcast_ref::<Vec<f32>>().unwrap().clone())
            .collect()
    }

    #[test]
    fn the_kernels_arithmetic_matches_the_cpu_kernel_bit_for_bit() {
        let mut rng = StdRng::seed_from_u64(11);
        for (op, lengths) in examples::programs() {
            let inputs: Vec<Vec<f32>> = lengths
                .iter()
                .map(|&n| (0..n).map(|_| rng.gen_range(-3.0..3.0)).collect())
                .collect();
            let source = ElementwiseSource::new(&op, inputs.len());
            let slices: Vec<&[f32]> = inputs.iter().map(Vec::as_slice).collect();
            let actual = source.eval(&slices);
            let expected = cpu_kernel(&op, &inputs);
            assert_eq!(actual.len(), expected.len());
            for (a, e) in actual.iter().zip(&expected) {
                assert_eq!(a.len(), e.len());
                for (x, y) in a.iter().zip(e) {
                    assert!(x.to_bits() == y.to_bits() || x.is_nan() && y.is_nan());
                }
            }
        }
    }

    #[test]
    fn sources_bake_in_sizes_strides_and_exact_immediates() {
        let programs = examples::programs();
        let source = ElementwiseSource::new(&programs[0].0, 2).source();
        assert!(source.contains("(i) % 10u"), "{source}");
        assert!(source.contains("in1[c1]"), "{source}");
        assert!(source.contains("__uint_as_float(0x3f000000u)"), "{source}");
        assert!(source.contains("out1[i]"), "{source}");
        // The bias's broadcast keeps [6, 10] from merging into one axis.
        assert!(source.contains("in0[c0 * 10u + c1]"), "{source}");
        let source = ElementwiseSource::new(&programs[1].0, 3).source();
        assert!(source.contains("in2[0]"), "{source}");
        // [3, 4, 5]'s two inner axes merge for every read; `a` stays permuted.
        assert!(source.contains("in0[2u + c0 + c1 * 3u]"), "{source}");
        // [2, 1, 3, 4]: the unit axis drops, and [3, 4] merges for every read.
        let source = ElementwiseSource::new(&programs[2].0, 3).source();
        assert!(source.contains("i < 24u"), "{source}");
    }

    #[test]
    fn an_input_read_in_bf16_is_widened_where_it_is_loaded_and_nowhere_else() {
        let programs = examples::programs();
        let plain = ElementwiseSource::new(&programs[1].0, 3);
        let source = plain.clone().reading_bf16(&[1, 2]).source();
        assert!(source.contains("const float *__restrict__ in0"), "{source}");
        assert!(
            source.contains("const unsigned short *__restrict__ in1"),
            "{source}"
        );
        assert!(
            source.contains("const unsigned short *__restrict__ in2"),
            "{source}"
        );
        assert!(source.contains("bf16_value(in1[c0 * 20u + c1]"), "{source}");
        assert!(source.contains("bf16_value(in2[0])"), "{source}");
        assert!(!source.contains("bf16_value(in0"), "{source}");
        assert!(source.contains("__device__ float bf16_value"), "{source}");
        assert!(!plain.source().contains("bf16_value"));
        // The kernel's other lines are the plain kernel's.
        let body = |source: &str| -> Vec<String> {
            source
                .lines()
                .skip_while(|line| !line.contains("dropbert_kernel"))
                .skip(1)
                .map(|line| {
                    let widened =
                        line.contains("bf16_value(in1") || line.contains("bf16_value(in2");
                    let plain = line.contains("in1[") || line.contains("in2[");
                    if widened || plain {
                        "a load of in1 or in2".to_string()
                    } else {
                        line.to_string()
                    }
                })
                .collect()
        };
        assert_eq!(body(&source), body(&plain.source()));
        let kinds = plain.reading_bf16(&[2, 1, 2]).input_kinds().to_vec();
        assert_eq!(kinds, [InputKind::Float, InputKind::Bf16, InputKind::Bf16]);
    }

    #[test]
    fn a_packed_mask_input_reads_its_values_bit_and_its_scale_exactly() {
        let programs = examples::programs();
        let scale = 1.0f32 / 0.9;
        let source = ElementwiseSource::new(&programs[0].0, 2)
            .reading(0, InputKind::MaskBits { scale })
            .source();
        assert!(
            source.contains("const unsigned int *__restrict__ in0"),
            "{source}"
        );
        let bits = format!("__uint_as_float(0x{:08x}u)", scale.to_bits());
        assert!(
            source.contains(&format!(
                "(((in0[(c0 * 10u + c1) >> 5] >> ((c0 * 10u + c1) & 31u)) & 1u) ? {bits}"
            )),
            "{source}"
        );
    }
}
