use luminal::{
    op::{InputTensor, Operator},
    prelude::*,
};

use super::input_values;
use crate::compile::cpu::{fill_in_chunks, thread_count};

/// A random key graph input holds its 64-bit key as four 16-bit chunks, low chunk first: each is
/// an integer an f32 holds exactly, so the key survives any copy of the input bit for bit.
pub const KEY_VALUES: usize = 4;

/// The shape of a random key input.
pub type RandomKey = (Const<KEY_VALUES>,);

/// `key` as the values of a random key input.
pub fn key_values(key: u64) -> Vec<f32> {
    (0..KEY_VALUES)
        .map(|chunk| ((key >> (16 * chunk)) & 0xffff) as f32)
        .collect()
}

/// The key a random key input holds.
pub fn key_from_values(values: &[f32]) -> u64 {
    assert_eq!(
        values.len(),
        KEY_VALUES,
        "a random key is {KEY_VALUES} values"
    );
    values.iter().enumerate().fold(0, |key, (chunk, &value)| {
        assert!(
            (0.0..65536.0).contains(&value) && value.fract() == 0.0,
            "a random key chunk is an integer in [0, 65536), not {value}"
        );
        key | (value as u64) << (16 * chunk)
    })
}

/// Philox4x32 (Salmon, Moraes, Dror and Shaw, "Parallel random numbers: as easy as 1, 2, 3",
/// SC 2011): the multipliers of its rounds and the increments of its key between rounds.
pub const PHILOX_MULTIPLIERS: [u32; 2] = [0xD251_1F53, 0xCD9E_8D57];
pub const PHILOX_KEY_STEPS: [u32; 2] = [0x9E37_79B9, 0xBB67_AE85];
/// Ten rounds, the variant its authors recommend and cuRAND implements.
pub const PHILOX_ROUNDS: usize = 10;

/// Philox4x32-10 of `counter` under `key`: four random 32-bit words. Why it is adequate for
/// dropout: it is a keyed bijection of the 128-bit counter, so the (stream, index) counters of one
/// step never share words; its authors found no failure in TestU01's BigCrush across keys and
/// counters; and it is the generator cuRAND offers first and PyTorch's GPU dropout draws from. Two
/// 32x32-bit multiplies per round: cheap on a GPU, and integer arithmetic only, so the CPU and
/// CUDA kernels agree bit for bit.
#[inline(always)]
pub fn philox4x32(counter: [u32; 4], key: [u32; 2]) -> [u32; 4] {
    let (mut c, mut k) = (counter, key);
    for round in 0..PHILOX_ROUNDS {
        if round > 0 {
            k[0] = k[0].wrapping_add(PHILOX_KEY_STEPS[0]);
            k[1] = k[1].wrapping_add(PHILOX_KEY_STEPS[1]);
        }
        let p0 = PHILOX_MULTIPLIERS[0] as u64 * c[0] as u64;
        let p1 = PHILOX_MULTIPLIERS[1] as u64 * c[2] as u64;
        c = [
            (p1 >> 32) as u32 ^ c[1] ^ k[0],
            p1 as u32,
            (p0 >> 32) as u32 ^ c[3] ^ k[1],
            p0 as u32,
        ];
    }
    c
}

/// The Philox key of a 64-bit random key.
pub fn philox_key(key: u64) -> [u32; 2] {
    [key as u32, (key >> 32) as u32]
}

/// Mask elements `8b..8b + 8` of stream `s` take the four words of Philox counter `[b, s, 0, 0]`,
/// 16 bits each: a kernel that takes 8 neighbours draws one counter for them, where 24 bits a
/// value took one for 4 (attention's probabilities kernels spent about 40 % of their
/// instructions on Philox; run 50). Flash attention's kernels compare 8 random bits a value.
pub const ELEMENTS_PER_COUNTER: usize = 8;

/// The random bits compared with a mask's threshold, a value.
pub const RANDOM_BITS: u32 = 16;

/// The random bits of value `slot` of `words`, one counter's or consecutive counters' words in
/// counter order: the low half of word `slot / 2` for an even slot, its high half for an odd one.
pub fn random_bits(words: &[u32], slot: usize) -> u32 {
    (words[slot / 2] >> (RANDOM_BITS as usize * (slot % 2))) & ((1 << RANDOM_BITS) - 1)
}

/// Element `index` of stream `stream`'s mask, plainly: its [`random_bits`], an integer uniform
/// in `[0, 2^16)`, compared with the keep probability's threshold ([`DropoutMask::threshold`]).
pub fn mask_value(key: u64, stream: u32, index: usize, threshold: u32, scale: f32) -> f32 {
    let block = u32::try_from(index / ELEMENTS_PER_COUNTER).expect("masks of under 2^35 values");
    let words = philox4x32([block, stream, 0, 0], philox_key(key));
    if random_bits(&words, index % ELEMENTS_PER_COUNTER) < threshold {
        scale
    } else {
        0.0
    }
}

/// A dropout mask of `len` values, drawn in the graph from the step's random key (its one input,
/// a [`RandomKey`] fed by the host): 0 for a dropped value, `1 / (1 - rate)` for a kept one, as
/// inverted dropout scales. Each value is a pure function of the key, the site's `stream` and its
/// index (see [`mask_value`]), so masks need no state between steps, any backend draws the same
/// ones, and a block skipped by layer dropping changes no other block's masks.
#[derive(Debug, Clone, PartialEq)]
pub struct DropoutMask {
    pub len: usize,
    pub rate: f32,
    pub stream: u32,
}

impl DropoutMask {
    pub const KEY: u8 = 0;

    /// Values whose 16 random bits `r` give `r / 2^16 < 1 - rate` are kept, that is `r` below this
    /// (the product is exact in f64, and `r` an integer). The keep probability is so rounded up
    /// to a multiple of 2^-16 (0.9 becomes 0.900009).
    pub fn threshold(&self) -> u32 {
        let keep = 1.0 - self.rate;
        (keep as f64 * (1u64 << RANDOM_BITS) as f64).ceil() as u32
    }

    /// The value of a kept element.
    pub fn scale(&self) -> f32 {
        1.0 / (1.0 - self.rate)
    }

    /// The mask under `key`, computed on up to `threads` threads.
    pub fn values(&self, key: u64, threads: usize) -> Vec<f32> {
        fill_in_chunks(self.len, TASK, threads, |start, out| {
            self.fill(key, start, out)
        })
    }

    /// Writes the mask's values `start..start + out.len()` under `key` to `out`; `start` is a
    /// multiple of [`ELEMENTS_PER_COUNTER`].
    fn fill(&self, key: u64, start: usize, out: &mut [f32]) {
        let (threshold, scale, key) = (self.threshold(), self.scale(), philox_key(key));
        let first_block = start / ELEMENTS_PER_COUNTER;
        let done = (out.len() / (ELEMENTS_PER_COUNTER * LANES)) * LANES;
        let mut groups = out.chunks_exact_mut(ELEMENTS_PER_COUNTER * LANES);
        for (group, values) in (&mut groups).enumerate() {
            let block = (first_block + group * LANES) as u32;
            let words = philox4x32_lanes(block, self.stream, key);
            mask_values(&words, threshold, scale, values);
        }
        let rest = groups.into_remainder();
        for (chunk, values) in rest.chunks_mut(ELEMENTS_PER_COUNTER).enumerate() {
            let block = (first_block + done + chunk) as u32;
            let words = philox4x32([block, self.stream, 0, 0], key);
            mask_values(&words, threshold, scale, values);
        }
    }
}

/// The mask values of consecutive counters' `words` (in counter order) into `values`: `scale`
/// where a value's [`random_bits`] are below `threshold`, else 0.
fn mask_values(words: &[u32], threshold: u32, scale: f32, values: &mut [f32]) {
    for (slot, value) in values.iter_mut().enumerate() {
        *value = if random_bits(words, slot) < threshold {
            scale
        } else {
            0.0
        };
    }
}

/// Counters the CPU kernel runs side by side, round by round: independent multiplies, which the
/// compiler vectorizes and pipelines (about twice as fast as one counter at a time).
const LANES: usize = 8;

/// [`philox4x32`] of counters `[block + l, stream, 0, 0]` for `l` in `0..LANES`: their words in
/// counter order.
#[inline(always)]
fn philox4x32_lanes(block: u32, stream: u32, key: [u32; 2]) -> [u32; 4 * LANES] {
    use std::array::from_fn;
    let mut c: [[u32; LANES]; 4] = [
        from_fn(|lane| block.wrapping_add(lane as u32)),
        [stream; LANES],
        [0; LANES],
        [0; LANES],
    ];
    let mut k = key;
    for round in 0..PHILOX_ROUNDS {
        if round > 0 {
            k[0] = k[0].wrapping_add(PHILOX_KEY_STEPS[0]);
            k[1] = k[1].wrapping_add(PHILOX_KEY_STEPS[1]);
        }
        let p0: [u64; LANES] = from_fn(|l| PHILOX_MULTIPLIERS[0] as u64 * c[0][l] as u64);
        let p1: [u64; LANES] = from_fn(|l| PHILOX_MULTIPLIERS[1] as u64 * c[2][l] as u64);
        c = [
            from_fn(|l| (p1[l] >> 32) as u32 ^ c[1][l] ^ k[0]),
            from_fn(|l| p1[l] as u32),
            from_fn(|l| (p0[l] >> 32) as u32 ^ c[3][l] ^ k[1]),
            from_fn(|l| p0[l] as u32),
        ];
    }
    from_fn(|i| c[i % 4][i / 4])
}

/// Elements per task handed to a thread (a multiple of `ELEMENTS_PER_COUNTER * LANES`).
const TASK: usize = 1 << 14;

impl Operator for DropoutMask {
    fn process(&mut self, inputs: Vec<(InputTensor, ShapeTracker)>) -> Vec<Tensor> {
        let key = key_from_values(&input_values(&inputs[0].0, &inputs[0].1));
        let threads = if self.len >= 2 * TASK {
            thread_count()
        } else {
            1
        };
        vec![Tensor::new(self.values(key, threads))]
    }
}

/// The mask of one dropout site of shape `S`, drawn from `key`; `stream` tells the sites of one
/// graph apart.
pub fn dropout_mask<S: Shape>(
    key: GraphTensor<RandomKey>,
    rate: f32,
    stream: u32,
) -> GraphTensor<S> {
    assert!(
        rate > 0.0 && rate < 1.0,
        "a dropout rate is in (0, 1), not {rate}"
    );
    let shape = S::to_tracker();
    let len = shape.n_elements().to_usize().expect("static shapes");
    assert!(
        len.div_ceil(ELEMENTS_PER_COUNTER) <= u32::MAX as usize,
        "a dropout mask of {len} values is too long for its 32-bit counter"
    );
    let id = key
        .graph()
        .add_op(DropoutMask { len, rate, stream })
        .input(key.id, 0, key.shape)
        .finish();
    GraphTensor::from_id(id, shape, key.graph_ref)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mask(len: usize, rate: f32, stream: u32, key: u64) -> Vec<f32> {
        let mut op = DropoutMask { len, rate, stream };
        let input = Tensor::new(key_values(key));
        let view = ShapeTracker::new(&[KEY_VALUES.into()]);
        let mut out = op.process(vec![(InputTensor::Borrowed(&input), view)]);
        out.remove(0)
            .data
            .as_any()
            .downcast_ref::<Vec<f32>>()
            .unwrap()
            .clone()
    }

    fn kept(mask: &[f32]) -> Vec<bool> {
        mask.iter().map(|&v| v != 0.0).collect()
    }

    /// The correlation of two keep patterns.
    fn correlation(a: &[bool], b: &[bool]) -> f64 {
        let n = a.len() as f64;
        let mean = |x: &[bool]| x.iter().filter(|&&v| v).count() as f64 / n;
        let (ma, mb) = (mean(a), mean(b));
        let both = a.iter().zip(b).filter(|(&x, &y)| x && y).count() as f64 / n;
        (both - ma * mb) / (ma * (1.0 - ma) * mb * (1.0 - mb)).sqrt()
    }

    #[test]
    fn philox_matches_random123_known_answers() {
        // The known-answer vectors published with Random123, the authors' implementation.
        let cases = [
            (
                [0; 4],
                [0; 2],
                [0x6627_e8d5, 0xe169_c58d, 0xbc57_ac4c, 0x9b00_dbd8],
            ),
            (
                [u32::MAX; 4],
                [u32::MAX; 2],
                [0x408f_276d, 0x41c8_3b0e, 0xa20b_c7c6, 0x6d54_51fd],
            ),
            (
                [0x243f_6a88, 0x85a3_08d3, 0x1319_8a2e, 0x0370_7344],
                [0xa409_3822, 0x299f_31d0],
                [0xd16c_fe09, 0x94fd_cceb, 0x5001_e420, 0x2412_6ea1],
            ),
        ];
        for (counter, key, words) in cases {
            assert_eq!(philox4x32(counter, key), words);
        }
    }

    #[test]
    fn keys_round_trip_through_f32_values() {
        for key in [
            0,
            1,
            u64::MAX,
            0x0123_4567_89ab_cdef,
            5 ^ 7u64.wrapping_mul(0x9e37_79b9_7f4a_7c15),
        ] {
            let values = key_values(key);
            assert!(values.iter().all(|v| v.fract() == 0.0 && *v < 65536.0));
            assert_eq!(key_from_values(&values), key);
        }
    }

    #[test]
    fn the_integer_threshold_is_the_uniform_comparison() {
        for rate in [0.1f32, 0.25, 0.5, 0.3, 1e-3, 0.999] {
            let op = DropoutMask {
                len: 1,
                rate,
                stream: 0,
            };
            let keep = 1.0 - rate;
            let uniform = |bits: u32| bits as f32 / (1u32 << RANDOM_BITS) as f32;
            let t = op.threshold();
            assert!(uniform(t - 1) < keep, "rate {rate}");
            assert!(t == 1 << RANDOM_BITS || uniform(t) >= keep, "rate {rate}");
        }
    }

    #[test]
    fn masks_keep_the_right_fraction_and_scale_kept_values() {
        let mask = mask(100_003, 0.1, 3, 42);
        let kept = kept(&mask).iter().filter(|&&k| k).count() as f64 / mask.len() as f64;
        assert!((kept - 0.9).abs() < 0.005, "kept fraction {kept}");
        assert!(mask
            .iter()
            .all(|&v| v == 0.0 || (v - 1.0 / 0.9).abs() < 1e-6));
        let mean = mask.iter().map(|&v| v as f64).sum::<f64>() / mask.len() as f64;
        assert!(
            (mean - 1.0).abs() < 0.01,
            "inverted dropout keeps the mean: {mean}"
        );
        let half = self::mask(100_000, 0.5, 0, 42);
        let kept = half.iter().filter(|&&v| v == 2.0).count() as f64 / half.len() as f64;
        assert!((kept - 0.5).abs() < 0.005, "kept fraction {kept}");
    }

    #[test]
    fn one_key_gives_one_mask() {
        assert_eq!(mask(50_000, 0.1, 7, 99), mask(50_000, 0.1, 7, 99));
        // A longer mask begins with the shorter one: each value depends on its index alone.
        assert_eq!(mask(70_001, 0.1, 7, 99)[..50_000], mask(50_000, 0.1, 7, 99));
    }

    #[test]
    fn streams_and_keys_give_uncorrelated_masks() {
        let len = 200_000;
        let base = kept(&mask(len, 0.1, 0, 1));
        let others = [
            mask(len, 0.1, 1, 1),
            mask(len, 0.1, 2, 1),
            mask(len, 0.1, 0, 2),
            mask(len, 0.1, 0, 1 ^ (1 << 63)),
            mask(len, 0.1, 0, 1 ^ 0x9e37_79b9_7f4a_7c15),
        ];
        for other in others {
            let other = kept(&other);
            assert_ne!(base, other);
            // Independent patterns: correlation ~ N(0, 1 / len), sd 0.0022.
            let r = correlation(&base, &other);
            assert!(r.abs() < 0.015, "correlation {r}");
        }
        // Nor is a mask correlated with itself shifted by a counter (4 values) or one value.
        for shift in [1, 4, 5] {
            let r = correlation(&base[shift..], &base[..len - shift]);
            assert!(r.abs() < 0.015, "shift {shift}: correlation {r}");
        }
    }

    /// Philox4x32-10 written out plainly, round keys first, for [`the_kernel_is_the_reference`].
    fn reference_philox(counter: [u32; 4], key: [u32; 2]) -> [u32; 4] {
        let mulhilo = |a: u32, b: u32| {
            let product = u64::from(a) * u64::from(b);
            ((product >> 32) as u32, (product & 0xffff_ffff) as u32)
        };
        let round_keys: Vec<[u32; 2]> = (0..10u32)
            .map(|r| {
                [
                    key[0].wrapping_add(r.wrapping_mul(0x9E37_79B9)),
                    key[1].wrapping_add(r.wrapping_mul(0xBB67_AE85)),
                ]
            })
            .collect();
        let mut x = counter;
        for k in round_keys {
            let (hi0, lo0) = mulhilo(0xD251_1F53, x[0]);
            let (hi1, lo1) = mulhilo(0xCD9E_8D57, x[2]);
            x = [hi1 ^ x[1] ^ k[0], lo1, hi0 ^ x[3] ^ k[1], lo0];
        }
        x
    }

    #[test]
    fn the_kernel_is_the_reference() {
        let (rate, stream, key) = (0.15f32, 5u32, 0xdead_beef_0123_4567u64);
        // Several tasks, and a length that ends inside a counter's eight values.
        let len = 3 * TASK + 7;
        let keep = 1.0 - rate;
        let scale = 1.0 / keep;
        let expected: Vec<f32> = (0..len)
            .map(|i| {
                let words = reference_philox(
                    [(i / 8) as u32, stream, 0, 0],
                    [key as u32, (key >> 32) as u32],
                );
                // Element 8b + s: half s % 2 (low first) of word s / 2.
                let half = (words[(i % 8) / 2] >> (16 * (i % 2))) & 0xffff;
                let uniform = half as f32 / 65_536.0;
                if uniform < keep {
                    scale
                } else {
                    0.0
                }
            })
            .collect();
        let op = DropoutMask { len, rate, stream };
        assert_eq!(mask(len, rate, stream, key), expected);
        assert_eq!(op.values(key, 3), expected);
        let plain: Vec<f32> = (0..len)
            .map(|i| mask_value(key, stream, i, op.threshold(), op.scale()))
            .collect();
        assert_eq!(plain, expected);
    }
}
