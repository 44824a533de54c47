use std::borrow::Cow;

use luminal::{op::InputTensor, prelude::*};

/// The buffer of an op input as it is in memory, whatever view the op reads it through.
pub fn input_buffer<'a>(input: &'a InputTensor<'a>) -> &'a [f32] {
    input
        .borrowed()
        .data
        .as_any()
        .downcast_ref::<Vec<f32>>()
        .expect("dropbert's CPU ops take f32 buffers")
}

/// The logical values of an op input: the buffer itself where the view is the identity, else
/// gathered through the view's index and validity expressions (0 where invalid, as luminal pads).
pub fn input_values<'a>(input: &'a InputTensor<'a>, view: &ShapeTracker) -> Cow<'a, [f32]> {
    let data = input_buffer(input);
    let logical_len = view
        .n_elements()
        .to_usize()
        .expect("dropbert graphs have static shapes");
    if view.is_contiguous() && !view.is_sliced() && !view.is_padded() {
        return Cow::Borrowed(&data[..logical_len]);
    }
    let (index, valid) = (view.index_expression(), view.valid_expression());
    Cow::Owned(
        (0..logical_len)
            .map(|i| {
                if valid.exec_single_var(i) != 0 {
                    data[index.exec_single_var(i)]
                } else {
                    0.0
                }
            })
            .collect(),
    )
}
