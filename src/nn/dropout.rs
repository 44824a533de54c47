use std::{cell::RefCell, rc::Rc};

use luminal::prelude::*;
use rand::Rng;
use rand_chacha::ChaCha8Rng;

/// A place where dropout applies: a graph input holding the step's mask (0 for a dropped value,
/// `1 / (1 - rate)` for a kept one, as inverted dropout scales), fed by the host every step.
#[derive(Debug, Clone, PartialEq)]
pub struct DropoutSite {
    pub id: NodeIndex,
    pub len: usize,
    pub rate: f32,
}

impl DropoutSite {
    /// A fresh mask for this site.
    pub fn sample(&self, rng: &mut ChaCha8Rng) -> Vec<f32> {
        let keep = 1.0 - self.rate;
        let scale = 1.0 / keep;
        (0..self.len)
            .map(|_| if rng.gen::<f32>() < keep { scale } else { 0.0 })
            .collect()
    }
}

/// The dropout of one model: its rates, and the sites its forward pass created, which the
/// program feeds. Cloning shares the sites. Rates of 0 (and inference) create no site at all.
#[derive(Debug, Clone, Default)]
pub struct Dropout {
    pub hidden_rate: f32,
    pub attention_rate: f32,
    sites: Rc<RefCell<Vec<DropoutSite>>>,
}

impl Dropout {
    pub fn new(hidden_rate: f32, attention_rate: f32) -> Self {
        Self {
            hidden_rate,
            attention_rate,
            sites: Rc::default(),
        }
    }

    /// No dropout, as at inference.
    pub fn off() -> Self {
        Self::default()
    }

    /// Dropout of hidden states (embeddings and block outputs).
    pub fn hidden<S: Shape>(&self, x: GraphTensor<S>) -> GraphTensor<S> {
        self.apply(x, self.hidden_rate)
    }

    /// Dropout of attention probabilities.
    pub fn attention<S: Shape>(&self, x: GraphTensor<S>) -> GraphTensor<S> {
        self.apply(x, self.attention_rate)
    }

    fn apply<S: Shape>(&self, x: GraphTensor<S>, rate: f32) -> GraphTensor<S> {
        if rate == 0.0 {
            return x;
        }
        let mask = x.graph().named_tensor::<S>("dropout mask");
        let len = S::realized_shape()
            .iter()
            .map(|d| d.to_usize().expect("static shapes"))
            .product();
        self.sites.borrow_mut().push(DropoutSite {
            id: mask.id,
            len,
            rate,
        });
        x * mask
    }

    /// The sites created so far, in creation order.
    pub fn sites(&self) -> Vec<DropoutSite> {
        self.sites.borrow().clone()
    }
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;

    use super::*;

    #[test]
    fn masks_keep_the_right_fraction_and_scale_kept_values() {
        let site = DropoutSite {
            id: NodeIndex::new(0),
            len: 100_000,
            rate: 0.1,
        };
        let mask = site.sample(&mut ChaCha8Rng::seed_from_u64(3));
        let kept = mask.iter().filter(|&&v| v != 0.0).count() as f64 / mask.len() as f64;
        assert!((kept - 0.9).abs() < 0.005, "kept fraction {kept}");
        assert!(mask
            .iter()
            .all(|&v| v == 0.0 || (v - 1.0 / 0.9).abs() < 1e-6));
        let mean = mask.iter().map(|&v| v as f64).sum::<f64>() / mask.len() as f64;
        assert!(
            (mean - 1.0).abs() < 0.01,
            "inverted dropout keeps the mean: {mean}"
        );
    }

    #[test]
    fn zero_rates_add_nothing_to_the_graph() {
        let mut graph = Graph::new();
        let x = graph.tensor::<R1<4>>();
        let dropout = Dropout::new(0.0, 0.0);
        let y = dropout.hidden(x);
        assert_eq!(y.id, x.id);
        assert!(dropout.sites().is_empty());
    }
}
