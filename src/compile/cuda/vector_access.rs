//! C statements that move 4 neighbouring values at once, for kernels whose threads take 4
//! neighbours each: one 16-byte load or store of floats, one 8-byte access of bf16 values. The
//! index must be a multiple of 4 (device buffers are 256-byte aligned).
use super::bf16_rounding::Store;

/// Neighbouring values a thread moves at once in rows of `width` values: 4 (one 16-byte access of
/// floats) where every row starts 4-aligned, else 1.
pub fn values_at_once(width: usize) -> usize {
    if width.is_multiple_of(4) {
        4
    } else {
        1
    }
}

/// Loads `name[at..at + 4]`, float32 or bf16, into the floats `into[0..4]`.
pub fn load4(name: &str, at: &str, into: &str, bf16: bool) -> String {
    if bf16 {
        format!(
            "{{ uint2 loaded = *reinterpret_cast<const uint2 *>({name} + {at}); \
             {into}[0] = __uint_as_float(loaded.x << 16); \
             {into}[1] = __uint_as_float(loaded.x & 0xffff0000u); \
             {into}[2] = __uint_as_float(loaded.y << 16); \
             {into}[3] = __uint_as_float(loaded.y & 0xffff0000u); }}"
        )
    } else {
        format!(
            "{{ float4 loaded = *reinterpret_cast<const float4 *>({name} + {at}); \
             {into}[0] = loaded.x; {into}[1] = loaded.y; {into}[2] = loaded.z; \
             {into}[3] = loaded.w; }}"
        )
    }
}

/// Stores `value[0..4]` at `at` of a kernel's only result, stored as `store` says (`out0`, and
/// `copy0` for `Both`; see [`Store`]).
pub fn store4(store: Store, at: &str, value: &str) -> String {
    let floats = |to: &str| {
        format!(
            "*reinterpret_cast<float4 *>({to} + {at}) = \
             make_float4({value}[0], {value}[1], {value}[2], {value}[3]);"
        )
    };
    let halves = |to: &str| {
        format!(
            "*reinterpret_cast<uint2 *>({to} + {at}) = make_uint2(\
             bf16_bits({value}[0]) | ((unsigned int)bf16_bits({value}[1]) << 16), \
             bf16_bits({value}[2]) | ((unsigned int)bf16_bits({value}[3]) << 16));"
        )
    };
    match store {
        Store::Float => floats("out0"),
        Store::Bf16 => halves("out0"),
        Store::Both => format!("{} {}", floats("out0"), halves("copy0")),
    }
}
