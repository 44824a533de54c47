use std::{
    collections::BTreeMap,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use luminal::{
    op::{InputTensor, Operator},
    prelude::*,
};

static TIMES: Mutex<BTreeMap<String, (Duration, usize)>> = Mutex::new(BTreeMap::new());

/// Runs the closure and gives the time the device spent on the work it queued (CUDA events
/// around it), where a host clock would time only the launch.
pub type DeviceClock = Arc<dyn Fn(&mut dyn FnMut()) -> Duration + Send + Sync>;

/// An op wrapped to time itself (see [`Profiler`]).
pub struct Timed {
    name: String,
    inner: Box<dyn Operator>,
    device_clock: Option<DeviceClock>,
}

impl std::fmt::Debug for Timed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Timed({:?})", self.inner)
    }
}

impl PartialEq for Timed {
    fn eq(&self, _: &Self) -> bool {
        false
    }
}

impl Operator for Timed {
    fn process(&mut self, inputs: Vec<(InputTensor, ShapeTracker)>) -> Vec<Tensor> {
        let (out, elapsed) = match &self.device_clock {
            Some(clock) => {
                let mut inputs = Some(inputs);
                let mut out = None;
                let elapsed = clock(&mut || {
                    out = Some(self.inner.process(inputs.take().expect("runs once")))
                });
                (out.expect("the clock runs the op"), elapsed)
            }
            None => {
                let started = Instant::now();
                let out = self.inner.process(inputs);
                (out, started.elapsed())
            }
        };
        let mut times = TIMES.lock().unwrap();
        let entry = times.entry(self.name.clone()).or_default();
        entry.0 += elapsed;
        entry.1 += 1;
        out
    }

    fn custom(
        &mut self,
        key: &str,
        input: Box<dyn std::any::Any>,
    ) -> Option<Box<dyn std::any::Any>> {
        self.inner.custom(key, input)
    }
}

/// A compiler pass, run last, that wraps every op in [`Timed`] so that [`report`] can say where
/// execution time goes, per op type and shape. On a GPU each op is timed by the device
/// (`device_clock`), so the total is the time the GPU was busy; a step taking longer than that
/// waited on the host. For diagnosis only: it waits for each op to finish.
#[derive(Default)]
pub struct Profiler {
    pub device_clock: Option<DeviceClock>,
}

impl std::fmt::Debug for Profiler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Profiler")
    }
}

impl Compiler for Profiler {
    fn compile<T: ToIdsMut>(&self, graph: &mut Graph, _remap: T) {
        let nodes: Vec<NodeIndex> = graph.graph.node_indices().collect();
        for node in nodes {
            let shapes = input_shapes(graph, node);
            let weight = graph.graph.node_weight_mut(node).unwrap();
            let op = format!("{weight:?}");
            let kind: String = op.chars().take_while(|c| c.is_alphanumeric()).collect();
            let inner = std::mem::replace(weight, Box::new(luminal::op::Contiguous));
            *weight = Box::new(Timed {
                name: format!("{kind} {}", shapes.join(" ")),
                inner,
                device_clock: self.device_clock.clone(),
            });
        }
    }
}

/// The logical shape of each input of `node`, as `[a, b, ...]`.
pub fn input_shapes(graph: &Graph, node: NodeIndex) -> Vec<String> {
    graph
        .get_sources(node)
        .iter()
        .map(|(_, _, view)| {
            format!(
                "{:?}",
                view.shape()
                    .iter()
                    .map(|d| d.to_usize().unwrap_or(0))
                    .collect::<Vec<_>>()
            )
        })
        .collect()
}

/// The slowest op kinds so far, one per line.
pub fn report(limit: usize) -> String {
    let times = TIMES.lock().unwrap();
    let mut rows: Vec<_> = times.iter().collect();
    rows.sort_by_key(|(_, (time, _))| std::cmp::Reverse(*time));
    let total: Duration = rows.iter().map(|(_, (time, _))| *time).sum();
    std::iter::once(format!("{total:>10.3?} in all ops"))
        .chain(
            rows.iter()
                .take(limit)
                .map(|(name, (time, calls))| format!("{:>10.3?} x{calls:<4} {name}", time)),
        )
        .collect::<Vec<_>>()
        .join("\n")
}
