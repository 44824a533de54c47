//! The CUDA C of a sum or max over one axis of a strided view, with the view's sizes, strides
//! and offset baked in. Two layouts, both reading memory coalesced where the view allows:
//! - one warp per output, its lanes striding along the reduced axis and combined by shuffles:
//!   for rows (LayerNorm and softmax statistics), where the reduced axis is contiguous;
//! - 32 consecutive outputs per block, one per lane, with the reduced axis split into strips
//!   over the block's warps and the strips combined through shared memory: for columns (a bias
//!   gradient summed over tokens), where neighbouring outputs are neighbours in memory, and for
//!   short reductions, where a warp per output would leave most lanes idle.
//!
//! [`ReduceSource::eval`] runs the same plan on the CPU, lane by lane and strip by strip in the
//! kernel's order of combination, so that tests can hold it against luminal's own view
//! arithmetic.
use luminal::{op, prelude::*};

use super::{
    bf16_rounding::BF16_VALUE,
    flat_index::{Coordinates, IndexType, Offset},
    vector_access::load4,
};
use crate::compile::cpu::ReduceKind;

/// Threads per block of the warp-per-output layout.
pub const WARP_BLOCK: u32 = 256;
/// The most strips a block splits the reduced axis into (32 warps: 1024 threads).
const MAX_STRIPS: usize = 32;
/// Terms per strip below which a block takes fewer strips.
const TERMS_PER_STRIP: usize = 16;
/// Neighbouring outputs a lane of the column layout takes where the view allows.
const OUTPUTS_PER_LANE: usize = 4;
/// Blocks the column layout must still have with [`OUTPUTS_PER_LANE`] outputs a lane, so that
/// every multiprocessor gets several: a bias gradient of 3072 outputs over 32768 rows keeps one
/// output a lane (96 blocks), the first stage of one of 768 over 256 x 128 takes four (1536).
const MIN_WIDE_BLOCKS: usize = 512;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    Warp,
    Columns { strips: usize },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReduceSource {
    kind: ReduceKind,
    /// The kept axes (those of size 1 dropped), in output order.
    kept: Coordinates,
    /// Where each output's first term is, over the kept coordinates.
    base: Offset,
    /// Where each output is written, over the kept coordinates: the kept axes may be iterated in
    /// another order than the output's (see `of_view`).
    target: Offset,
    /// The reduced axis's size and stride.
    len: usize,
    stride: usize,
    index: IndexType,
    layout: Layout,
    /// Whether the input is read in bf16 (a bf16 product, or a result's bf16 copy).
    bf16_input: bool,
    /// Neighbouring outputs a lane of the column layout takes: 4 where the innermost kept axis
    /// is contiguous in the input and comes in fours, so that a warp reads 128 neighbours a
    /// term (256 bytes in bf16) rather than 32. One otherwise.
    outputs_per_lane: usize,
}

/// A kernel launch: blocks, and threads per block in x and y.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Launch {
    pub blocks: u32,
    pub threads: (u32, u32),
}

impl ReduceSource {
    /// The kernel for `node` where it is luminal's `SumReduce` or `MaxReduce` over a strided view.
    pub fn of_node(graph: &Graph, node: NodeIndex) -> Option<Self> {
        let op = graph.graph.node_weight(node)?.as_any();
        let (kind, axis) = if let Some(op::SumReduce(axis)) = op.downcast_ref() {
            (ReduceKind::Sum, *axis)
        } else if let Some(op::MaxReduce(axis)) = op.downcast_ref() {
            (ReduceKind::Max, *axis)
        } else {
            return None;
        };
        let sources = graph.get_sources(node);
        let [(_, _, view)] = sources[..] else {
            return None;
        };
        Self::of_view(kind, &view, axis)
    }

    /// The reduction of `view` over logical axis `axis`, where the view is plain strides and an
    /// offset (no padding) of static sizes, else `None`.
    pub fn of_view(kind: ReduceKind, view: &ShapeTracker, axis: usize) -> Option<Self> {
        let (axes, offset) = strided_axes(view)?;
        let &(len, stride) = axes.get(axis)?;
        if axes.iter().any(|&(size, _)| size == 0) {
            return None;
        }
        let kept: Vec<(usize, usize)> = axes
            .iter()
            .enumerate()
            .filter(|&(a, &(size, _))| a != axis && size != 1)
            .map(|(_, &axis)| axis)
            .collect();
        // (size, input stride, output stride) of each kept axis, in output order.
        let mut output_stride = 1;
        let mut kept: Vec<(usize, usize, usize)> = kept
            .iter()
            .rev()
            .map(|&(size, stride)| {
                let axis = (size, stride, output_stride);
                output_stride *= size;
                axis
            })
            .collect();
        kept.reverse();
        // A strided reduction whose unit-stride kept axis is not the output's last (a bias
        // gradient over a transposed view): iterate with that axis innermost, so that a block's
        // 32 lanes read 32 neighbours, and write each output where it belongs.
        if stride != 1 {
            if let Some(unit) = kept.iter().position(|&(_, stride, _)| stride == 1) {
                let axis = kept.remove(unit);
                kept.push(axis);
            }
        }
        let sizes: Vec<usize> = kept.iter().map(|axis| axis.0).collect();
        let strides: Vec<usize> = kept.iter().map(|axis| axis.1).collect();
        let target = Offset {
            offset: 0,
            strides: kept.iter().map(|axis| axis.2).collect(),
        };
        let inner_contiguous = strides.last() == Some(&1);
        let layout = if (stride != 1 && inner_contiguous) || len < 32 {
            Layout::Columns {
                strips: (len / TERMS_PER_STRIP).clamp(1, MAX_STRIPS),
            }
        } else {
            Layout::Warp
        };
        let outputs: usize = sizes.iter().product();
        let outputs_per_lane = match (layout, sizes.last()) {
            (Layout::Columns { .. }, Some(&inner))
                if inner_contiguous
                    && inner.is_multiple_of(OUTPUTS_PER_LANE)
                    && outputs / (32 * OUTPUTS_PER_LANE) >= MIN_WIDE_BLOCKS =>
            {
                OUTPUTS_PER_LANE
            }
            _ => 1,
        };
        let base = Offset { offset, strides };
        let last_term = base.max(&sizes) + (len - 1) * stride;
        Some(Self {
            kind,
            kept: Coordinates::new(&sizes),
            base,
            target,
            len,
            stride,
            index: IndexType::for_max(last_term.max(outputs * 32 + 1024)),
            layout,
            bf16_input: false,
            outputs_per_lane,
        })
    }

    /// The same reduction of the same view, its input read in bf16: each term is widened to
    /// float32 as it is loaded, and the terms are combined in float32 as before.
    pub fn reading_bf16(&self) -> Self {
        Self {
            bf16_input: true,
            ..self.clone()
        }
    }

    pub fn reads_bf16(&self) -> bool {
        self.bf16_input
    }

    pub fn outputs(&self) -> usize {
        self.kept.len()
    }

    pub fn launch(&self) -> Launch {
        let outputs = self.outputs();
        let blocks = match self.layout {
            Layout::Warp => (outputs * 32).div_ceil(WARP_BLOCK as usize),
            Layout::Columns { .. } => outputs.div_ceil(32 * self.outputs_per_lane),
        };
        let threads = match self.layout {
            Layout::Warp => (WARP_BLOCK, 1),
            Layout::Columns { strips } => (32, strips as u32),
        };
        Launch {
            blocks: u32::try_from(blocks).expect("a grid within CUDA's limits"),
            threads,
        }
    }

    /// The kernel: `dropbert_kernel(out, in)`.
    pub fn source(&self) -> String {
        let ty = self.index.c_name();
        let lit = |n: usize| self.index.literal(n);
        let (init, combine) = match self.kind {
            ReduceKind::Sum => ("0.0f", "acc + "),
            // fmaxf, like f32::max, takes the number over a NaN.
            ReduceKind::Max => ("__uint_as_float(0xff800000u) /* -inf */", "fmaxf(acc, "),
        };
        let close = match self.kind {
            ReduceKind::Sum => "",
            ReduceKind::Max => ")",
        };
        let coordinates = self.kept.render("o", "c", self.index);
        let indented = |spaces: &str| {
            coordinates
                .iter()
                .map(|statement| format!("{spaces}{statement}\n"))
                .collect::<String>()
        };
        let base = self.base.render("c", self.index);
        let target = self.target.render("c", self.index);
        let at = match self.stride {
            0 => "base".to_string(),
            1 => "base + k".to_string(),
            stride => format!("base + k * {}", lit(stride)),
        };
        let (term, input_type, helpers) = if self.bf16_input {
            (
                format!("bf16_value(in[{at}])"),
                "unsigned short",
                BF16_VALUE,
            )
        } else {
            (format!("in[{at}]"), "float", "")
        };
        let (outputs, len) = (lit(self.outputs()), lit(self.len));
        match self.layout {
            Layout::Warp => format!(
                r#"{helpers}
extern "C" __global__ void dropbert_kernel(float *__restrict__ out, const {input_type} *__restrict__ in) {{
    const {ty} o = (({ty})blockIdx.x * blockDim.x + threadIdx.x) / 32u;
    const unsigned int lane = threadIdx.x % 32u;
    // Whole warps leave together: the shuffles below need every lane.
    if (o >= {outputs}) return;
{coordinates}    const {ty} base = {base};
    float acc = {init};
    for ({ty} k = lane; k < {len}; k += 32u) acc = {combine}{term}{close};
    for (int d = 16; d > 0; d /= 2) acc = {combine}__shfl_xor_sync(0xffffffffu, acc, d){close};
    if (lane == 0u) out[{target}] = acc;
}}"#,
                coordinates = indented("    "),
            ),
            Layout::Columns { strips } => {
                let per_lane = self.outputs_per_lane;
                // The lane's outputs differ in the innermost kept coordinate only, which is
                // contiguous in the input: its terms are neighbours, its targets a stride apart.
                let target_step = if per_lane > 1 {
                    lit(*self.target.strides.last().expect("an innermost kept axis"))
                } else {
                    lit(0)
                };
                // Where every lane's first term of every step is 4-aligned, the lane's terms are
                // one 8-byte (bf16) or 16-byte load; else one load each.
                let combine_v = combine.replace("acc", "acc[v]");
                let aligned = per_lane == 4
                    && self.stride.is_multiple_of(4)
                    && self.base.offset.is_multiple_of(4)
                    && self.base.strides[..self.base.strides.len() - 1]
                        .iter()
                        .all(|stride| stride.is_multiple_of(4));
                let step = if aligned {
                    format!(
                        "float t[4]; {}\n            #pragma unroll\n            \
                         for (int v = 0; v < 4; v++) acc[v] = {combine_v}t[v]{close};",
                        load4("in", &format!("({at})"), "t", self.bf16_input),
                    )
                } else {
                    let term_v = if per_lane > 1 {
                        term.replace("base", "(base + v)")
                    } else {
                        term.clone()
                    };
                    format!(
                        "#pragma unroll\n            \
                         for (int v = 0; v < {per_lane}; v++) acc[v] = {combine_v}{term_v}{close};"
                    )
                };
                format!(
                    r#"{helpers}
extern "C" __global__ void dropbert_kernel(float *__restrict__ out, const {input_type} *__restrict__ in) {{
    __shared__ float partial[{strips}][{block_outputs}];
    const {ty} o = (({ty})blockIdx.x * 32u + threadIdx.x) * {per_lane}u;
    float acc[{per_lane}];
    #pragma unroll
    for (int v = 0; v < {per_lane}; v++) acc[v] = {init};
    if (o < {outputs}) {{
{coordinates}        const {ty} base = {base};
        for ({ty} k = threadIdx.y; k < {len}; k += {strips}u) {{
            {step}
        }}
    }}
    #pragma unroll
    for (int v = 0; v < {per_lane}; v++) partial[threadIdx.y][threadIdx.x * {per_lane} + v] = acc[v];
    __syncthreads();
    if (threadIdx.y == 0u && o < {outputs}) {{
        #pragma unroll
        for (int v = 0; v < {per_lane}; v++)
            for (unsigned int s = 1u; s < {strips}u; ++s)
                acc[v] = {combine_v}partial[s][threadIdx.x * {per_lane} + v]{close};
{coordinates}        const {ty} target = {target};
        #pragma unroll
        for (int v = 0; v < {per_lane}; v++) out[target + ({ty})v * {target_step}] = acc[v];
    }}
}}"#,
                    block_outputs = 32 * per_lane,
                    coordinates = indented("        "),
                )
            }
        }
    }

    /// The outputs, combined in the order the kernel combines them.
    #[cfg(test)]
    pub fn eval(&self, input: &[f32]) -> Vec<f32> {
        let (init, combine): (f32, fn(f32, f32) -> f32) = match self.kind {
            ReduceKind::Sum => (0.0, |a, b| a + b),
            ReduceKind::Max => (f32::NEG_INFINITY, f32::max),
        };
        let lanes = match self.layout {
            Layout::Warp => 32,
            Layout::Columns { strips } => strips,
        };
        let mut out = vec![0.0; self.outputs()];
        // A lane's outputs are found as the kernel finds them: from the coordinates of its first.
        let per_lane = self.outputs_per_lane;
        let target_step = if per_lane > 1 {
            *self.target.strides.last().expect("an innermost kept axis")
        } else {
            0
        };
        for o in 0..self.outputs() {
            let (first, v) = (o - o % per_lane, o % per_lane);
            let coordinates = self.kept.eval(first);
            out[self.target.eval(&coordinates) + v * target_step] = {
                let base = self.base.eval(&coordinates) + v;
                let mut partial = vec![init; lanes];
                for (lane, acc) in partial.iter_mut().enumerate() {
                    for k in (lane..self.len).step_by(lanes) {
                        *acc = combine(*acc, input[base + k * self.stride]);
                    }
                }
                match self.layout {
                    Layout::Warp => {
                        let mut d = 16;
                        while d > 0 {
                            let previous = partial.clone();
                            for (lane, acc) in partial.iter_mut().enumerate() {
                                *acc = combine(previous[lane], previous[lane ^ d]);
                            }
                            d /= 2;
                        }
                        partial[0]
                    }
                    Layout::Columns { .. } => partial[1..]
                        .iter()
                        .fold(partial[0], |acc, &strip| combine(acc, strip)),
                }
            };
        }
        out
    }
}

/// `(size, stride)` of each logical axis of `view` and the offset of its first element, as
/// luminal's index expression computes them for a view without padding; `None` for padding,
/// symbolic sizes, or sizes that luminal's `shape()` reports otherwise.
fn strided_axes(view: &ShapeTracker) -> Option<(Vec<(usize, usize)>, usize)> {
    if view.is_padded() {
        return None;
    }
    let dims: Vec<usize> = view
        .dims
        .iter()
        .map(|d| d.to_usize())
        .collect::<Option<_>>()?;
    let mut buffer_strides = vec![0; dims.len()];
    let mut next = 1;
    for axis in (0..dims.len()).rev() {
        if !view.fake[axis] {
            buffer_strides[axis] = next;
            next *= dims[axis];
        }
    }
    let mut offset = 0;
    let mut axes = Vec::with_capacity(view.len());
    for (&physical, reported) in view.indexes.iter().zip(view.shape()) {
        let (start, end) = view.slices[physical];
        let start = start.to_usize()?;
        let end = end.to_usize()?.min(dims[physical]);
        let size = end.checked_sub(start)?;
        if reported.to_usize() != Some(size) {
            return None;
        }
        offset += start * buffer_strides[physical];
        axes.push((size, buffer_strides[physical]));
    }
    Some((axes, offset))
}

/// Reductions for tests: `(kind, view, axis)` covering both layouts, permuted, broadcast and
/// sliced views, and 64-bit indexing.
#[cfg(test)]
pub(super) mod examples {
    use luminal::prelude::*;

    use crate::compile::cpu::ReduceKind;

    /// A slice's open end, as luminal writes it.
    const OPEN: i32 = i32::MAX;

    fn view(dims: &[usize]) -> ShapeTracker {
        let dims: Vec<symbolic::Expression> = dims.iter().map(|&d| d.into()).collect();
        ShapeTracker::new(&dims)
    }

    pub fn reductions() -> Vec<(ReduceKind, ShapeTracker, usize)> {
        let mut all = Vec::new();
        for kind in [ReduceKind::Sum, ReduceKind::Max] {
            // Rows: warps.
            all.push((kind, view(&[7, 50]), 1));
            all.push((kind, view(&[3, 1000]), 1));
            // Columns: strips over the rows.
            all.push((kind, view(&[40, 33]), 0));
            all.push((kind, view(&[1000, 3]), 0));
            // Short: one lane per output.
            all.push((kind, view(&[20, 5]), 1));
            // Permuted: [5, 6, 7] read as [7, 5, 6], each axis reduced.
            for axis in 0..3 {
                let mut permuted = view(&[5, 6, 7]);
                permuted.permute(&[2, 0, 1]);
                all.push((kind, permuted, axis));
            }
            // A broadcast axis, reduced and kept.
            let mut expanded = view(&[9, 40]);
            expanded.expand(1, 3.into());
            all.push((kind, expanded, 1));
            all.push((kind, expanded, 2));
            // Sliced: rows 2.. and columns 3.. of [10, 64]; the first 40 columns of [5, 64]; and
            // rows 1.. of [4, 1, 70], whose unit axis drops.
            let mut sliced = view(&[10, 64]);
            sliced.slice(&[(2.into(), OPEN.into()), (3.into(), OPEN.into())]);
            all.push((kind, sliced, 1));
            all.push((kind, sliced, 0));
            let mut head = view(&[5, 64]);
            head.slice(&[(0.into(), OPEN.into()), (0.into(), 40.into())]);
            all.push((kind, head, 1));
            let mut unit = view(&[4, 1, 70]);
            unit.slice(&[(1.into(), OPEN.into())]);
            all.push((kind, unit, 2));
            all.push((kind, unit, 0));
        }
        all
    }

    /// Beyond 2^31 elements: 64-bit indices (for NVRTC only: too large to evaluate).
    pub fn huge() -> Vec<(ReduceKind, ShapeTracker, usize)> {
        vec![
            (ReduceKind::Sum, view(&[70_000, 40_000]), 1),
            (ReduceKind::Max, view(&[70_000, 40_000]), 0),
        ]
    }
}

#[cfg(test)]
mod tests {
    use rand::{rngs::StdRng, Rng, SeedableRng};

    use super::*;

    /// The reduction by luminal's own index and validity expressions.
    fn brute_force(kind: ReduceKind, view: &ShapeTracker, axis: usize, input: &[f32]) -> Vec<f64> {
        let shape: Vec<usize> = view.shape().iter().map(|d| d.to_usize().unwrap()).collect();
        let (index, valid) = (view.index_expression(), view.valid_expression());
        let kept: usize = shape
            .iter()
            .enumerate()
            .filter(|&(a, _)| a != axis)
            .map(|(_, n)| n)
            .product();
        let init = match kind {
            ReduceKind::Sum => 0.0,
            ReduceKind::Max => f64::NEG_INFINITY,
        };
        let mut out = vec![init; kept];
        let total: usize = shape.iter().product();
        for logical in 0..total {
            assert_ne!(valid.exec_single_var(logical), 0);
            let value = f64::from(input[index.exec_single_var(logical)]);
            let mut rest = logical;
            let (mut o, mut scale) = (0, 1);
            for a in (0..shape.len()).rev() {
                let coordinate = rest % shape[a];
                rest /= shape[a];
                if a != axis {
                    o += coordinate * scale;
                    scale *= shape[a];
                }
            }
            out[o] = match kind {
                ReduceKind::Sum => out[o] + value,
                ReduceKind::Max => out[o].max(value),
            };
        }
        out
    }

    #[test]
    fn both_layouts_agree_with_luminals_view_arithmetic() {
        let mut rng = StdRng::seed_from_u64(5);
        let mut layouts = Vec::new();
        for (kind, view, axis) in examples::reductions() {
            let source = ReduceSource::of_view(kind, &view, axis).expect("a strided view");
            layouts.push(source.layout);
            let physical = view.n_physical_elements().to_usize().unwrap();
            let input: Vec<f32> = (0..physical)
                .map(|i| match i % 23 {
                    // -inf and large negatives test the maximum's starting value.
                    0 => f32::NEG_INFINITY,
                    _ => rng.gen_range(-1e4..-1.0),
                })
                .collect();
            let expected = brute_force(kind, &view, axis, &input);
            let actual = source.eval(&input);
            assert_eq!(actual.len(), expected.len());
            let magnitude: f64 = input.iter().map(|x| f64::from(x.abs())).sum();
            for (&a, &e) in actual.iter().zip(&expected) {
                match kind {
                    ReduceKind::Sum if e.is_finite() => {
                        assert!((f64::from(a) - e).abs() <= 1e-6 * magnitude, "{a} vs {e}")
                    }
                    _ => assert_eq!(f64::from(a), e),
                }
            }
        }
        assert!(layouts.contains(&Layout::Warp));
        assert!(layouts.contains(&Layout::Columns { strips: 1 }));
        assert!(layouts.contains(&Layout::Columns { strips: 32 }));
    }

    #[test]
    fn all_minus_infinity_has_maximum_minus_infinity() {
        let source = ReduceSource::of_view(ReduceKind::Max, &examples::reductions()[0].1, 1)
            .expect("a strided view");
        let out = source.eval(&[f32::NEG_INFINITY; 350]);
        assert!(out.iter().all(|&x| x == f32::NEG_INFINITY));
    }

    #[test]
    fn padded_views_and_disputed_sizes_are_left_to_luminal() {
        let mut padded = ShapeTracker::new(&[4.into(), 3.into()]);
        padded.pad(&[(1.into(), 2.into()), (0.into(), 0.into())]);
        assert!(ReduceSource::of_view(ReduceKind::Sum, &padded, 1).is_none());
        // Rows 2..8 of 10: luminal's `shape()` says 8 rows, its index expression 6.
        let mut sliced = ShapeTracker::new(&[10.into(), 4.into()]);
        sliced.slice(&[(2.into(), 8.into())]);
        assert!(ReduceSource::of_view(ReduceKind::Sum, &sliced, 1).is_none());
    }

    #[test]
    fn a_reduction_over_a_transposed_view_reads_neighbours_in_its_lanes() {
        // A bias gradient as BERT's graph has it: [batch, seq, hidden] read as [hidden, batch,
        // seq], summed over seq (stride hidden).
        let mut view = ShapeTracker::new(&[4.into(), 40.into(), 48.into()]);
        view.permute(&[2, 0, 1]);
        let source = ReduceSource::of_view(ReduceKind::Sum, &view, 2).unwrap();
        assert!(matches!(source.layout, Layout::Columns { .. }));
        assert_eq!(source.base.strides.last(), Some(&1));
        let input: Vec<f32> = (0..4 * 40 * 48).map(|i| (i % 97) as f32).collect();
        let out = source.eval(&input);
        for hidden in 0..48 {
            for batch in 0..4 {
                let sum: f32 = (0..40)
                    .map(|seq| input[(batch * 40 + seq) * 48 + hidden])
                    .sum();
                assert_eq!(out[hidden * 4 + batch], sum);
            }
        }
    }

    #[test]
    fn sources_bake_in_the_view() {
        let (kind, view, axis) = examples::reductions()[2];
        let source = ReduceSource::of_view(kind, &view, axis).unwrap();
        assert_eq!(source.layout, Layout::Columns { strips: 2 });
        let c = source.source();
        assert!(c.contains("in[base + k * 33u]"), "{c}");
        assert!(c.contains("partial[2][32]"), "{c}");
        let (kind, view, axis) = examples::huge()[0];
        let c = ReduceSource::of_view(kind, &view, axis).unwrap().source();
        assert!(c.contains("unsigned long long"), "{c}");
    }

    #[test]
    fn a_bf16_input_is_widened_term_by_term_and_summed_in_float() {
        for (kind, view, axis) in examples::reductions() {
            let plain = ReduceSource::of_view(kind, &view, axis).unwrap();
            let widened = plain.reading_bf16();
            assert!(widened.reads_bf16() && !plain.reads_bf16());
            assert_eq!(widened.launch(), plain.launch());
            let c = widened.source();
            assert!(c.contains("const unsigned short *__restrict__ in"), "{c}");
            assert!(
                c.contains("bf16_value(in[base") || c.contains("bf16_value(in[(base + v)"),
                "{c}"
            );
            assert!(c.contains("float acc"), "{c}");
            assert!(!plain.source().contains("bf16_value"));
        }
    }

    #[test]
    fn a_lane_of_a_large_bias_gradient_takes_four_neighbouring_outputs() {
        // [batch, seq, hidden] read as [hidden, batch, seq] and summed over seq, with enough
        // outputs for four a lane: the emulation finds each lane's outputs from its first one's
        // coordinates, as the kernel does.
        let (batch, seq, hidden) = (64, 6, 1024);
        let mut view = ShapeTracker::new(&[batch.into(), seq.into(), hidden.into()]);
        view.permute(&[2, 0, 1]);
        let source = ReduceSource::of_view(ReduceKind::Sum, &view, 2).unwrap();
        assert_eq!(source.outputs_per_lane, OUTPUTS_PER_LANE);
        assert_eq!(
            source.launch().blocks as usize,
            batch * hidden / (32 * OUTPUTS_PER_LANE)
        );
        let c = source.source();
        assert!(c.contains("in + (base + k * 1024u)"), "{c}");
        let input: Vec<f32> = (0..batch * seq * hidden).map(|i| (i % 97) as f32).collect();
        let out = source.eval(&input);
        for h in 0..hidden {
            for b in 0..batch {
                let sum: f32 = (0..seq).map(|s| input[(b * seq + s) * hidden + h]).sum();
                assert_eq!(out[h * batch + b], sum, "hidden {h}, batch {b}");
            }
        }
    }
}
