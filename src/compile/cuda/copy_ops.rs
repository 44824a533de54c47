//! luminal_cuda's copy ops, told by their names: it does not export their types.
use luminal::op::Operator;

/// Whether `op` is luminal_cuda's upload of a value to the device (`CudaCopyToDevice`).
pub fn is_upload(op: &dyn Operator) -> bool {
    type_name(op) == "CudaCopyToDevice"
}

/// Whether `op` is luminal_cuda's download of a value to the host (`CudaCopyFromDevice`).
pub fn is_download(op: &dyn Operator) -> bool {
    type_name(op) == "CudaCopyFromDevice"
}

/// The op's type name as its `Debug` output starts with it.
fn type_name(op: &dyn Operator) -> String {
    let shown = format!("{op:?}");
    shown
        .split(['(', ' ', '<', '{'])
        .next()
        .unwrap_or_default()
        .to_string()
}
