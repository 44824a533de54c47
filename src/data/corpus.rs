//! Plain-text corpora: a file or a folder of files, gzip-compressed or not, split into documents.
//!
//! Bad input never stops a run: a line that is not UTF-8 or is longer than
//! [`CorpusLimits::max_line_bytes`], an empty file, or a file that cannot be read (or whose gzip
//! stream is corrupt) is skipped and recorded in a [`SkipReport`] with its file and line. Only a
//! corpus path that does not exist, or that holds no file at all, is an error.

use std::fmt;
use std::fs::File;
use std::io::{self, BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use flate2::bufread::MultiGzDecoder;

use crate::{DropbertError, Result};

const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];
const UTF8_BOM: &[u8] = b"\xef\xbb\xbf";

/// How a file's lines group into documents.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DocumentMode {
    /// Consecutive non-blank lines form one document; a blank (or whitespace-only) line ends it.
    #[default]
    BlankLineBlocks,
    /// Every non-blank line is a document of its own.
    Lines,
}

/// Bounds on what the reader accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CorpusLimits {
    /// Lines longer than this many bytes (without the line break) are skipped; the reader never
    /// holds more than this much of one line in memory.
    pub max_line_bytes: usize,
    /// How many skipped inputs the report keeps as examples (all of them are counted).
    pub max_examples: usize,
}

impl Default for CorpusLimits {
    fn default() -> Self {
        Self {
            max_line_bytes: 100_000,
            max_examples: 10,
        }
    }
}

/// One document of the corpus.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Document {
    /// The file it came from (shared by all documents of that file).
    pub source: Arc<Path>,
    /// 1-based number of its first line in that file.
    pub line: u64,
    /// Its lines joined with `\n`, line breaks and a leading byte-order mark removed.
    pub text: String,
}

impl AsRef<str> for Document {
    fn as_ref(&self) -> &str {
        &self.text
    }
}

/// Why an input was skipped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InputProblem {
    /// The line is not valid UTF-8; `valid_up_to` bytes of it were.
    NotUtf8 { valid_up_to: usize },
    /// The line has `bytes` bytes, more than the limit.
    LineTooLong { bytes: u64, limit: usize },
    /// The file holds nothing but whitespace.
    EmptyFile,
    /// The file could not be opened or read to its end (I/O error, corrupt gzip stream, a folder
    /// entry that cannot be listed); lines before the failure are kept.
    Unreadable { message: String },
}

/// One skipped input: where it is and why it was skipped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SkippedInput {
    pub path: PathBuf,
    /// 1-based line number, where the problem is a line's.
    pub line: Option<u64>,
    pub problem: InputProblem,
}

impl fmt::Display for SkippedInput {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.path.display())?;
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
        }
        match &self.problem {
            InputProblem::NotUtf8 { valid_up_to } => {
                write!(
                    f,
                    ": not UTF-8 (invalid byte at column {})",
                    valid_up_to + 1
                )
            }
            InputProblem::LineTooLong { bytes, limit } => {
                write!(
                    f,
                    ": line of {bytes} bytes is longer than the limit of {limit}"
                )
            }
            InputProblem::EmptyFile => write!(f, ": empty file"),
            InputProblem::Unreadable { message } => write!(f, ": unreadable: {message}"),
        }
    }
}

/// What the reader read and what it skipped, for the run's log.
///
/// `Display` gives one summary line; the alternate form (`{:#}`) adds one line per kept example.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SkipReport {
    /// Files opened (including empty and unreadable ones).
    pub files: usize,
    /// Lines read, skipped ones included.
    pub lines: u64,
    /// Bytes read (after decompression), skipped ones included.
    pub bytes: u64,
    pub documents: usize,
    pub non_utf8_lines: u64,
    pub overlong_lines: u64,
    /// Bytes of the skipped lines.
    pub skipped_bytes: u64,
    pub empty_files: usize,
    pub unreadable_files: usize,
    /// The first [`CorpusLimits::max_examples`] skipped inputs, in reading order.
    pub examples: Vec<SkippedInput>,
    /// The line length limit the reader applied.
    pub max_line_bytes: usize,
}

impl SkipReport {
    /// Number of skipped lines and files.
    pub fn skipped(&self) -> u64 {
        self.non_utf8_lines
            + self.overlong_lines
            + self.empty_files as u64
            + self.unreadable_files as u64
    }

    fn record(&mut self, limits: &CorpusLimits, item: SkippedInput) {
        match item.problem {
            InputProblem::NotUtf8 { .. } => self.non_utf8_lines += 1,
            InputProblem::LineTooLong { .. } => self.overlong_lines += 1,
            InputProblem::EmptyFile => self.empty_files += 1,
            InputProblem::Unreadable { .. } => self.unreadable_files += 1,
        }
        if self.examples.len() < limits.max_examples {
            self.examples.push(item);
        }
    }
}

fn plural(n: u64, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

impl fmt::Display for SkipReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "corpus: read {}, {}, {} bytes, {}; ",
            plural(self.files as u64, "file", "files"),
            plural(self.lines, "line", "lines"),
            self.bytes,
            plural(self.documents as u64, "document", "documents"),
        )?;
        if self.skipped() == 0 {
            return write!(f, "skipped nothing");
        }
        write!(
            f,
            "skipped {} not UTF-8, {} over {} bytes ({} bytes in all), {}, {}",
            plural(self.non_utf8_lines, "line", "lines"),
            plural(self.overlong_lines, "line", "lines"),
            self.max_line_bytes,
            self.skipped_bytes,
            plural(self.empty_files as u64, "empty file", "empty files"),
            plural(
                self.unreadable_files as u64,
                "unreadable file",
                "unreadable files"
            ),
        )?;
        if let Some(first) = self.examples.first() {
            write!(f, "; first: {first}")?;
        }
        if f.alternate() {
            for example in &self.examples {
                write!(f, "\n  skipped {example}")?;
            }
        }
        Ok(())
    }
}

/// Reads files into documents, accumulating a [`SkipReport`].
#[derive(Debug)]
pub struct CorpusReader {
    mode: DocumentMode,
    limits: CorpusLimits,
    documents: Vec<Document>,
    report: SkipReport,
}

impl CorpusReader {
    pub fn new(mode: DocumentMode, limits: CorpusLimits) -> Self {
        Self {
            mode,
            limits,
            documents: Vec::new(),
            report: SkipReport {
                max_line_bytes: limits.max_line_bytes,
                ..SkipReport::default()
            },
        }
    }

    /// Reads a file, or every file under a folder (recursively, in sorted path order, skipping
    /// names that start with `.`; symbolic links to folders are not followed).
    ///
    /// Errors only if `path` cannot be inspected (e.g. does not exist); problems below it are
    /// recorded in the report.
    pub fn add_path(&mut self, path: &Path) -> Result<()> {
        let metadata = std::fs::metadata(path).map_err(|e| DropbertError::io(path, e))?;
        if metadata.is_dir() {
            let mut files = Vec::new();
            self.collect_files(path, &mut files);
            files.sort();
            for file in files {
                self.add_file(&file);
            }
        } else {
            self.add_file(path);
        }
        Ok(())
    }

    /// Reads one file (gzip-compressed if it starts with the gzip magic bytes).
    pub fn add_file(&mut self, path: &Path) {
        match File::open(path) {
            Ok(file) => self.add_reader(path, file),
            Err(e) => {
                self.report.files += 1;
                self.unreadable(path, None, e.to_string());
            }
        }
    }

    /// Reads a stream as if it were the file `source` (gzip-compressed if it starts with the gzip
    /// magic bytes), e.g. a corpus embedded in the binary.
    pub fn add_reader(&mut self, source: &Path, reader: impl Read) {
        self.report.files += 1;
        let mut reader = BufReader::with_capacity(1 << 16, reader);
        let is_gzip = match reader.fill_buf() {
            Ok(head) => head.starts_with(&GZIP_MAGIC),
            Err(e) => {
                self.unreadable(source, None, e.to_string());
                return;
            }
        };
        if is_gzip {
            let decoder = MultiGzDecoder::new(reader);
            self.add_text_stream(source, BufReader::with_capacity(1 << 16, decoder));
        } else {
            self.add_text_stream(source, reader);
        }
    }

    /// The documents read so far and the report.
    pub fn finish(self) -> (Vec<Document>, SkipReport) {
        (self.documents, self.report)
    }

    fn collect_files(&mut self, dir: &Path, files: &mut Vec<PathBuf>) {
        let entries = match std::fs::read_dir(dir) {
            Ok(entries) => entries,
            Err(e) => {
                self.unreadable(dir, None, e.to_string());
                return;
            }
        };
        let mut children = Vec::new();
        for entry in entries {
            match entry {
                Ok(entry) => children.push(entry.path()),
                Err(e) => self.unreadable(dir, None, e.to_string()),
            }
        }
        children.sort();
        for child in children {
            let hidden = child
                .file_name()
                .is_some_and(|name| name.to_string_lossy().starts_with('.'));
            if hidden {
                continue;
            }
            let Ok(link_metadata) = std::fs::symlink_metadata(&child) else {
                continue;
            };
            if link_metadata.is_dir() {
                self.collect_files(&child, files);
            } else if link_metadata.is_file() {
                files.push(child);
            } else if std::fs::metadata(&child).is_ok_and(|m| m.is_file()) {
                // A symbolic link to a file.
                files.push(child);
            }
        }
    }

    fn unreadable(&mut self, path: &Path, line: Option<u64>, message: String) {
        self.report.record(
            &self.limits,
            SkippedInput {
                path: path.to_path_buf(),
                line,
                problem: InputProblem::Unreadable { message },
            },
        );
    }

    fn add_text_stream(&mut self, source: &Path, mut reader: impl BufRead) {
        let shared_source: Arc<Path> = Arc::from(source);
        let mut buffer = Vec::new();
        let mut current: Option<Document> = None;
        let mut line_number = 0u64;
        let mut has_content = false;
        let mut failed = false;
        loop {
            let line = match read_bounded_line(&mut reader, &mut buffer, self.limits.max_line_bytes)
            {
                Ok(line) => line,
                Err(e) => {
                    self.unreadable(source, Some(line_number + 1), e.to_string());
                    failed = true;
                    break;
                }
            };
            let total_bytes = match line {
                BoundedLine::End => break,
                BoundedLine::Line { total_bytes } | BoundedLine::TooLong { total_bytes } => {
                    total_bytes
                }
            };
            line_number += 1;
            self.report.lines += 1;
            self.report.bytes += total_bytes;
            if let BoundedLine::TooLong { .. } = line {
                has_content = true;
                self.skip_line(
                    source,
                    line_number,
                    total_bytes,
                    InputProblem::LineTooLong {
                        bytes: content_bytes(total_bytes, &buffer),
                        limit: self.limits.max_line_bytes,
                    },
                );
                continue;
            }
            let mut bytes = strip_line_break(&buffer);
            if line_number == 1 {
                bytes = bytes.strip_prefix(UTF8_BOM).unwrap_or(bytes);
            }
            let text = match std::str::from_utf8(bytes) {
                Ok(text) => text,
                Err(e) => {
                    has_content = true;
                    self.skip_line(
                        source,
                        line_number,
                        total_bytes,
                        InputProblem::NotUtf8 {
                            valid_up_to: e.valid_up_to(),
                        },
                    );
                    continue;
                }
            };
            if text.trim().is_empty() {
                if let Some(document) = current.take() {
                    self.push_document(document);
                }
                continue;
            }
            has_content = true;
            match (&mut current, self.mode) {
                (Some(document), DocumentMode::BlankLineBlocks) => {
                    document.text.push('\n');
                    document.text.push_str(text);
                }
                _ => {
                    if let Some(document) = current.take() {
                        self.push_document(document);
                    }
                    current = Some(Document {
                        source: shared_source.clone(),
                        line: line_number,
                        text: text.to_string(),
                    });
                }
            }
        }
        if let Some(document) = current.take() {
            self.push_document(document);
        }
        if !has_content && !failed {
            self.report.record(
                &self.limits,
                SkippedInput {
                    path: source.to_path_buf(),
                    line: None,
                    problem: InputProblem::EmptyFile,
                },
            );
        }
    }

    fn skip_line(&mut self, path: &Path, line: u64, total_bytes: u64, problem: InputProblem) {
        self.report.skipped_bytes += total_bytes;
        self.report.record(
            &self.limits,
            SkippedInput {
                path: path.to_path_buf(),
                line: Some(line),
                problem,
            },
        );
    }

    fn push_document(&mut self, document: Document) {
        self.report.documents += 1;
        self.documents.push(document);
    }
}

/// Reads a corpus file or folder into documents; see [`CorpusReader::add_path`].
pub fn read_corpus(
    path: &Path,
    mode: DocumentMode,
    limits: CorpusLimits,
) -> Result<(Vec<Document>, SkipReport)> {
    let mut reader = CorpusReader::new(mode, limits);
    reader.add_path(path)?;
    let (documents, report) = reader.finish();
    if report.files == 0 {
        return Err(DropbertError::InvalidInput(format!(
            "corpus {} holds no files",
            path.display()
        )));
    }
    Ok((documents, report))
}

enum BoundedLine {
    End,
    /// A whole line is in the buffer; `total_bytes` counts its line break too.
    Line {
        total_bytes: u64,
    },
    /// The line exceeded the limit; the buffer holds only its line break (if any).
    TooLong {
        total_bytes: u64,
    },
}

/// Reads one `\n`-terminated line into `buffer` without ever holding more than about
/// `limit` bytes of it: an over-long line is consumed and counted but not kept.
fn read_bounded_line(
    reader: &mut impl BufRead,
    buffer: &mut Vec<u8>,
    limit: usize,
) -> io::Result<BoundedLine> {
    buffer.clear();
    let mut total = 0u64;
    let mut too_long = false;
    let mut previous_byte = None;
    loop {
        let available = match reader.fill_buf() {
            Ok(available) => available,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        if available.is_empty() {
            break;
        }
        let (chunk, found_end) = match available.iter().position(|&b| b == b'\n') {
            Some(i) => (&available[..=i], true),
            None => (available, false),
        };
        let used = chunk.len();
        total += used as u64;
        if !too_long {
            buffer.extend_from_slice(chunk);
            // The limit is on the content, without the line break.
            too_long = strip_line_break(buffer).len() > limit;
        }
        if too_long {
            // Keep only the line break, so the content's length is known.
            buffer.clear();
            if found_end {
                let before_end = match used {
                    1 => previous_byte,
                    _ => Some(chunk[used - 2]),
                };
                if before_end == Some(b'\r') {
                    buffer.push(b'\r');
                }
                buffer.push(b'\n');
            }
        }
        previous_byte = chunk.last().copied();
        reader.consume(used);
        if found_end {
            break;
        }
    }
    Ok(match (total, too_long) {
        (0, _) => BoundedLine::End,
        (total_bytes, false) => BoundedLine::Line { total_bytes },
        (total_bytes, true) => BoundedLine::TooLong { total_bytes },
    })
}

fn strip_line_break(line: &[u8]) -> &[u8] {
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    line.strip_suffix(b"\r").unwrap_or(line)
}

/// Bytes of an over-long line without its line break, which is all `line_break` holds.
fn content_bytes(total_bytes: u64, line_break: &[u8]) -> u64 {
    total_bytes - line_break.len() as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(input: &[u8], limit: usize) -> Vec<(String, Option<u64>)> {
        let mut reader = BufReader::with_capacity(4, input);
        let mut buffer = Vec::new();
        let mut out = Vec::new();
        loop {
            match read_bounded_line(&mut reader, &mut buffer, limit).unwrap() {
                BoundedLine::End => break,
                BoundedLine::Line { .. } => out.push((
                    String::from_utf8_lossy(strip_line_break(&buffer)).into_owned(),
                    None,
                )),
                BoundedLine::TooLong { total_bytes } => {
                    out.push((String::new(), Some(total_bytes)))
                }
            }
        }
        out
    }

    #[test]
    fn bounded_lines_split_and_skip() {
        assert_eq!(
            lines(b"ab\r\ncdefgh\nijk", 3),
            [
                ("ab".to_string(), None),
                (String::new(), Some(7)),
                ("ijk".to_string(), None)
            ]
        );
        assert_eq!(lines(b"abc\r\n", 3), [("abc".to_string(), None)]);
        let mut reader = BufReader::with_capacity(4, &b"abcdefg\r\nx"[..]);
        let mut buffer = Vec::new();
        let line = read_bounded_line(&mut reader, &mut buffer, 3).unwrap();
        assert!(matches!(line, BoundedLine::TooLong { total_bytes: 9 }));
        assert_eq!(content_bytes(9, &buffer), 7);
        assert_eq!(lines(b"abcd", 3), [(String::new(), Some(4))]);
        assert!(lines(b"", 3).is_empty());
    }
}
