use std::fmt;

/// Where an encoder block puts its LayerNorms.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BlockLayout {
    /// Original BERT: `LayerNorm(x + sublayer(x))`.
    PostLn,
    /// `x + sublayer(LayerNorm(x))`, with a final LayerNorm after the last block; progressive layer
    /// dropping needs it, because a skipped block then leaves the residual stream untouched.
    PreLn,
}

impl fmt::Display for BlockLayout {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            BlockLayout::PostLn => "post-ln",
            BlockLayout::PreLn => "pre-ln",
        })
    }
}
