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

/// Whether `op` downloads a value to the host: luminal_cuda's `CudaCopyFromDevice`, or the
/// [`CudaPinnedDownload`](super::pinned_downloads::CudaPinnedDownload) that replaces it.
pub fn is_download(op: &dyn Operator) -> bool {
    matches!(
        op_kind(op).as_str(),
        "CudaCopyFromDevice" | "CudaPinnedDownload"
    )
}
