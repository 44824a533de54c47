pub use crate::ops::gather_rows;
