/// The column a float label names (labels travel as floats), `None` for a negative one (an
/// unpredicted position's -100); panics outside a row of `width`.
pub(super) fn column_index(column: f32, width: usize) -> Option<usize> {
    if column < 0.0 {
        return None;
    }
    let column = column as usize;
    assert!(
        column < width,
        "column {column} outside rows of width {width}"
    );
    Some(column)
}
