use luminal::prelude::*;

/// Rows `indexes[i]` of `table`, as `[N, D]`.
///
/// Written as luminal writes a gather (a one-hot comparison against an arange, multiplied with the
/// table and summed), because that is the pattern the backends' gather passes replace with an
/// indexed kernel; unlike luminal's own `gather` it is generic over the row dimension type.
pub fn gather_rows<Rows: Dimension, D: Dimension, N: Dimension>(
    table: GraphTensor<(Rows, D)>,
    indexes: GraphTensor<(N,)>,
) -> GraphTensor<(N, D)> {
    let one_hot = table
        .graph()
        .arange::<Rows>()
        .expand::<(N, Rows), Axis<0>>()
        .equals(indexes.expand::<(N, Rows), Axis<1>>());
    (one_hot.expand::<(N, Rows, D), Axis<2>>() * table.expand::<(N, Rows, D), Axis<0>>())
        .sum_reduce::<(N, D), Axis<1>>()
}
