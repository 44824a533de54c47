//! The index arithmetic of generated kernels: a flat index split into row-major coordinates, and
//! buffer offsets as strides over those coordinates, with every size and stride baked in as a
//! constant (so division by a size compiles to a multiply and shift). Each piece renders as CUDA
//! C and evaluates on the CPU by the same arithmetic, which is what the CPU tests check.
/// The unsigned type a kernel indexes with: 32 bits wherever every index and offset fits, as
/// 64-bit division by a constant costs several times more.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IndexType {
    U32,
    U64,
}

impl IndexType {
    /// The narrowest type for indices up to `max`, with headroom for a grid-stride step past it.
    pub fn for_max(max: usize) -> Self {
        if max < 1 << 31 {
            IndexType::U32
        } else {
            IndexType::U64
        }
    }

    pub fn c_name(self) -> &'static str {
        match self {
            IndexType::U32 => "unsigned int",
            IndexType::U64 => "unsigned long long",
        }
    }

    pub fn literal(self, n: usize) -> String {
        match self {
            IndexType::U32 => format!("{n}u"),
            IndexType::U64 => format!("{n}ull"),
        }
    }
}

/// The row-major coordinates of a flat index over `sizes` (outermost first).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Coordinates {
    sizes: Vec<usize>,
}

impl Coordinates {
    pub fn new(sizes: &[usize]) -> Self {
        Self {
            sizes: sizes.to_vec(),
        }
    }

    /// The number of elements `sizes` spans.
    pub fn len(&self) -> usize {
        self.sizes.iter().product()
    }

    /// How each axis's coordinate comes from the flat index.
    fn terms(&self) -> Vec<Term> {
        let mut divisor = 1;
        let mut terms = vec![Term::Zero; self.sizes.len()];
        for axis in (0..self.sizes.len()).rev() {
            let size = self.sizes[axis];
            terms[axis] = if size == 1 {
                Term::Zero
            } else {
                Term::Quotient {
                    divisor,
                    // The outermost coordinate is in range already: the flat index is.
                    modulus: (axis > 0).then_some(size),
                }
            };
            divisor *= size;
        }
        terms
    }

    /// C declarations of `{prefix}0..` as the coordinates of the flat index `flat`, one
    /// statement per axis.
    pub fn render(&self, flat: &str, prefix: &str, index: IndexType) -> Vec<String> {
        let mut statements = Vec::new();
        for (axis, term) in self.terms().into_iter().enumerate() {
            let expression = match term {
                Term::Zero => index.literal(0),
                Term::Quotient { divisor, modulus } => {
                    let quotient = if divisor == 1 {
                        flat.to_string()
                    } else {
                        format!("{flat} / {}", index.literal(divisor))
                    };
                    match modulus {
                        Some(m) => format!("({quotient}) % {}", index.literal(m)),
                        None => quotient,
                    }
                }
            };
            let ty = index.c_name();
            statements.push(format!("const {ty} {prefix}{axis} = {expression};"));
        }
        statements
    }

    /// The coordinates [`render`](Self::render) computes.
    #[cfg(test)]
    pub fn eval(&self, flat: usize) -> Vec<usize> {
        self.terms()
            .into_iter()
            .map(|term| match term {
                Term::Zero => 0,
                Term::Quotient { divisor, modulus } => {
                    let quotient = flat / divisor;
                    modulus.map_or(quotient, |m| quotient % m)
                }
            })
            .collect()
    }
}

/// One coordinate of a flat index.
#[derive(Debug, Clone, Copy)]
enum Term {
    /// An axis of size 1.
    Zero,
    /// `flat / divisor % modulus`.
    Quotient {
        divisor: usize,
        modulus: Option<usize>,
    },
}

/// A buffer offset: `offset + sum(coordinate[axis] * strides[axis])`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Offset {
    pub offset: usize,
    pub strides: Vec<usize>,
}

impl Offset {
    /// The offset as a C expression over the coordinates `{prefix}0..`.
    pub fn render(&self, prefix: &str, index: IndexType) -> String {
        let mut terms = Vec::new();
        if self.offset != 0 {
            terms.push(index.literal(self.offset));
        }
        for (axis, &stride) in self.strides.iter().enumerate() {
            match stride {
                0 => {}
                1 => terms.push(format!("{prefix}{axis}")),
                _ => terms.push(format!("{prefix}{axis} * {}", index.literal(stride))),
            }
        }
        if terms.is_empty() {
            index.literal(0)
        } else {
            terms.join(" + ")
        }
    }

    /// The offset [`render`](Self::render) computes at `coordinates`.
    #[cfg(test)]
    pub fn eval(&self, coordinates: &[usize]) -> usize {
        self.offset
            + self
                .strides
                .iter()
                .zip(coordinates)
                .map(|(s, c)| s * c)
                .sum::<usize>()
    }

    /// The largest offset over coordinates within `sizes`.
    pub fn max(&self, sizes: &[usize]) -> usize {
        self.offset
            + self
                .strides
                .iter()
                .zip(sizes)
                .map(|(s, n)| s * n.saturating_sub(1))
                .sum::<usize>()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn coordinates_are_row_major() {
        let coordinates = Coordinates::new(&[3, 1, 4, 5]);
        let mut flat = 0;
        for a in 0..3 {
            for c in 0..4 {
                for d in 0..5 {
                    assert_eq!(coordinates.eval(flat), vec![a, 0, c, d]);
                    flat += 1;
                }
            }
        }
    }

    #[test]
    fn rendering_spells_out_the_evaluated_arithmetic() {
        let coordinates = Coordinates::new(&[3, 1, 4, 5]);
        assert_eq!(
            coordinates.render("i", "c", IndexType::U32),
            [
                "const unsigned int c0 = i / 20u;",
                "const unsigned int c1 = 0u;",
                "const unsigned int c2 = (i / 5u) % 4u;",
                "const unsigned int c3 = (i) % 5u;",
            ]
        );
        let offset = Offset {
            offset: 7,
            strides: vec![0, 3, 1, 40],
        };
        assert_eq!(
            offset.render("c", IndexType::U64),
            "7ull + c1 * 3ull + c2 + c3 * 40ull"
        );
        assert_eq!(offset.eval(&[2, 0, 3, 4]), 7 + 3 + 160);
        assert_eq!(offset.max(&[3, 1, 4, 5]), 7 + 3 + 160);
    }
}
