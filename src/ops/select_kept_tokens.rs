use std::cmp::Ordering;

use luminal::{
    op::{InputTensor, Operator},
    prelude::*,
};

use super::input_values;

/// How token dropping chooses the `kept` positions of each sequence.
///
/// Positions are ranked in tiers: allow-list ids ([CLS], [SEP], [MASK], [UNK]) first, then
/// predicted positions, then ordinary tokens, then deny-list ids ([PAD]) last; within a tier by
/// importance, highest first. Ordinary tokens fill only the first `by_importance` ranks (counted
/// from the top, the first two tiers included) by importance, and the ranks after those by the
/// step's random scores, highest first. Equal keys keep the earlier position first, so the choice
/// is a stable top-k.
#[derive(Debug, Clone, PartialEq)]
pub struct KeptTokenRule {
    pub seq: usize,
    pub kept: usize,
    pub by_importance: usize,
    pub allow: Vec<u32>,
    pub deny: Vec<u32>,
}

/// One sequence's inputs to the choice.
pub struct SequenceTokens<'a> {
    pub ids: &'a [f32],
    pub predicted: &'a [f32],
    pub random: &'a [f32],
}

impl KeptTokenRule {
    fn tier(&self, id: u32, predicted: bool) -> u8 {
        if self.allow.contains(&id) {
            0
        } else if predicted {
            1
        } else if self.deny.contains(&id) {
            3
        } else {
            2
        }
    }

    /// The kept positions of one sequence, ascending.
    pub fn kept_positions(&self, tokens: &SequenceTokens<'_>, importance: &[f32]) -> Vec<usize> {
        let seq = self.seq;
        let tiers: Vec<u8> = (0..seq)
            .map(|j| self.tier(tokens.ids[j] as u32, tokens.predicted[j] != 0.0))
            .collect();
        let importance_of = |j: usize| importance[tokens.ids[j] as usize];
        let by_importance =
            |a: &usize, b: &usize| descending(importance_of(*a), importance_of(*b), *a, *b);
        let in_tier = |tier: u8| -> Vec<usize> {
            let mut positions: Vec<usize> = (0..seq).filter(|&j| tiers[j] == tier).collect();
            positions.sort_by(by_importance);
            positions
        };
        let mut ranked = in_tier(0);
        ranked.extend(in_tier(1));
        let mut ordinary = in_tier(2);
        let importance_ranks = self
            .by_importance
            .saturating_sub(ranked.len())
            .min(ordinary.len());
        let mut rest = ordinary.split_off(importance_ranks);
        ranked.extend(ordinary);
        rest.sort_by(|&a, &b| descending(tokens.random[a], tokens.random[b], a, b));
        ranked.extend(rest);
        ranked.extend(in_tier(3));
        ranked.truncate(self.kept);
        ranked.sort_unstable();
        ranked
    }
}

/// Higher score first, then the earlier position.
fn descending(score_a: f32, score_b: f32, a: usize, b: usize) -> Ordering {
    sanitize(score_b)
        .total_cmp(&sanitize(score_a))
        .then(a.cmp(&b))
}

/// NaN ranks last.
fn sanitize(score: f32) -> f32 {
    if score.is_nan() {
        f32::NEG_INFINITY
    } else {
        score
    }
}

/// Token dropping's choice as a graph op: inputs `input_ids [batch, seq]`, `predicted
/// [batch, seq]` (1 at predicted positions), `importance [vocab]`, `random [batch, seq]`
/// (the step's random scores); output the kept positions as flat token indexes
/// (`row * seq + position`), `[batch * kept]`, ascending within each row.
#[derive(Debug, Clone, PartialEq)]
pub struct SelectKeptTokens {
    pub rule: KeptTokenRule,
}

impl Operator for SelectKeptTokens {
    fn process(&mut self, inputs: Vec<(InputTensor, ShapeTracker)>) -> Vec<Tensor> {
        let values = |i: usize| input_values(&inputs[i].0, &inputs[i].1);
        let (ids, predicted, importance, random) = (values(0), values(1), values(2), values(3));
        let seq = self.rule.seq;
        let mut out = Vec::with_capacity(ids.len() / seq * self.rule.kept);
        for row in 0..ids.len() / seq {
            let span = row * seq..(row + 1) * seq;
            let tokens = SequenceTokens {
                ids: &ids[span.clone()],
                predicted: &predicted[span.clone()],
                random: &random[span],
            };
            out.extend(
                self.rule
                    .kept_positions(&tokens, &importance)
                    .into_iter()
                    .map(|j| (row * seq + j) as f32),
            );
        }
        vec![Tensor::new(out)]
    }
}

/// The kept positions of every sequence, `[batch * kept]` flat token indexes.
pub fn select_kept_tokens<B: Dimension, S: Dimension, V: Dimension, K: Dimension>(
    input_ids: GraphTensor<(B, S)>,
    predicted: GraphTensor<(B, S)>,
    importance: GraphTensor<(V,)>,
    random: GraphTensor<(B, S)>,
    rule: KeptTokenRule,
) -> GraphTensor<(K,)> {
    let id = input_ids
        .graph()
        .add_op(SelectKeptTokens { rule })
        .input(input_ids.id, 0, input_ids.shape)
        .input(predicted.id, 0, predicted.shape)
        .input(importance.id, 0, importance.shape)
        .input(random.id, 0, random.shape)
        .finish();
    GraphTensor::from_id(
        id,
        ShapeTracker::new(&[K::const_size()]),
        input_ids.graph_ref,
    )
}
