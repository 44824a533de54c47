use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
};

use safetensors::{tensor::TensorView, Dtype, SafeTensors};

use crate::{DropbertError, Result};

/// The values of one tensor, in the dtypes dropbert reads and writes.
#[derive(Debug, Clone, PartialEq)]
pub enum TensorValues {
    F32(Vec<f32>),
    I64(Vec<i64>),
}

/// A tensor read from or written to a safetensors file.
#[derive(Debug, Clone, PartialEq)]
pub struct TensorData {
    pub shape: Vec<usize>,
    pub values: TensorValues,
}

impl TensorData {
    pub fn f32(shape: Vec<usize>, values: Vec<f32>) -> Self {
        debug_assert_eq!(shape.iter().product::<usize>(), values.len());
        Self {
            shape,
            values: TensorValues::F32(values),
        }
    }

    pub fn i64(shape: Vec<usize>, values: Vec<i64>) -> Self {
        debug_assert_eq!(shape.iter().product::<usize>(), values.len());
        Self {
            shape,
            values: TensorValues::I64(values),
        }
    }

    /// The values as f32 (integers converted), as the graph takes them.
    pub fn to_f32(&self) -> Vec<f32> {
        match &self.values {
            TensorValues::F32(values) => values.clone(),
            TensorValues::I64(values) => values.iter().map(|&v| v as f32).collect(),
        }
    }

    fn dtype_name(&self) -> &'static str {
        match self.values {
            TensorValues::F32(_) => "F32",
            TensorValues::I64(_) => "I64",
        }
    }

    fn bytes(&self) -> Vec<u8> {
        match &self.values {
            TensorValues::F32(values) => values.iter().flat_map(|v| v.to_le_bytes()).collect(),
            TensorValues::I64(values) => values.iter().flat_map(|v| v.to_le_bytes()).collect(),
        }
    }
}

/// Reads every tensor of a safetensors file. Float tensors of any width (F16, BF16, F32, F64) are
/// converted to f32; integer tensors to i64.
pub fn read_tensor_file(path: &Path) -> Result<BTreeMap<String, TensorData>> {
    let bytes = std::fs::read(path).map_err(|e| DropbertError::io(path, e))?;
    let file = SafeTensors::deserialize(&bytes).map_err(|e| DropbertError::Safetensors {
        path: path.to_path_buf(),
        message: e.to_string(),
    })?;
    file.tensors()
        .into_iter()
        .map(|(name, view)| {
            let values = convert(path, &name, &view)?;
            Ok((
                name,
                TensorData {
                    shape: view.shape().to_vec(),
                    values,
                },
            ))
        })
        .collect()
}

fn convert(path: &Path, name: &str, view: &TensorView<'_>) -> Result<TensorValues> {
    let data = view.data();
    let floats = |width: usize, decode: &dyn Fn(&[u8]) -> f32| {
        TensorValues::F32(data.chunks_exact(width).map(decode).collect())
    };
    let integers = |width: usize, decode: &dyn Fn(&[u8]) -> i64| {
        TensorValues::I64(data.chunks_exact(width).map(decode).collect())
    };
    Ok(match view.dtype() {
        Dtype::F32 => floats(4, &|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])),
        Dtype::F64 => floats(8, &|b| f64::from_le_bytes(b.try_into().unwrap()) as f32),
        Dtype::F16 => floats(2, &|b| half_to_f32(u16::from_le_bytes([b[0], b[1]]))),
        Dtype::BF16 => floats(2, &|b| {
            f32::from_bits((u16::from_le_bytes([b[0], b[1]]) as u32) << 16)
        }),
        Dtype::I64 => integers(8, &|b| i64::from_le_bytes(b.try_into().unwrap())),
        Dtype::I32 => integers(4, &|b| i32::from_le_bytes(b.try_into().unwrap()) as i64),
        Dtype::U8 => integers(1, &|b| b[0] as i64),
        Dtype::BOOL => integers(1, &|b| (b[0] != 0) as i64),
        other => {
            return Err(DropbertError::TensorDtype {
                path: path.to_path_buf(),
                name: name.to_string(),
                found: format!("{other:?}"),
                expected: "a float or integer dtype".into(),
            })
        }
    })
}

fn half_to_f32(bits: u16) -> f32 {
    let sign = ((bits >> 15) as u32) << 31;
    let exponent = ((bits >> 10) & 0x1f) as u32;
    let mantissa = (bits & 0x3ff) as u32;
    let magnitude = match (exponent, mantissa) {
        (0, 0) => 0,
        (0, _) => {
            // Subnormal half: renormalise into an f32 normal.
            let shift = mantissa.leading_zeros() - 21;
            let mantissa = (mantissa << shift) & 0x3ff;
            ((127 - 15 + 1 - shift) << 23) | (mantissa << 13)
        }
        (0x1f, 0) => 0xff << 23,
        (0x1f, _) => (0xff << 23) | (mantissa << 13),
        _ => ((exponent + 127 - 15) << 23) | (mantissa << 13),
    };
    f32::from_bits(sign | magnitude)
}

/// Writes tensors to a safetensors file atomically: a temporary file in the same folder, then a
/// rename, so a reader never sees half a file.
pub fn write_tensor_file(path: &Path, tensors: &BTreeMap<String, TensorData>) -> Result<()> {
    let bytes: Vec<(String, Vec<u8>)> = tensors
        .iter()
        .map(|(name, tensor)| (name.clone(), tensor.bytes()))
        .collect();
    let views = tensors
        .iter()
        .zip(&bytes)
        .map(|((name, tensor), (_, data))| {
            let dtype = match tensor.dtype_name() {
                "F32" => Dtype::F32,
                _ => Dtype::I64,
            };
            TensorView::new(dtype, tensor.shape.clone(), data)
                .map(|view| (name.clone(), view))
                .map_err(|e| DropbertError::Safetensors {
                    path: path.to_path_buf(),
                    message: e.to_string(),
                })
        })
        .collect::<Result<Vec<_>>>()?;
    let serialized =
        safetensors::serialize(views, &None).map_err(|e| DropbertError::Safetensors {
            path: path.to_path_buf(),
            message: e.to_string(),
        })?;
    write_atomically(path, &serialized)
}

/// Writes `contents` to `path` through a temporary sibling file and a rename.
pub fn write_atomically(path: &Path, contents: &[u8]) -> Result<()> {
    let temporary = temporary_sibling(path);
    std::fs::write(&temporary, contents).map_err(|e| DropbertError::io(&temporary, e))?;
    std::fs::rename(&temporary, path).map_err(|e| DropbertError::io(path, e))
}

fn temporary_sibling(path: &Path) -> PathBuf {
    let mut name = path
        .file_name()
        .map(|n| n.to_os_string())
        .unwrap_or_default();
    name.push(format!(".tmp{}", std::process::id()));
    path.with_file_name(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn half_precision_values_convert_exactly() {
        assert_eq!(half_to_f32(0x3c00), 1.0);
        assert_eq!(half_to_f32(0xc000), -2.0);
        assert_eq!(half_to_f32(0x0001), 2f32.powi(-24));
        assert_eq!(half_to_f32(0x7bff), 65504.0);
        assert!(half_to_f32(0x7c00).is_infinite());
    }

    #[test]
    fn written_tensors_read_back_identically() {
        let folder = std::env::temp_dir().join(format!("dropbert-tf-{}", std::process::id()));
        std::fs::create_dir_all(&folder).unwrap();
        let path = folder.join("t.safetensors");
        let mut tensors = BTreeMap::new();
        tensors.insert(
            "a".into(),
            TensorData::f32(vec![2, 3], vec![0.5, -1.0, 2.0, 3.0, 4.0, 5.5]),
        );
        tensors.insert("b".into(), TensorData::i64(vec![3], vec![-1, 0, 7]));
        write_tensor_file(&path, &tensors).unwrap();
        assert_eq!(read_tensor_file(&path).unwrap(), tensors);
        std::fs::remove_dir_all(&folder).unwrap();
    }
}
