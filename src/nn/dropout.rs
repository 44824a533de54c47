use std::{cell::RefCell, rc::Rc};

use luminal::prelude::*;

use crate::ops::{dropout_mask, AttentionDropout, RandomKey};

/// The random key of training step `step` of a run seeded with `seed`: the host feeds it to the
/// graph's key input each step, and the graph draws every dropout mask from it.
pub fn step_key(seed: u64, step: u64) -> u64 {
    seed ^ step.wrapping_mul(0x9e37_79b9_7f4a_7c15)
}

/// What the sites of one graph share: the key input, made with the first site, and how many
/// sites there are (each site's mask is a stream of its own, numbered in creation order).
#[derive(Debug, Default)]
struct Sites {
    key: Option<GraphTensor<RandomKey>>,
    count: u32,
}

/// The dropout of one model: its rates, and the random key input its forward pass draws masks
/// from (a [`DropoutMask`](crate::ops::DropoutMask) op per place where dropout applies). Cloning
/// shares the key, so one `Dropout` serves one graph; [`for_new_graph`](Self::for_new_graph)
/// gives another. Rates of 0 (and inference) create no mask and no key.
#[derive(Debug, Clone, Default)]
pub struct Dropout {
    pub hidden_rate: f32,
    pub attention_rate: f32,
    sites: Rc<RefCell<Sites>>,
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

    /// The same rates, for another graph: sharing no key with this one.
    pub fn for_new_graph(&self) -> Self {
        Self::new(self.hidden_rate, self.attention_rate)
    }

    /// Dropout of hidden states (embeddings and block outputs).
    pub fn hidden<S: Shape>(&self, x: GraphTensor<S>) -> GraphTensor<S> {
        self.apply(x, self.hidden_rate)
    }

    /// The dropout of attention probabilities that `x`'s graph applies in its own op
    /// ([`attention_probabilities`](crate::ops::attention_probabilities)): the key input and the
    /// site's rate and stream, or `None` at a rate of 0.
    pub fn attention_site<S: Shape>(
        &self,
        x: GraphTensor<S>,
    ) -> Option<(GraphTensor<RandomKey>, AttentionDropout)> {
        let rate = self.attention_rate;
        (rate != 0.0).then(|| {
            let (key, stream) = self.new_site(x);
            (key, AttentionDropout { rate, stream })
        })
    }

    fn apply<S: Shape>(&self, x: GraphTensor<S>, rate: f32) -> GraphTensor<S> {
        if rate == 0.0 {
            return x;
        }
        let (key, stream) = self.new_site(x);
        x * dropout_mask::<S>(key, rate, stream)
    }

    /// The key input of `x`'s graph and the stream of a new site.
    fn new_site<S: Shape>(&self, x: GraphTensor<S>) -> (GraphTensor<RandomKey>, u32) {
        let mut sites = self.sites.borrow_mut();
        let key = *sites
            .key
            .get_or_insert_with(|| x.graph().named_tensor("dropout key"));
        assert!(
            std::ptr::eq(key.graph_ref, x.graph_ref),
            "a Dropout draws into one graph; give another graph Dropout::for_new_graph"
        );
        let stream = sites.count;
        sites.count += 1;
        (key, stream)
    }

    /// The key input the masks are drawn from, once there is a mask: fed each step with
    /// [`key_values`](crate::ops::key_values) of [`step_key`].
    pub fn key(&self) -> Option<GraphTensor<RandomKey>> {
        self.sites.borrow().key
    }

    /// The number of masks created so far.
    pub fn site_count(&self) -> usize {
        self.sites.borrow().count as usize
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{
        autograd::{add_backward, TensorRef},
        nn::{ParameterInit, ParameterRef},
        ops::{key_values, DropoutMask},
        runtime::Backend,
    };

    fn values(graph: &Graph, id: NodeIndex) -> Vec<f32> {
        graph
            .get_tensor_ref(id, 0)
            .expect("a retrieved output")
            .data
            .as_any()
            .downcast_ref::<Vec<f32>>()
            .expect("host values")
            .clone()
    }

    #[test]
    fn sites_multiply_by_masks_drawn_from_the_key() {
        let mut graph = Box::new(Graph::new());
        let x = graph.tensor::<R2<100, 1000>>();
        let dropout = Dropout::new(0.1, 0.25);
        let hidden = dropout.hidden(x).retrieve();
        let second = dropout.hidden(x * 1.0).retrieve();
        assert_eq!(dropout.site_count(), 2);
        let key = dropout.key().expect("a key input");
        let input: Vec<f32> = (0..100_000).map(|i| 1.0 + (i % 7) as f32).collect();
        let mut run = |step: u64| {
            graph.set_tensor(x.id, 0, Tensor::new(input.clone()));
            graph.set_tensor(key.id, 0, Tensor::new(key_values(step_key(3, step))));
            graph.execute();
            let outputs = (values(&graph, hidden.id), values(&graph, second.id));
            graph.drop_tensors(vec![hidden.id, second.id]);
            outputs
        };
        let (hidden_0, second_0) = run(0);
        for (output, rate, stream) in [(&hidden_0, 0.1f32, 0), (&second_0, 0.1, 1)] {
            let kept = output.iter().filter(|&&v| v != 0.0).count() as f64 / 100_000.0;
            assert!((kept - (1.0 - rate) as f64).abs() < 0.005, "kept {kept}");
            let mask = DropoutMask {
                len: 100_000,
                rate,
                stream,
            }
            .values(step_key(3, 0), 1);
            let scale = 1.0 / (1.0 - rate);
            for ((&y, &m), &x) in output.iter().zip(&mask).zip(&input) {
                assert!(m == 0.0 || m == scale);
                assert_eq!(y, x * m);
            }
        }
        let zeros = |v: &[f32]| v.iter().map(|&y| y == 0.0).collect::<Vec<_>>();
        assert_ne!(zeros(&hidden_0), zeros(&second_0));
        assert_eq!(run(0), (hidden_0.clone(), second_0));
        assert_ne!(zeros(&run(1).0), zeros(&hidden_0));
    }

    #[test]
    fn attention_sites_take_the_graphs_key_and_the_next_stream() {
        let mut graph = Graph::new();
        let x = graph.tensor::<R1<8>>();
        let dropout = Dropout::new(0.1, 0.25);
        dropout.hidden(x);
        let (key, site) = dropout.attention_site(x).expect("a site at rate 0.25");
        assert_eq!(Some(key.id), dropout.key().map(|key| key.id));
        assert_eq!(
            site,
            AttentionDropout {
                rate: 0.25,
                stream: 1
            }
        );
        assert!(Dropout::new(0.1, 0.0).attention_site(x).is_none());
    }

    #[test]
    fn gradients_pass_through_the_mask_only() {
        let mut graph = Box::new(Graph::new());
        let x = graph.named_tensor::<R1<5000>>("x");
        let weights = graph.named_tensor::<R1<5000>>("weights");
        let dropout = Dropout::new(0.3, 0.0);
        let mut loss = (dropout.hidden(x) * weights).sum_reduce().retrieve();
        let mut key = dropout.key().unwrap().id;
        let mut parameter = ParameterRef {
            name: "x".into(),
            id: x.id,
            shape: vec![5000],
            init: ParameterInit::Zeros,
        };
        graph.keep_tensors(x.id);
        let gradients =
            add_backward(&mut graph, TensorRef::of(loss), &[parameter.clone()], &[]).unwrap();
        let mut gradient = gradients[0].tensor.id;
        graph.retrieve_tensors(gradient);
        let mut weights_id = weights.id;
        Backend::Cpu
            .compile(
                &mut graph,
                vec![
                    &mut loss.id,
                    &mut key,
                    &mut parameter.id,
                    &mut gradient,
                    &mut weights_id,
                ],
            )
            .unwrap();
        let w: Vec<f32> = (0..5000).map(|i| (i % 13) as f32 - 6.0).collect();
        graph.set_tensor(parameter.id, 0, Tensor::new(vec![0.5; 5000]));
        graph.set_tensor(weights_id, 0, Tensor::new(w.clone()));
        graph.set_tensor(key, 0, Tensor::new(key_values(step_key(1, 4))));
        graph.execute();
        let mask = DropoutMask {
            len: 5000,
            rate: 0.3,
            stream: 0,
        }
        .values(step_key(1, 4), 1);
        let expected: Vec<f32> = mask.iter().zip(&w).map(|(m, w)| m * w).collect();
        assert_eq!(values(&graph, gradient), expected);
    }

    #[test]
    fn zero_rates_add_nothing_to_the_graph() {
        let mut graph = Graph::new();
        let x = graph.tensor::<R1<4>>();
        let dropout = Dropout::new(0.0, 0.0);
        let y = dropout.hidden(x);
        assert_eq!(y.id, x.id);
        assert!(dropout.key().is_none());
        assert_eq!(dropout.site_count(), 0);
    }
}
