//! The copy ops between host and device, told by their names: luminal_cuda does not export their
//! types, and a profiled op shows the name of the op it times.
use luminal::op::Operator;

/// Whether `op` uploads a value to the device: luminal_cuda's `CudaCopyToDevice`, or the
/// [`CudaPinnedUpload`](super::pinned_uploads::CudaPinnedUpload) that replaces it.
pub fn is_upload(op: &dyn Operator) -> bool {
    matches!(
        type_name(op).as_str(),
        "CudaCopyToDevice" | "CudaPinnedUpload"
    )
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
