//! The MLM data pipeline on CPU: corpus reading, packing, masking, batching, vocabulary training.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use dropbert::data::corpus::{read_corpus, CorpusLimits, Document, DocumentMode, InputProblem};
use dropbert::data::masking::{MaskingVocab, MlmMasking, IGNORE_LABEL};
use dropbert::data::mlm_batches::{DataPosition, MlmBatch, MlmDataset, MlmDatasetOptions};
use dropbert::data::packing::SequencePacker;
use dropbert::data::tokenizer::WordPieceTokenizer;
use dropbert::data::vocab_training::{train_wordpiece_vocab, VocabTraining, SPECIAL_TOKENS};
use dropbert::DropbertError;
use proptest::prelude::*;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use crate::common::SPECIAL;

/// A fresh folder under the system temp dir, removed by the test that made it.
fn scratch_dir(name: &str) -> PathBuf {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let dir = std::env::temp_dir().join(format!(
        "dropbert-data-{}-{}-{name}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn write(path: &Path, bytes: &[u8]) {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).unwrap();
    }
    std::fs::write(path, bytes).unwrap();
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    encoder.write_all(bytes).unwrap();
    encoder.finish().unwrap()
}

fn is_special(id: u32) -> bool {
    id <= 4
}

fn small_tokenizer() -> WordPieceTokenizer {
    let mut tokens: Vec<String> = SPECIAL_TOKENS.iter().map(|t| t.to_string()).collect();
    for word in [
        "the", "cat", "sat", "on", "mat", "a", "dog", "ran", ".", "big", "red", "##s",
    ] {
        tokens.push(word.to_string());
    }
    WordPieceTokenizer::from_tokens(tokens, true).unwrap()
}

// ---------------------------------------------------------------------------------------------
// Corpus reading

#[test]
fn documents_are_blank_line_blocks_or_lines() {
    let dir = scratch_dir("modes");
    let file = dir.join("corpus.txt");
    write(
        &file,
        "\u{feff}first line\r\nsecond line\n\n   \nthird\n\n\nfourth\nfifth".as_bytes(),
    );
    let (blocks, report) = read_corpus(
        &file,
        DocumentMode::BlankLineBlocks,
        CorpusLimits::default(),
    )
    .unwrap();
    let texts: Vec<(&str, u64)> = blocks.iter().map(|d| (d.text.as_str(), d.line)).collect();
    assert_eq!(
        texts,
        [
            ("first line\nsecond line", 1),
            ("third", 5),
            ("fourth\nfifth", 8)
        ]
    );
    assert_eq!(&*blocks[0].source, file.as_path());
    assert_eq!(report.documents, 3);
    assert_eq!(report.lines, 9);
    assert_eq!(report.skipped(), 0);
    assert!(report.to_string().contains("skipped nothing"), "{report}");

    let (lines, _) = read_corpus(&file, DocumentMode::Lines, CorpusLimits::default()).unwrap();
    let texts: Vec<(&str, u64)> = lines.iter().map(|d| (d.text.as_str(), d.line)).collect();
    assert_eq!(
        texts,
        [
            ("first line", 1),
            ("second line", 2),
            ("third", 5),
            ("fourth", 8),
            ("fifth", 9)
        ]
    );
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn folders_are_read_recursively_in_sorted_order_with_gzip() {
    let dir = scratch_dir("folder");
    write(&dir.join("b.txt"), b"from b\n");
    write(
        &dir.join("a/z.txt.gz"),
        &gzip(b"from a/z, gzipped\n\nsecond block\n"),
    );
    write(&dir.join("a/y.txt"), b"from a/y\n");
    write(&dir.join(".hidden"), b"never read\n");
    let (documents, report) =
        read_corpus(&dir, DocumentMode::BlankLineBlocks, CorpusLimits::default()).unwrap();
    let texts: Vec<&str> = documents.iter().map(|d| d.text.as_str()).collect();
    assert_eq!(
        texts,
        ["from a/y", "from a/z, gzipped", "second block", "from b"]
    );
    assert_eq!(report.files, 3);
    assert!(documents[1].source.ends_with("a/z.txt.gz"));
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn bad_input_is_skipped_and_reported_with_file_and_line() {
    let dir = scratch_dir("bad");
    let text = dir.join("text.txt");
    let long_line = "x".repeat(200);
    let mut bytes = b"good one\nbad \xff\xfe byte\ngood two\n".to_vec();
    bytes.extend_from_slice(long_line.as_bytes());
    bytes.extend_from_slice(b"\r\ngood three\n");
    write(&text, &bytes);
    write(&dir.join("empty.txt"), b"");
    write(&dir.join("blank.txt"), b"\n  \n");
    let limits = CorpusLimits {
        max_line_bytes: 100,
        max_examples: 10,
    };
    let (documents, report) = read_corpus(&dir, DocumentMode::Lines, limits).unwrap();
    let texts: Vec<(&str, u64)> = documents
        .iter()
        .map(|d| (d.text.as_str(), d.line))
        .collect();
    assert_eq!(texts, [("good one", 1), ("good two", 3), ("good three", 5)]);
    assert_eq!(report.files, 3);
    assert_eq!(report.non_utf8_lines, 1);
    assert_eq!(report.overlong_lines, 1);
    assert_eq!(report.empty_files, 2);
    assert_eq!(report.unreadable_files, 0);
    assert_eq!(report.skipped(), 4);
    assert_eq!(report.skipped_bytes, 12 + 202);

    let where_what: Vec<(String, Option<u64>, InputProblem)> = report
        .examples
        .iter()
        .map(|e| {
            (
                e.path.file_name().unwrap().to_string_lossy().into_owned(),
                e.line,
                e.problem.clone(),
            )
        })
        .collect();
    assert_eq!(
        where_what,
        [
            ("blank.txt".into(), None, InputProblem::EmptyFile),
            ("empty.txt".into(), None, InputProblem::EmptyFile),
            (
                "text.txt".into(),
                Some(2),
                InputProblem::NotUtf8 { valid_up_to: 4 }
            ),
            (
                "text.txt".into(),
                Some(4),
                InputProblem::LineTooLong {
                    bytes: 200,
                    limit: 100
                }
            ),
        ]
    );
    let summary = report.to_string();
    assert!(!summary.contains('\n'), "{summary}");
    for expected in [
        "1 line not UTF-8",
        "1 line over 100 bytes",
        "2 empty files",
        "blank.txt: empty file",
    ] {
        assert!(summary.contains(expected), "{expected:?} not in {summary}");
    }
    let detailed = format!("{report:#}");
    assert!(
        detailed.contains("text.txt:2: not UTF-8 (invalid byte at column 5)"),
        "{detailed}"
    );
    assert!(
        detailed.contains("text.txt:4: line of 200 bytes is longer than the limit of 100"),
        "{detailed}"
    );
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn corrupt_gzip_keeps_what_was_read_and_reports_the_file() {
    let dir = scratch_dir("corrupt");
    let mut bytes = gzip(&b"line one\nline two\n".repeat(1000));
    let len = bytes.len();
    bytes.truncate(len / 2);
    write(&dir.join("cut.txt.gz"), &bytes);
    let (documents, report) =
        read_corpus(&dir, DocumentMode::Lines, CorpusLimits::default()).unwrap();
    assert_eq!(report.unreadable_files, 1);
    assert_eq!(documents.len() as u64, report.lines);
    assert!(!documents.is_empty());
    assert!(matches!(
        report.examples[0].problem,
        InputProblem::Unreadable { .. }
    ));
    assert!(report.examples[0].line.is_some());

    // A gzip header and nothing valid after it: unreadable from line 1, not also "empty".
    write(&dir.join("cut.txt.gz"), &[0x1f, 0x8b, 0xff, 0xff, 0xff]);
    let (documents, report) =
        read_corpus(&dir, DocumentMode::Lines, CorpusLimits::default()).unwrap();
    assert!(documents.is_empty());
    assert_eq!((report.unreadable_files, report.empty_files), (1, 0));
    assert_eq!(report.examples[0].line, Some(1));
    assert!(
        report.to_string().contains("cut.txt.gz:1: unreadable: "),
        "{report}"
    );
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn a_missing_corpus_is_an_error() {
    let dir = scratch_dir("missing");
    let result = read_corpus(
        &dir.join("nope.txt"),
        DocumentMode::Lines,
        CorpusLimits::default(),
    );
    assert!(matches!(result, Err(DropbertError::Io { .. })));
    let result = read_corpus(&dir, DocumentMode::Lines, CorpusLimits::default());
    assert!(matches!(result, Err(DropbertError::InvalidInput(_))));
    std::fs::remove_dir_all(dir).unwrap();
}

// ---------------------------------------------------------------------------------------------
// Packing

fn document_strategy() -> impl Strategy<Value = Vec<Vec<u32>>> {
    prop::collection::vec(prop::collection::vec(5u32..50, 0..40), 0..8)
}

proptest! {
    #[test]
    fn packing_gives_exact_lengths_and_loses_no_token(
        documents in document_strategy(),
        seq_len in 3usize..20,
    ) {
        let packer = SequencePacker::new(seq_len, SPECIAL).unwrap();
        let packed = packer.pack(&documents);
        let mut stream = Vec::new();
        for sequence in &packed {
            let ids = sequence.input_ids();
            prop_assert_eq!(ids.len(), seq_len);
            prop_assert_eq!(ids[0], SPECIAL.cls);
            let real = sequence.real_len();
            prop_assert!(real >= 3);
            prop_assert_eq!(ids[real - 1], SPECIAL.sep);
            prop_assert!(ids[real..].iter().all(|&id| id == SPECIAL.pad));
            let mask: Vec<u32> = sequence.attention_mask().collect();
            prop_assert_eq!(mask.iter().filter(|&&m| m == 1).count(), real);
            prop_assert!(mask[..real].iter().all(|&m| m == 1));
            let encoding = sequence.to_encoding();
            prop_assert!(encoding.token_type_ids.iter().all(|&t| t == 0));
            // Documents packed together are separated by [SEP]; the documents hold no [SEP].
            stream.extend(sequence.content().iter().copied().filter(|&id| id != SPECIAL.sep));
        }
        let all: Vec<u32> = documents.iter().flatten().copied().collect();
        prop_assert_eq!(stream, all);
        // Packing several documents per sequence never takes more sequences than one each.
        let one_each: usize = documents.iter().map(|d| packer.sequences_for(d.len())).sum();
        prop_assert!(packed.len() <= one_each);
    }
}

#[test]
fn packing_needs_room_for_a_token() {
    assert!(SequencePacker::new(2, SPECIAL).is_err());
    let packer = SequencePacker::new(5, SPECIAL).unwrap();
    let packed = packer.pack(&[vec![10, 11, 12, 13], vec![], vec![14]]);
    let ids: Vec<&[u32]> = packed.iter().map(|s| s.input_ids()).collect();
    assert_eq!(
        ids,
        [
            &[2, 10, 11, 12, 3][..],
            &[2, 13, 3, 0, 0],
            &[2, 14, 3, 0, 0]
        ]
    );
}

// ---------------------------------------------------------------------------------------------
// Masking

fn masking_vocab(vocab_size: usize) -> MaskingVocab {
    MaskingVocab::new(SPECIAL, vocab_size).unwrap()
}

/// A packed-looking sequence: [CLS], tokens (some [UNK]s among them), [SEP], padding.
fn sequence_strategy() -> impl Strategy<Value = Vec<u32>> {
    (
        prop::collection::vec(prop_oneof![9 => 5u32..60, 1 => Just(1u32)], 0..60),
        0usize..10,
    )
        .prop_map(|(content, padding)| {
            let mut ids = vec![SPECIAL.cls];
            ids.extend(content);
            ids.push(SPECIAL.sep);
            ids.extend(std::iter::repeat_n(SPECIAL.pad, padding));
            ids
        })
}

proptest! {
    #[test]
    fn masking_only_touches_predicted_ordinary_tokens(
        ids in sequence_strategy(),
        max_predictions in 1usize..12,
        seed in any::<u64>(),
    ) {
        let masking = MlmMasking::new(max_predictions);
        let vocab = masking_vocab(60);
        let masked = masking.apply(&ids, &vocab, &mut ChaCha8Rng::seed_from_u64(seed));
        let candidates = ids.iter().filter(|&&id| !is_special(id)).count();
        let expected = if candidates == 0 {
            0
        } else {
            ((candidates as f64 * 0.15).round() as usize).max(1).min(max_predictions)
        };
        let predicted: Vec<usize> =
            (0..ids.len()).filter(|&i| masked.labels[i] != IGNORE_LABEL).collect();
        prop_assert_eq!(predicted.len(), expected);
        prop_assert!(predicted.len() <= max_predictions);
        for ((&id, &new), &label) in ids.iter().zip(&masked.input_ids).zip(&masked.labels) {
            if label == IGNORE_LABEL {
                // Not predicted: unchanged (so specials and padding are never touched).
                prop_assert_eq!(new, id);
            } else {
                prop_assert!(!is_special(id));
                prop_assert_eq!(label, i64::from(id));
                // Replaced by [MASK], by an ordinary id, or kept.
                prop_assert!(new == SPECIAL.mask || !is_special(new));
            }
        }
        // Same seed, same masking.
        let again = masking.apply(&ids, &vocab, &mut ChaCha8Rng::seed_from_u64(seed));
        prop_assert_eq!(&again, &masked);
    }
}

#[test]
fn masking_proportions_match_bert_within_statistical_bounds() {
    let masking = MlmMasking::new(1000);
    let vocab = masking_vocab(30_000);
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    let ids: Vec<u32> = std::iter::once(SPECIAL.cls)
        .chain((0..200).map(|i| 100 + i))
        .chain([SPECIAL.sep, SPECIAL.pad, SPECIAL.pad])
        .collect();
    let (mut predicted, mut masked_count, mut random, mut kept) = (0usize, 0, 0, 0);
    let mut per_position = vec![0usize; ids.len()];
    let sequences = 500;
    for _ in 0..sequences {
        let out = masking.apply(&ids, &vocab, &mut rng);
        for i in 0..ids.len() {
            if out.labels[i] == IGNORE_LABEL {
                continue;
            }
            predicted += 1;
            per_position[i] += 1;
            match out.input_ids[i] {
                id if id == SPECIAL.mask => masked_count += 1,
                id if id == ids[i] => kept += 1,
                _ => random += 1,
            }
        }
    }
    // round(200 * 0.15) = 30 per sequence, exactly.
    assert_eq!(predicted, 30 * sequences);
    let share = |n: usize| n as f64 / predicted as f64;
    // 15,000 predictions: a standard deviation is at most 0.33 percentage points; allow ~5.
    assert!(
        (share(masked_count) - 0.8).abs() < 0.017,
        "{}",
        share(masked_count)
    );
    // A random id equals the original with probability 1/29,995: negligible.
    assert!((share(random) - 0.1).abs() < 0.013, "{}", share(random));
    assert!((share(kept) - 0.1).abs() < 0.013, "{}", share(kept));
    // Positions are chosen uniformly: each ordinary one about 15% of the time, others never.
    for (i, &count) in per_position.iter().enumerate() {
        if is_special(ids[i]) {
            assert_eq!(count, 0, "special position {i}");
        } else {
            let share = count as f64 / sequences as f64;
            // sd = sqrt(.15 * .85 / 500) = 0.016; 5 sd.
            assert!((share - 0.15).abs() < 0.08, "position {i}: {share}");
        }
    }
}

#[test]
fn different_seeds_mask_differently() {
    let masking = MlmMasking::new(20);
    let vocab = masking_vocab(1000);
    let ids: Vec<u32> = std::iter::once(SPECIAL.cls)
        .chain(100..200)
        .chain([SPECIAL.sep])
        .collect();
    let a = masking.apply(&ids, &vocab, &mut ChaCha8Rng::seed_from_u64(1));
    let b = masking.apply(&ids, &vocab, &mut ChaCha8Rng::seed_from_u64(2));
    assert_ne!(a, b);
}

#[test]
fn masking_settings_are_validated() {
    assert!(MlmMasking::new(20).validate().is_ok());
    assert!(MlmMasking::new(0).validate().is_err());
    let bad = |f: fn(&mut MlmMasking)| {
        let mut m = MlmMasking::new(20);
        f(&mut m);
        m.validate().is_err()
    };
    assert!(bad(|m| m.probability = 0.0));
    assert!(bad(|m| m.probability = f64::NAN));
    assert!(bad(|m| m.mask_fraction = 0.95));
    assert!(bad(|m| m.random_fraction = -0.1));
    assert!(MaskingVocab::new(SPECIAL, 4).is_err());
}

// ---------------------------------------------------------------------------------------------
// Dataset and batches

fn token_documents(count: usize, seed: u64) -> Vec<Vec<u32>> {
    use rand::Rng;
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    (0..count)
        .map(|_| {
            let len = rng.gen_range(1..40);
            (0..len).map(|_| rng.gen_range(5..500)).collect()
        })
        .collect()
}

fn options(seed: u64) -> MlmDatasetOptions {
    MlmDatasetOptions {
        validation_fraction: 0.2,
        ..MlmDatasetOptions::new(16, 4, seed)
    }
}

fn dataset(seed: u64) -> MlmDataset {
    MlmDataset::from_token_documents(token_documents(60, 3), SPECIAL, 500, options(seed)).unwrap()
}

fn check_batch(batch: &MlmBatch, seq_len: usize, batch_size: usize) {
    let size = seq_len * batch_size;
    assert_eq!(batch.tokens.input_ids.len(), size);
    assert_eq!(batch.tokens.token_type_ids, vec![0; size]);
    assert_eq!(batch.tokens.attention_mask.len(), size);
    assert_eq!(batch.labels.len(), size);
    for i in 0..size {
        if batch.tokens.attention_mask[i] == 0 {
            assert_eq!(batch.tokens.input_ids[i], SPECIAL.pad);
            assert_eq!(batch.labels[i], IGNORE_LABEL);
        }
    }
    for row in 0..batch.tokens.rows {
        assert_eq!(batch.tokens.input_ids[row * seq_len], SPECIAL.cls);
        assert!(batch.labels[row * seq_len..(row + 1) * seq_len]
            .iter()
            .any(|&l| l != IGNORE_LABEL));
    }
}

#[test]
fn split_is_by_document_seeded_and_complete() {
    let documents = token_documents(60, 3);
    let data = dataset(11);
    let summary = data.summary();
    assert_eq!(summary.train_documents + summary.validation_documents, 60);
    assert_eq!(summary.validation_documents, 12);
    // Every document token, plus at most one [SEP] between documents packed together.
    let tokens: usize = documents.iter().map(Vec::len).sum();
    let packed_tokens = (summary.train_tokens + summary.validation_tokens) as usize;
    assert!((tokens..tokens + documents.len()).contains(&packed_tokens));
    assert!(summary.to_string().starts_with("data: train 48 documents"));
    // Every document lies wholly on one side: its first piece is a [SEP]-separated segment of a
    // sequence on the side that holds it.
    let starts = |sequences: &[dropbert::data::packing::PackedSequence]| {
        sequences
            .iter()
            .flat_map(|s| {
                s.content()
                    .split(|&id| id == SPECIAL.sep)
                    .map(<[u32]>::to_vec)
                    .collect::<Vec<_>>()
            })
            .collect::<Vec<_>>()
    };
    let train = starts(data.train_sequences());
    let validation = starts(data.validation_sequences());
    for document in &documents {
        let first = &document[..document.len().min(14)];
        let in_train = train.iter().any(|s| s == first);
        let in_validation = validation.iter().any(|s| s == first);
        assert!(in_train != in_validation, "{document:?}");
    }
    assert_eq!(dataset(11).fingerprint(), data.fingerprint());
    let other = dataset(12);
    assert_ne!(other.fingerprint(), data.fingerprint());
    assert_ne!(starts(other.validation_sequences()), validation);
}

#[test]
fn every_training_sequence_comes_once_per_epoch() {
    let data = dataset(5);
    let seq_len = 16;
    let train = data.train_sequences().len();
    let mut seen = Vec::new();
    let mut batches = data.train_batches(DataPosition::default());
    while seen.len() < train {
        let batch = batches.next().unwrap();
        check_batch(&batch, seq_len, 4);
        assert_eq!(batch.tokens.rows, 4);
        for row in 0..4 {
            // Recover the unmasked sequence: labels hold the originals of the predicted ids.
            let ids: Vec<u32> = (0..seq_len)
                .map(|i| {
                    let k = row * seq_len + i;
                    match batch.labels[k] {
                        IGNORE_LABEL => batch.tokens.input_ids[k],
                        label => label as u32,
                    }
                })
                .collect();
            seen.push(ids);
        }
    }
    seen.truncate(train);
    let mut expected: Vec<Vec<u32>> = data
        .train_sequences()
        .iter()
        .map(|s| s.input_ids().to_vec())
        .collect();
    expected.sort();
    let in_stream_order = seen.clone();
    seen.sort();
    assert_eq!(seen, expected);
    // The order is shuffled.
    let corpus_order: Vec<Vec<u32>> = data
        .train_sequences()
        .iter()
        .map(|s| s.input_ids().to_vec())
        .collect();
    assert_ne!(in_stream_order, corpus_order);
}

#[test]
fn resuming_from_a_position_gives_the_same_batches() {
    let data = dataset(9);
    let mut uninterrupted = data.train_batches(DataPosition::default());
    let all: Vec<MlmBatch> = (0..100).map(|_| uninterrupted.next().unwrap()).collect();
    assert!(100 * 4 > 2 * data.train_sequences().len(), "crosses epochs");

    let mut first_run = data.train_batches(DataPosition::default());
    for _ in 0..13 {
        first_run.next().unwrap();
    }
    let saved = serde_json::to_string(&first_run.position()).unwrap();
    let position: DataPosition = serde_json::from_str(&saved).unwrap();
    assert_eq!(position, first_run.position());
    // A fresh dataset (as after a restart) from the saved position.
    let reloaded = dataset(9);
    let resumed: Vec<MlmBatch> = reloaded.train_batches(position).take(87).collect();
    assert_eq!(resumed, all[13..]);

    // Epochs mask the same sequence differently (dynamic masking) and reorder.
    let epoch_len = data.train_sequences().len() as u64;
    let a = data
        .train_batches(DataPosition { epoch: 0, index: 0 })
        .next()
        .unwrap();
    let b = data
        .train_batches(DataPosition { epoch: 1, index: 0 })
        .next()
        .unwrap();
    assert_ne!(a, b);
    // An index past the epoch's end carries into the next epochs.
    let carried = data
        .train_batches(DataPosition {
            epoch: 0,
            index: epoch_len,
        })
        .next()
        .unwrap();
    assert_eq!(carried, b);
    // Another seed, other batches.
    let other = dataset(10).train_batches(DataPosition::default()).next();
    assert_ne!(other.unwrap(), a);
}

#[test]
fn validation_batches_are_fixed_and_padded() {
    let data = dataset(4);
    let first: Vec<MlmBatch> = data.validation_batches().collect();
    let second: Vec<MlmBatch> = data.validation_batches().collect();
    assert_eq!(first, second);
    let sequences = data.validation_sequences().len();
    assert_eq!(first.len(), sequences.div_ceil(4));
    let rows: usize = first.iter().map(|b| b.tokens.rows).sum();
    assert_eq!(rows, sequences);
    for batch in &first {
        check_batch(batch, 16, 4);
    }
    let last = first.last().unwrap();
    for row in last.tokens.rows..4 {
        let span = row * 16..(row + 1) * 16;
        assert!(last.tokens.attention_mask[span.clone()]
            .iter()
            .all(|&m| m == 0));
        assert!(last.labels[span].iter().all(|&l| l == IGNORE_LABEL));
    }
}

#[test]
fn dataset_rejects_bad_settings_and_empty_corpora() {
    let docs = || token_documents(10, 1);
    let with = |f: fn(&mut MlmDatasetOptions)| {
        let mut o = options(1);
        f(&mut o);
        MlmDataset::from_token_documents(docs(), SPECIAL, 500, o)
    };
    assert!(with(|o| o.batch_size = 0).is_err());
    assert!(with(|o| o.seq_len = 2).is_err());
    assert!(with(|o| o.validation_fraction = 1.0).is_err());
    assert!(with(|o| o.masking.max_predictions = 0).is_err());
    assert!(
        MlmDataset::from_token_documents(vec![vec![], vec![]], SPECIAL, 500, options(1)).is_err()
    );
    assert!(MlmDataset::from_token_documents(vec![vec![600]], SPECIAL, 500, options(1)).is_err());
    // One document cannot be split: all of it trains.
    let single =
        MlmDataset::from_token_documents(vec![vec![7; 30]], SPECIAL, 500, options(1)).unwrap();
    assert_eq!(single.validation_sequences().len(), 0);
    assert_eq!(single.validation_batches().count(), 0);
    assert_eq!(single.train_sequences().len(), 3);
}

#[test]
fn documents_are_tokenized_in_order() {
    let tokenizer = small_tokenizer();
    let texts = [
        "The cat sat on the mat.",
        "",
        "A big red dog ran.",
        "Cats sat.",
    ];
    let documents: Vec<_> = texts
        .iter()
        .enumerate()
        .map(|(i, text)| Document {
            source: Arc::from(Path::new("memory")),
            line: i as u64 + 1,
            text: text.to_string(),
        })
        .collect();
    let options = MlmDatasetOptions {
        validation_fraction: 0.0,
        ..MlmDatasetOptions::new(6, 2, 0)
    };
    let data = MlmDataset::from_documents(&documents, &tokenizer, options).unwrap();
    let contents: Vec<Vec<u32>> = data
        .train_sequences()
        .iter()
        .map(|s| s.content().to_vec())
        .collect();
    let mut expected = Vec::new();
    for text in texts {
        let tokens = tokenizer.tokenize(text);
        expected.extend(tokens.chunks(4).map(<[u32]>::to_vec));
    }
    assert_eq!(contents, expected);
    assert_eq!(data.summary().empty_documents, 1);
    assert_eq!(data.summary().train_documents, 3);
}

// ---------------------------------------------------------------------------------------------
// Vocabulary training and the whole pipeline

const STORY: &str = "The quick brown fox jumps over the lazy dog. The dog sleeps.\n\
    A fox is quick; a dog is lazy. Foxes and dogs are animals.\n\
    The brown dog and the quick fox played in the garden all day.";

#[test]
fn trained_vocabulary_has_specials_and_frequent_words_and_is_deterministic() {
    let texts: Vec<String> = (0..30).map(|i| format!("{STORY} Day {i}.")).collect();
    let options = VocabTraining::new(300);
    let tokenizer = train_wordpiece_vocab(&texts, &options).unwrap();
    assert_eq!(tokenizer.vocab_size(), 300);
    assert!(tokenizer.lowercase());
    for (id, token) in SPECIAL_TOKENS.iter().enumerate() {
        assert_eq!(tokenizer.token_to_id(token), Some(id as u32), "{token}");
    }
    for word in ["the", "dog", "fox", "quick", "lazy", "."] {
        assert!(tokenizer.token_to_id(word).is_some(), "{word} missing");
    }
    assert_eq!(
        tokenizer.tokenize("The DOG"),
        [
            tokenizer.token_to_id("the").unwrap(),
            tokenizer.token_to_id("dog").unwrap()
        ]
    );
    // The corpus is small: the rest of the vocabulary is filler that text never produces.
    let last = tokenizer.id_to_token(299).unwrap();
    assert!(last.starts_with("[unused"), "{last}");
    assert!(!tokenizer.tokenize(&format!("a {last} b")).contains(&299));
    let again = train_wordpiece_vocab(&texts, &options).unwrap();
    let tokens = |t: &WordPieceTokenizer| {
        (0..t.vocab_size() as u32)
            .map(|id| t.id_to_token(id).unwrap().to_string())
            .collect::<Vec<_>>()
    };
    assert_eq!(tokens(&again), tokens(&tokenizer));

    // A vocabulary too small for every character keeps the frequent ones.
    let tiny = train_wordpiece_vocab(&texts, &VocabTraining::new(20)).unwrap();
    assert_eq!(tiny.vocab_size(), 20);
    assert!(tiny.token_to_id("e").is_some());
    assert!(train_wordpiece_vocab(&texts, &VocabTraining::new(5)).is_err());
    assert!(train_wordpiece_vocab(&["  ", ""], &options).is_err());
}

#[test]
fn corpus_to_batches_end_to_end() {
    let dir = scratch_dir("end-to-end");
    let mut text = String::new();
    for i in 0..40 {
        text.push_str(&format!("{STORY}\nStory number {i}.\n\n"));
    }
    write(&dir.join("stories.txt.gz"), &gzip(text.as_bytes()));
    write(&dir.join("broken.txt"), b"\xc3\x28 broken\n");
    let (documents, report) =
        read_corpus(&dir, DocumentMode::BlankLineBlocks, CorpusLimits::default()).unwrap();
    assert_eq!(documents.len(), 40);
    assert_eq!(report.non_utf8_lines, 1);
    let tokenizer = train_wordpiece_vocab(&documents, &VocabTraining::new(200)).unwrap();
    let options = MlmDatasetOptions {
        validation_fraction: 0.1,
        ..MlmDatasetOptions::new(32, 8, 42)
    };
    let data = MlmDataset::from_documents(&documents, &tokenizer, options).unwrap();
    assert_eq!(data.summary().validation_documents, 4);
    let batch = data.train_batches(DataPosition::default()).next().unwrap();
    check_batch(&batch, 32, 8);
    assert!(batch.predictions() >= 8);
    assert!(batch
        .tokens
        .input_ids
        .iter()
        .all(|&id| (id as usize) < tokenizer.vocab_size()));
    let unk = tokenizer.special_ids().unk;
    assert!(data
        .train_sequences()
        .iter()
        .all(|s| s.content().iter().all(|&id| id != unk)));
    std::fs::remove_dir_all(dir).unwrap();
}
