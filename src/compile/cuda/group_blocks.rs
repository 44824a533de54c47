//! Kernels over a group of tensors of different lengths in one launch (the optimizer's): the grid
//! is cut into blocks of [`GROUP_CHUNK`] consecutive elements of one tensor each. The tensor of a
//! block is found by a binary search over constant tables baked into the source.

/// Elements per block: a multiple of 4, so that each block's first element starts a float4.
pub const GROUP_CHUNK: usize = 4096;
const _: () = assert!(GROUP_CHUNK.is_multiple_of(4));
/// Threads per block.
pub const GROUP_THREADS: u32 = 256;

/// Which blocks take which tensor.
#[derive(Debug, Clone, PartialEq)]
pub struct GroupBlocks {
    lengths: Vec<usize>,
    /// The first block of each tensor, then the total number of blocks.
    first_block: Vec<usize>,
}

impl GroupBlocks {
    pub fn new(lengths: &[usize]) -> Self {
        let mut first_block = vec![0];
        for len in lengths {
            let last = *first_block.last().expect("starts with 0");
            first_block.push(last + len.div_ceil(GROUP_CHUNK));
        }
        Self {
            lengths: lengths.to_vec(),
            first_block,
        }
    }

    pub fn blocks(&self) -> usize {
        *self.first_block.last().expect("starts with 0")
    }

    /// CUDA C: `TENSORS`, `CHUNK`, the constant tables `lengths` and `first_block`, and
    /// `tensor_of_block(b)`, the tensor whose elements block `b` takes.
    pub fn source(&self) -> String {
        let list = |values: &[usize]| {
            values
                .iter()
                .map(|v| v.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        };
        format!(
            r#"#define TENSORS {tensors}
#define CHUNK {GROUP_CHUNK}
__constant__ long long lengths[TENSORS] = {{{lengths}}};
__constant__ int first_block[TENSORS + 1] = {{{first_block}}};
__device__ int tensor_of_block(int b) {{
    int low = 0, high = TENSORS - 1;
    while (low < high) {{
        int middle = (low + high + 1) >> 1;
        if (first_block[middle] <= b) low = middle; else high = middle - 1;
    }}
    return low;
}}
"#,
            tensors = self.lengths.len(),
            lengths = list(&self.lengths),
            first_block = list(&self.first_block),
        )
    }

    /// The source's `tensor_of_block`, step for step.
    #[cfg(test)]
    fn tensor_of_block(&self, block: usize) -> usize {
        let (mut low, mut high) = (0, self.lengths.len() - 1);
        while low < high {
            let middle = (low + high + 1) >> 1;
            if self.first_block[middle] <= block {
                low = middle;
            } else {
                high = middle - 1;
            }
        }
        low
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_block_lies_in_one_tensor_and_every_element_has_one_block() {
        let lengths = [1, GROUP_CHUNK, GROUP_CHUNK + 1, 3 * GROUP_CHUNK - 5, 7];
        let group = GroupBlocks::new(&lengths);
        assert_eq!(group.blocks(), 1 + 1 + 2 + 3 + 1);
        let mut covered = vec![0usize; lengths.len()];
        for block in 0..group.blocks() {
            let tensor = group.tensor_of_block(block);
            let start = (block - group.first_block[tensor]) * GROUP_CHUNK;
            assert!(
                start < lengths[tensor],
                "block {block} starts past its tensor"
            );
            covered[tensor] += (lengths[tensor] - start).min(GROUP_CHUNK);
        }
        assert_eq!(covered, lengths);
    }
}
