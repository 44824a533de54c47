use luminal::prelude::*;

/// The exact GELU of Hugging Face BERT (`hidden_act = "gelu"`): `x/2 * (1 + erf(x/sqrt(2)))`.
pub fn gelu<S: Shape>(x: GraphTensor<S>) -> GraphTensor<S> {
    x * 0.5 * (erf(x * std::f32::consts::FRAC_1_SQRT_2) + 1.0)
}

/// erf from luminal's primitive ops, so that every backend and the autograd handle it: the
/// Abramowitz-Stegun 7.1.26 rational approximation, absolute error below 1.5e-7.
pub fn erf<S: Shape>(x: GraphTensor<S>) -> GraphTensor<S> {
    const P: f32 = 0.327_591_1;
    const A: [f32; 5] = [
        0.254_829_6,
        -0.284_496_74,
        1.421_413_8,
        -1.453_152_1,
        1.061_405_4,
    ];
    let magnitude = x.abs();
    let t = (magnitude * P + 1.0).recip();
    let polynomial = ((((t * A[4] + A[3]) * t + A[2]) * t + A[1]) * t + A[0]) * t;
    let erf_of_magnitude = -(polynomial * (-(x * x)).exp()) + 1.0;
    x.sign() * erf_of_magnitude
}
