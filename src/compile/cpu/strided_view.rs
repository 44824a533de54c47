use luminal::prelude::*;

/// A view whose every logical axis is a plain stride into the buffer (0 for a broadcast axis):
/// anything without slices, padding or symbolic sizes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StridedView {
    pub sizes: Vec<usize>,
    pub strides: Vec<usize>,
}

impl StridedView {
    /// The view with its axes reordered: axis `i` of the result is axis `order[i]` of this one.
    pub fn permuted(&self, order: &[usize]) -> Self {
        Self {
            sizes: order.iter().map(|&axis| self.sizes[axis]).collect(),
            strides: order.iter().map(|&axis| self.strides[axis]).collect(),
        }
    }

    pub fn of(view: &ShapeTracker) -> Option<Self> {
        if view.is_sliced() || view.is_padded() {
            return None;
        }
        let rank = view.len();
        let dims: Vec<usize> = (0..rank)
            .map(|axis| view.dims[axis].to_usize())
            .collect::<Option<_>>()?;
        let mut buffer_strides = vec![0; rank];
        let mut next = 1;
        for axis in (0..rank).rev() {
            if !view.fake[axis] {
                buffer_strides[axis] = next;
                next *= dims[axis];
            }
        }
        Some(Self {
            sizes: view.indexes.iter().map(|&axis| dims[axis]).collect(),
            strides: view
                .indexes
                .iter()
                .map(|&axis| buffer_strides[axis])
                .collect(),
        })
    }
}

impl StridedView {
    /// Like [`of`](Self::of), but also for sliced views (padding still excluded): the view, its
    /// size-1 axes dropped, and the buffer offset of its first element.
    pub fn of_sliced(view: &ShapeTracker) -> Option<(Self, usize)> {
        if view.is_padded() {
            return None;
        }
        let rank = view.len();
        let dims: Vec<usize> = (0..rank)
            .map(|axis| view.dims[axis].to_usize())
            .collect::<Option<_>>()?;
        let mut buffer_strides = vec![0; rank];
        let mut next = 1;
        for axis in (0..rank).rev() {
            if !view.fake[axis] {
                buffer_strides[axis] = next;
                next *= dims[axis];
            }
        }
        let mut offset = 0;
        let mut sizes = vec![0; rank];
        for axis in 0..rank {
            let (start, end) = view.slices[axis];
            let start = start.to_usize()?;
            let end = end.to_usize().unwrap_or(usize::MAX).min(dims[axis]);
            sizes[axis] = end.saturating_sub(start);
            offset += start * buffer_strides[axis];
        }
        let (sizes, strides) = view
            .indexes
            .iter()
            .map(|&axis| (sizes[axis], buffer_strides[axis]))
            .filter(|&(size, _)| size != 1)
            .unzip();
        Some((Self { sizes, strides }, offset))
    }
}

/// Row-major strides of a contiguous tensor of `sizes`.
pub fn contiguous_strides(sizes: &[usize]) -> Vec<usize> {
    let mut strides = vec![0; sizes.len()];
    let mut next = 1;
    for axis in (0..sizes.len()).rev() {
        strides[axis] = next;
        next *= sizes[axis];
    }
    strides
}

/// `sizes` with its size-1 axes dropped and every pair of neighbouring axes that all `strides`
/// traverse as one axis merged, and each of `strides` to match.
pub fn merge_axes(sizes: &[usize], strides: &[Vec<usize>]) -> (Vec<usize>, Vec<Vec<usize>>) {
    let mut merged_sizes: Vec<usize> = Vec::new();
    let mut merged: Vec<Vec<usize>> = vec![Vec::new(); strides.len()];
    for (axis, &size) in sizes.iter().enumerate() {
        if size == 1 {
            continue;
        }
        let joins = merged_sizes.last().is_some()
            && strides
                .iter()
                .zip(&merged)
                .all(|(s, m)| *m.last().unwrap() == s[axis] * size);
        if joins {
            *merged_sizes.last_mut().unwrap() *= size;
            for (s, m) in strides.iter().zip(&mut merged) {
                *m.last_mut().unwrap() = s[axis];
            }
        } else {
            merged_sizes.push(size);
            for (s, m) in strides.iter().zip(&mut merged) {
                m.push(s[axis]);
            }
        }
    }
    (merged_sizes, merged)
}

/// Whether `view`, read over `sizes`, visits its buffer in order: element `i` at offset `i`.
pub fn is_identity(view: &StridedView, sizes: &[usize]) -> bool {
    view.sizes == sizes
        && view
            .strides
            .iter()
            .zip(contiguous_strides(sizes))
            .zip(sizes)
            .all(|((&s, c), &size)| size == 1 || s == c)
}

/// Calls `visit(offsets)` for every index of `sizes` in row-major order, where `offsets[t]` is
/// the position of that index under `strides[t]`; the last axis runs in the innermost loop, and
/// `inner(offsets, len, inner_strides)` handles it whole.
pub fn for_each_row(
    sizes: &[usize],
    strides: &[&[usize]],
    mut inner: impl FnMut(&[usize], usize, &[usize]),
) {
    let tensors = strides.len();
    if sizes.is_empty() {
        inner(&vec![0; tensors], 1, &vec![0; tensors]);
        return;
    }
    let last = sizes.len() - 1;
    let inner_strides: Vec<usize> = strides.iter().map(|s| s[last]).collect();
    let outer = &sizes[..last];
    let mut index = vec![0; outer.len()];
    let mut offsets = vec![0; tensors];
    if sizes.contains(&0) {
        return;
    }
    loop {
        inner(&offsets, sizes[last], &inner_strides);
        // Odometer over the outer axes, updating offsets incrementally.
        let mut axis = outer.len();
        loop {
            if axis == 0 {
                return;
            }
            axis -= 1;
            index[axis] += 1;
            for (offset, s) in offsets.iter_mut().zip(strides) {
                *offset += s[axis];
            }
            if index[axis] < outer[axis] {
                break;
            }
            for (offset, s) in offsets.iter_mut().zip(strides) {
                *offset -= s[axis] * outer[axis];
            }
            index[axis] = 0;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn permuted_and_broadcast_views_become_strides() {
        let mut view = ShapeTracker::new(&[2.into(), 3.into()]);
        view.permute(&[1, 0]);
        view.expand(1, 4.into());
        let strided = StridedView::of(&view).unwrap();
        assert_eq!(strided.sizes, vec![3, 4, 2]);
        assert_eq!(strided.strides, vec![1, 0, 3]);
    }

    #[test]
    fn sliced_views_become_strides_and_an_offset() {
        let mut view = ShapeTracker::new(&[512.into(), 4.into()]);
        view.slice(&[(3.into(), 131.into()), (0.into(), i32::MAX.into())]);
        view.expand(0, 2.into());
        let (strided, offset) = StridedView::of_sliced(&view).unwrap();
        assert_eq!(strided.sizes, vec![2, 128, 4]);
        assert_eq!(strided.strides, vec![0, 4, 1]);
        assert_eq!(offset, 12);
    }

    #[test]
    fn rows_are_visited_in_order_with_their_offsets() {
        let mut seen = Vec::new();
        for_each_row(
            &[2, 3, 2],
            &[&[6, 2, 1], &[1, 0, 10]],
            |offsets, len, inner| {
                seen.push((offsets.to_vec(), len, inner.to_vec()));
            },
        );
        assert_eq!(seen.len(), 6);
        assert_eq!(seen[0], (vec![0, 0], 2, vec![1, 10]));
        assert_eq!(seen[1], (vec![2, 0], 2, vec![1, 10]));
        assert_eq!(seen[3], (vec![6, 1], 2, vec![1, 10]));
    }

    #[test]
    fn axes_merge_where_every_tensor_steps_through_them_as_one() {
        let (sizes, strides) = merge_axes(
            &[2, 1, 3, 4],
            &[vec![12, 12, 4, 1], vec![0, 0, 0, 0], vec![3, 3, 1, 0]],
        );
        assert_eq!(sizes, vec![6, 4]);
        assert_eq!(strides, vec![vec![4, 1], vec![0, 0], vec![1, 0]]);
        let (sizes, strides) = merge_axes(&[2, 3], &[vec![3, 1], vec![1, 2]]);
        assert_eq!(sizes, vec![2, 3]);
        assert_eq!(strides, vec![vec![3, 1], vec![1, 2]]);
    }
}
