//! The copy ops between host and device, told by their names: luminal_cuda does not export their
//! types, and a profiled op shows the name of the op it times.
use luminal::op::Operator;

use crate::runtime::profile::op_kind;

/// Whether `op` uploads a value to the device: luminal_cuda's `CudaCopyToDevice`, or the
/// [`CudaPinnedUpload`](super::pinned_uploads::CudaPinnedUpload) that replaces it.
pub fn is_upload(op: &dyn Operator) -> bool {
    matches!(
        op_kind(op).as_str(),
        "CudaCopyToDevice" | "CudaPinnedUpload"
    )
}

/// Whether `op` is luminal_cuda's download of a value to the host (`CudaCopyFromDevice`).
pub fn is_download(op: &dyn Operator) -> bool {
    op_kind(op) == "CudaCopyFromDevice"
}
