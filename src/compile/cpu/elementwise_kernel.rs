use luminal::{
    op::{InputTensor, Operator},
    prelude::*,
};

use super::{
    exp2::exp2,
    parallel::{run_tasks, thread_count, Shared},
    strided_ops::BinaryKind,
    strided_view::{contiguous_strides, merge_axes},
};
use crate::ops::input_buffer;

/// Elements evaluated per step of the program: small enough that every register stays in L1.
const BLOCK: usize = 256;
/// Below this many element-steps, starting a second thread costs more than it saves.
const THREADING_WORK: usize = 1 << 16;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UnaryKind {
    Exp2,
    Log2,
    Sin,
    Sqrt,
    Recip,
}

impl UnaryKind {
    pub fn apply(self, x: f32) -> f32 {
        match self {
            UnaryKind::Exp2 => exp2(x),
            UnaryKind::Log2 => x.log2(),
            UnaryKind::Sin => x.sin(),
            UnaryKind::Sqrt => x.sqrt(),
            UnaryKind::Recip => x.recip(),
        }
    }
}

/// A value a step reads: a register, a number known at compile time, or the single element of
/// an input broadcast over the whole iteration space.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Operand {
    Reg(usize),
    Imm(f32),
    Scalar(usize),
}

/// One step of a fused program over a block of the iteration space; `dst` is a register that no
/// operand of the same step uses.
#[derive(Debug, Clone, PartialEq)]
pub enum Step {
    /// Input `input` read through strides over the iteration shape.
    Load {
        input: usize,
        strides: Vec<usize>,
        offset: usize,
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

/// A chain of luminal's elementwise primitives run as one loop: the program is evaluated block by
/// block over the (contiguous, row-major) iteration shape, so every intermediate lives in a
/// register block instead of a full tensor, and the blocks are split between the cores.
#[derive(Debug, Clone, PartialEq)]
pub struct FusedElementwise {
    sizes: Vec<usize>,
    len: usize,
    steps: Vec<Step>,
    /// The register holding each output, in output order.
    outputs: Vec<usize>,
    registers: usize,
}

/// A program in single-assignment form, as the fusion pass builds it: value `i` is step `i`'s
/// result, and steps name the values they read instead of registers.
#[derive(Debug, Clone, Default)]
pub struct Program {
    pub steps: Vec<Step>,
}

impl Program {
    fn push(&mut self, step: Step) -> Operand {
        self.steps.push(step);
        Operand::Reg(self.steps.len() - 1)
    }

    pub fn load(&mut self, input: usize, strides: Vec<usize>, offset: usize) -> Operand {
        if offset == 0 && strides.iter().all(|&s| s == 0) {
            return Operand::Scalar(input);
        }
        self.push(Step::Load {
            input,
            strides,
            offset,
            dst: 0,
        })
    }

    pub fn unary(&mut self, kind: UnaryKind, src: Operand) -> Operand {
        let src = match src {
            Operand::Imm(x) => return Operand::Imm(kind.apply(x)),
            Operand::Reg(value) => value,
            Operand::Scalar(input) => match self.push(Step::Load {
                input,
                strides: Vec::new(),
                offset: 0,
                dst: 0,
            }) {
                Operand::Reg(value) => value,
                _ => unreachable!(),
            },
        };
        self.push(Step::Unary { kind, src, dst: 0 })
    }

    pub fn binary(&mut self, kind: BinaryKind, a: Operand, b: Operand) -> Operand {
        if let (Operand::Imm(x), Operand::Imm(y)) = (a, b) {
            return Operand::Imm(kind.apply(x, y));
        }
        self.push(Step::Binary { kind, a, b, dst: 0 })
    }

    /// A value an output can be stored from: a register.
    pub fn materialized(&mut self, value: Operand) -> usize {
        match value {
            Operand::Reg(value) => value,
            other => match self.binary(BinaryKind::Mul, other, Operand::Imm(1.0)) {
                Operand::Reg(value) => value,
                // Two immediates fold to an immediate: keep one step anyway.
                Operand::Imm(x) => match self.push(Step::Binary {
                    kind: BinaryKind::Mul,
                    a: Operand::Imm(x),
                    b: Operand::Imm(1.0),
                    dst: 0,
                }) {
                    Operand::Reg(value) => value,
                    _ => unreachable!(),
                },
                Operand::Scalar(_) => unreachable!(),
            },
        }
    }
}

impl FusedElementwise {
    /// The kernel for `program` over the iteration shape `sizes`, storing values `outputs`.
    pub fn new(sizes: &[usize], program: Program, outputs: &[usize]) -> Self {
        let Program { mut steps } = program;
        // Merge axes that every load and the contiguous output traverse as one.
        let out_strides = contiguous_strides(sizes);
        let mut all: Vec<Vec<usize>> = vec![out_strides];
        for step in &steps {
            if let Step::Load { strides, .. } = step {
                if strides.is_empty() {
                    all.push(vec![0; sizes.len()]);
                } else {
                    all.push(strides.clone());
                }
            }
        }
        let (merged_sizes, merged) = merge_axes(sizes, &all);
        let mut merged = merged.into_iter().skip(1);
        for step in &mut steps {
            if let Step::Load { strides, .. } = step {
                *strides = merged.next().unwrap();
            }
        }
        let (steps, outputs, registers) = allocate_registers(steps, outputs);
        Self {
            len: sizes.iter().product(),
            sizes: merged_sizes,
            steps,
            outputs,
            registers,
        }
    }

    pub fn output_count(&self) -> usize {
        self.outputs.len()
    }

    /// The iteration shape with its mergeable axes merged (the loads' strides are over it).
    pub(crate) fn sizes(&self) -> &[usize] {
        &self.sizes
    }

    /// The number of elements of every output.
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// The program, on registers `0..registers()`.
    pub(crate) fn steps(&self) -> &[Step] {
        &self.steps
    }

    /// The register holding each output, in output order.
    pub(crate) fn output_registers(&self) -> &[usize] {
        &self.outputs
    }

    pub(crate) fn registers(&self) -> usize {
        self.registers
    }

    /// Evaluates flat indices `start..end` into `outs` (each `end - start` long), with 8-wide
    /// vectors where the CPU has them (baseline x86-64 code is 4-wide).
    fn run_range(&self, inputs: &[&[f32]], start: usize, end: usize, outs: &mut [&mut [f32]]) {
        #[cfg(target_arch = "x86_64")]
        if std::arch::is_x86_feature_detected!("avx2") {
            // SAFETY: the CPU has AVX2.
            return unsafe { self.run_range_avx2(inputs, start, end, outs) };
        }
        self.run_range_portable(inputs, start, end, outs)
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2")]
    unsafe fn run_range_avx2(
        &self,
        inputs: &[&[f32]],
        start: usize,
        end: usize,
        outs: &mut [&mut [f32]],
    ) {
        self.run_range_portable(inputs, start, end, outs)
    }

    #[inline(always)]
    fn run_range_portable(
        &self,
        inputs: &[&[f32]],
        start: usize,
        end: usize,
        outs: &mut [&mut [f32]],
    ) {
        let row = self.sizes.last().copied().unwrap_or(1);
        let mut regs = vec![vec![0.0f32; BLOCK]; self.registers];
        let mut coords = vec![0usize; self.sizes.len()];
        let mut at = start;
        while at < end {
            let len = BLOCK.min(row - at % row).min(end - at);
            let mut rest = at;
            for (coord, &size) in coords.iter_mut().zip(&self.sizes).rev() {
                *coord = rest % size;
                rest /= size;
            }
            for step in &self.steps {
                match step {
                    Step::Load {
                        input,
                        strides,
                        offset,
                        dst,
                    } => {
                        let data = inputs[*input];
                        let out = &mut regs[*dst][..len];
                        if strides.is_empty() {
                            out.fill(data[*offset]);
                            continue;
                        }
                        let offset: usize = offset
                            + coords
                                .iter()
                                .zip(strides)
                                .map(|(c, s)| c * s)
                                .sum::<usize>();
                        match *strides.last().unwrap() {
                            0 => out.fill(data[offset]),
                            1 => out.copy_from_slice(&data[offset..offset + len]),
                            step => {
                                for (i, value) in out.iter_mut().enumerate() {
                                    *value = data[offset + i * step];
                                }
                            }
                        }
                    }
                    Step::Unary { kind, src, dst } => {
                        let mut out = std::mem::take(&mut regs[*dst]);
                        let values = &regs[*src][..len];
                        unary(*kind, values, &mut out[..len]);
                        regs[*dst] = out;
                    }
                    Step::Binary { kind, a, b, dst } => {
                        let mut out = std::mem::take(&mut regs[*dst]);
                        let operand = |value: &Operand| match *value {
                            Operand::Reg(r) => Source::Block(&regs[r][..len]),
                            Operand::Imm(x) => Source::Value(x),
                            Operand::Scalar(input) => Source::Value(inputs[input][0]),
                        };
                        binary(*kind, operand(a), operand(b), &mut out[..len]);
                        regs[*dst] = out;
                    }
                }
            }
            let offset = at - start;
            for (out, &reg) in outs.iter_mut().zip(&self.outputs) {
                out[offset..offset + len].copy_from_slice(&regs[reg][..len]);
            }
            at += len;
        }
    }
}

impl Operator for FusedElementwise {
    fn process(&mut self, inputs: Vec<(InputTensor, ShapeTracker)>) -> Vec<Tensor> {
        let buffers: Vec<&[f32]> = inputs.iter().map(|(t, _)| input_buffer(t)).collect();
        let mut outs = vec![vec![0.0f32; self.len]; self.outputs.len()];
        let threads = if self.len * self.steps.len() >= THREADING_WORK {
            thread_count()
        } else {
            1
        };
        let pointers: Vec<Shared<*mut f32>> =
            outs.iter_mut().map(|o| Shared(o.as_mut_ptr())).collect();
        let (this, buffers, pointers) = (&*self, &buffers, &pointers);
        run_tasks(self.len.div_ceil(TASK), threads, |task| {
            let (start, end) = (task * TASK, ((task + 1) * TASK).min(this.len));
            // SAFETY: every task writes its own range of each output, inside its length.
            let mut parts: Vec<&mut [f32]> = pointers
                .iter()
                .map(|p| unsafe { std::slice::from_raw_parts_mut(p.0.add(start), end - start) })
                .collect();
            this.run_range(buffers, start, end, &mut parts);
        });
        outs.into_iter().map(Tensor::new).collect()
    }
}

/// Elements per task handed to a thread.
const TASK: usize = BLOCK * 16;

enum Source<'a> {
    Block(&'a [f32]),
    Value(f32),
}

#[inline(always)]
fn unary(kind: UnaryKind, values: &[f32], out: &mut [f32]) {
    #[inline(always)]
    fn map(values: &[f32], out: &mut [f32], f: impl Fn(f32) -> f32) {
        for (o, &x) in out.iter_mut().zip(values) {
            *o = f(x);
        }
    }
    match kind {
        UnaryKind::Exp2 => map(values, out, exp2),
        UnaryKind::Log2 => map(values, out, f32::log2),
        UnaryKind::Sin => map(values, out, f32::sin),
        UnaryKind::Sqrt => map(values, out, f32::sqrt),
        UnaryKind::Recip => map(values, out, f32::recip),
    }
}

#[inline(always)]
fn binary(kind: BinaryKind, a: Source, b: Source, out: &mut [f32]) {
    // One loop per kind and operand form, so that each vectorises.
    #[inline(always)]
    fn zip(a: Source, b: Source, out: &mut [f32], f: impl Fn(f32, f32) -> f32) {
        match (a, b) {
            (Source::Block(a), Source::Block(b)) => {
                for ((o, &x), &y) in out.iter_mut().zip(a).zip(b) {
                    *o = f(x, y);
                }
            }
            (Source::Block(a), Source::Value(y)) => {
                for (o, &x) in out.iter_mut().zip(a) {
                    *o = f(x, y);
                }
            }
            (Source::Value(x), Source::Block(b)) => {
                for (o, &y) in out.iter_mut().zip(b) {
                    *o = f(x, y);
                }
            }
            (Source::Value(x), Source::Value(y)) => out.fill(f(x, y)),
        }
    }
    match kind {
        BinaryKind::Add => zip(a, b, out, |x, y| x + y),
        BinaryKind::Mul => zip(a, b, out, |x, y| x * y),
        BinaryKind::Mod => zip(a, b, out, |x, y| x % y),
        BinaryKind::LessThan => zip(a, b, out, |x, y| (x < y) as u8 as f32),
    }
}

/// Rewrites a single-assignment program onto as few registers as its live values need.
fn allocate_registers(steps: Vec<Step>, outputs: &[usize]) -> (Vec<Step>, Vec<usize>, usize) {
    let mut last_use = vec![0usize; steps.len()];
    let reads = |step: &Step| -> Vec<usize> {
        match step {
            Step::Load { .. } => Vec::new(),
            Step::Unary { src, .. } => vec![*src],
            Step::Binary { a, b, .. } => [a, b]
                .into_iter()
                .filter_map(|o| match o {
                    Operand::Reg(v) => Some(*v),
                    _ => None,
                })
                .collect(),
        }
    };
    for (index, step) in steps.iter().enumerate() {
        for value in reads(step) {
            last_use[value] = index;
        }
    }
    for &value in outputs {
        last_use[value] = usize::MAX;
    }
    let mut register_of = vec![0usize; steps.len()];
    let mut free: Vec<usize> = Vec::new();
    let mut registers = 0;
    let mut rewritten = Vec::with_capacity(steps.len());
    for (index, step) in steps.into_iter().enumerate() {
        let dst = free.pop().unwrap_or_else(|| {
            registers += 1;
            registers - 1
        });
        register_of[index] = dst;
        let read = reads(&step);
        let reg = |o: Operand| match o {
            Operand::Reg(v) => Operand::Reg(register_of[v]),
            other => other,
        };
        rewritten.push(match step {
            Step::Load {
                input,
                strides,
                offset,
                ..
            } => Step::Load {
                input,
                strides,
                offset,
                dst,
            },
            Step::Unary { kind, src, .. } => Step::Unary {
                kind,
                src: register_of[src],
                dst,
            },
            Step::Binary { kind, a, b, .. } => Step::Binary {
                kind,
                a: reg(a),
                b: reg(b),
                dst,
            },
        });
        let mut released: Vec<usize> = read
            .into_iter()
            .filter(|&v| last_use[v] == index)
            .map(|v| register_of[v])
            .collect();
        released.dedup();
        free.extend(released);
        if last_use[index] == 0 && !outputs.contains(&index) {
            // Never read: its register is free again at once.
            free.push(dst);
        }
    }
    let outputs = outputs.iter().map(|&v| register_of[v]).collect();
    (rewritten, outputs, registers)
}
