use std::{
    fs::{File, OpenOptions},
    io::{BufWriter, Write},
    path::Path,
};

use serde::Serialize;

use crate::{DropbertError, Result};

/// Metrics as JSON lines, one object per event, appended (a resumed run continues the file).
pub struct MetricsLog {
    writer: BufWriter<File>,
}

impl MetricsLog {
    pub fn open(path: &Path) -> Result<Self> {
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .map_err(|e| DropbertError::io(path, e))?;
        Ok(Self {
            writer: BufWriter::new(file),
        })
    }

    pub fn write(&mut self, record: &impl Serialize) -> Result<()> {
        let line = serde_json::to_string(record).expect("metrics serialize");
        writeln!(self.writer, "{line}")
            .and_then(|_| self.writer.flush())
            .map_err(|e| DropbertError::io("metrics.jsonl", e))
    }
}
