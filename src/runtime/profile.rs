use std::{
    collections::BTreeMap,
    sync::Mutex,
    time::{Duration, Instant},
};

use luminal::{
    op::{InputTensor, Operator},
    prelude::*,
};

/// Per op name: (time, host time, calls). The time is the device's where the device times ops,
/// else the host's.
static TIMES: Mutex<BTreeMap<String, (Duration, Duration, usize)>> = Mutex::new(BTreeMap::new());
/// The device's idle time between ops so far.
static IDLE: Mutex<Duration> = Mutex::new(Duration::ZERO);
/// Each op call since the last report on the host: (its place in the run, name, host time).
static CALLS: Mutex<Vec<(usize, String, Duration)>> = Mutex::new(Vec::new());
/// Per op name: the device's idle time right after the op, and how often it idled there.
static IDLE_AFTER: Mutex<BTreeMap<String, (Duration, usize)>> = Mutex::new(BTreeMap::new());
static DEVICE: Mutex<Option<DeviceProfiling>> = Mutex::new(None);

/// How a backend times ops on its device without waiting for each (see
/// `compile::cuda::op_timeline`): `time_op` runs an op and files its interval under a name;
/// `settle` waits for the device and gives the filed intervals' device times and the device's
/// idle time between them.
#[derive(Clone, Copy)]
pub struct DeviceProfiling {
    pub time_op: fn(&str, &mut dyn FnMut()),
    pub settle: fn() -> SettledTimes,
}

/// The device's times of the ops it ran since the last settling.
#[derive(Debug, Default)]
pub struct SettledTimes {
    /// (op name, device time) per op run.
    pub ops: Vec<(String, Duration)>,
    /// The device's idle time between consecutive ops.
    pub idle: Duration,
    /// Each stretch of that idle time: the name of the op it followed and its length.
    pub idle_after: Vec<(String, Duration)>,
}

/// An op wrapped to time itself (see [`Profiler`]).
pub struct Timed {
    name: String,
    inner: Box<dyn Operator>,
    device: Option<DeviceProfiling>,
}

// Shown as the op it times: passes that tell luminal_cuda's ops by their names (which a program
// may run after profiling was set up) see through the timing.
impl std::fmt::Debug for Timed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.inner.fmt(f)
    }
}

impl PartialEq for Timed {
    fn eq(&self, _: &Self) -> bool {
        false
    }
}

impl Operator for Timed {
    fn process(&mut self, inputs: Vec<(InputTensor, ShapeTracker)>) -> Vec<Tensor> {
        let started = Instant::now();
        let out = match self.device {
            Some(device) => {
                let mut inputs = Some(inputs);
                let mut out = None;
                (device.time_op)(&self.name, &mut || {
                    out = Some(self.inner.process(inputs.take().expect("runs once")))
                });
                out.expect("the clock runs the op")
            }
            None => self.inner.process(inputs),
        };
        let host = started.elapsed();
        let mut calls = CALLS.lock().unwrap();
        let place = calls.len();
        calls.push((place, self.name.clone(), host));
        drop(calls);
        let mut times = TIMES.lock().unwrap();
        let entry = times.entry(self.name.clone()).or_default();
        if self.device.is_none() {
            entry.0 += host;
        }
        entry.1 += host;
        entry.2 += 1;
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
/// execution time goes, per op type and shape. With `device`, each op is timed by the device as
/// well as by the host, and the report gives the device's idle time between ops: time a step
/// spent waiting for the host to queue work.
#[derive(Default)]
pub struct Profiler {
    pub device: Option<DeviceProfiling>,
}

impl std::fmt::Debug for Profiler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Profiler")
    }
}

impl Compiler for Profiler {
    fn compile<T: ToIdsMut>(&self, graph: &mut Graph, _remap: T) {
        if self.device.is_some() {
            *DEVICE.lock().unwrap() = self.device;
        }
        let nodes: Vec<NodeIndex> = graph.graph.node_indices().collect();
        for node in nodes {
            let shapes = input_shapes(graph, node);
            let weight = graph.graph.node_weight_mut(node).unwrap();
            let kind = op_kind(weight.as_ref());
            let inner = std::mem::replace(weight, Box::new(luminal::op::Contiguous));
            *weight = Box::new(Timed {
                name: format!("{kind} {}", shapes.join(" ")),
                inner,
                device: self.device,
            });
        }
    }
}

/// An op's kind: its type's name, as its `Debug` output starts (luminal_cuda does not export
/// its ops' types, and a [`Timed`] op shows as the op it times).
pub fn op_kind(op: &dyn Operator) -> String {
    format!("{op:?}")
        .chars()
        .take_while(|c| c.is_alphanumeric())
        .collect()
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

/// The slowest op kinds since the last report, one per line: the trainer reports after every
/// step, so each report is one step's (the first's includes uploading the weights). With a device
/// clock: each line's device time and its host time, and the device's idle time between ops.
pub fn report(limit: usize) -> String {
    let device = *DEVICE.lock().unwrap();
    let mut times = std::mem::take(&mut *TIMES.lock().unwrap());
    let mut idle = std::mem::take(&mut *IDLE.lock().unwrap());
    if let Some(device) = device {
        let settled = (device.settle)();
        for (name, time) in settled.ops {
            times.entry(name).or_default().0 += time;
        }
        idle += settled.idle;
        let mut idle_after = IDLE_AFTER.lock().unwrap();
        for (name, gap) in settled.idle_after {
            let entry = idle_after.entry(name).or_default();
            entry.0 += gap;
            entry.1 += 1;
        }
    }
    let idle_after = std::mem::take(&mut *IDLE_AFTER.lock().unwrap());
    let calls = std::mem::take(&mut *CALLS.lock().unwrap());
    let mut rows: Vec<_> = times.iter().collect();
    rows.sort_by_key(|(_, (time, _, _))| std::cmp::Reverse(*time));
    let total: Duration = rows.iter().map(|(_, (time, _, _))| *time).sum();
    let host: Duration = rows.iter().map(|(_, (_, host, _))| *host).sum();
    let summary = match device {
        Some(_) => format!(
            "{total:>10.3?} in all ops on the device, {idle:.3?} idle between them; {host:.3?} on the host"
        ),
        None => format!("{total:>10.3?} in all ops"),
    };
    std::iter::once(summary)
        .chain(
            rows.iter()
                .take(limit)
                .map(|(name, (time, host, calls))| match device {
                    Some(_) => format!("{time:>10.3?} x{calls:<4} {name} (host {host:.3?})"),
                    None => format!("{time:>10.3?} x{calls:<4} {name}"),
                }),
        )
        .chain(idle_lines(idle_after, IDLE_ROWS))
        .chain(slowest_call_lines(calls, IDLE_ROWS))
        .collect::<Vec<_>>()
        .join("\n")
}

/// The op calls that held the host longest, with their place in the run: a copy to the host
/// waits there for the device; any other long call is host work the device may wait for.
fn slowest_call_lines(mut calls: Vec<(usize, String, Duration)>, limit: usize) -> Vec<String> {
    if calls.is_empty() {
        return Vec::new();
    }
    let total = calls.len();
    calls.sort_by_key(|(_, _, host)| std::cmp::Reverse(*host));
    std::iter::once(format!("  slowest calls on the host (place of {total}):"))
        .chain(
            calls
                .into_iter()
                .take(limit)
                .map(|(place, name, host)| format!("{host:>10.3?} #{place:<5} {name}")),
        )
        .collect()
}

/// How many of the ops the device idled after most, and of the slowest calls, a report lists.
const IDLE_ROWS: usize = 12;

/// The ops after which the device idled longest, with that idle time: where the host fell behind
/// the device (after a copy to the host, the host is behind by the whole queue).
fn idle_lines(idle_after: BTreeMap<String, (Duration, usize)>, limit: usize) -> Vec<String> {
    let mut rows: Vec<_> = idle_after
        .into_iter()
        .filter(|(_, (idle, _))| !idle.is_zero())
        .collect();
    if rows.is_empty() {
        return Vec::new();
    }
    rows.sort_by_key(|(_, (idle, _))| std::cmp::Reverse(*idle));
    std::iter::once("  idle after:".to_string())
        .chain(
            rows.into_iter()
                .take(limit)
                .map(|(name, (idle, times))| format!("{idle:>10.3?} x{times:<4} {name}")),
        )
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_report_covers_the_executions_since_the_last_one() {
        let mut cx = Graph::new();
        let a = cx.tensor::<R1<3>>().set(vec![1.0, 2.0, 3.0]);
        cx.keep_tensors(a.id);
        let squares = (a * a).retrieve();
        cx.compile(Profiler::default(), ());
        cx.execute();
        let first = report(50);
        assert_eq!(squares.data(), vec![1.0, 4.0, 9.0]);
        // A retrieved output left in the graph would be taken as computed.
        squares.drop();
        cx.execute();
        let second = report(50);
        for text in [first, second] {
            let line = text
                .lines()
                .find(|line| line.contains("Mul [3] [3]"))
                .unwrap_or_else(|| panic!("no line for the product in\n{text}"));
            assert!(line.contains(" x1 "), "one execution a report: {line}");
            let calls = text
                .split("slowest calls on the host (place of ")
                .nth(1)
                .unwrap_or_else(|| panic!("no slowest calls in\n{text}"));
            assert!(
                calls
                    .lines()
                    .skip(1)
                    .any(|call| call.contains("Mul [3] [3]")),
                "the product's call is listed: {calls}"
            );
        }
    }
}
